//! Host device nodes as the daemon checks them: a node's kind and numbers,
//! read without following a symlink (a path that is a symlink is not a
//! device node here: the daemon stores canonical paths and never follows
//! one that changed since).
use crate::spec::DeviceKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// A device node: its kind and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    pub kind: DeviceKind,
    pub major: u32,
    pub minor: u32,
}

/// The device node at `path` (lstat: a final symlink is not followed);
/// `Ok(None)` when something else is there.
pub fn lookup(path: &Path) -> std::io::Result<Option<NodeInfo>> {
    let m = std::fs::symlink_metadata(path)?;
    let t = m.file_type();
    let kind = if t.is_char_device() {
        DeviceKind::Char
    } else if t.is_block_device() {
        DeviceKind::Block
    } else {
        return Ok(None);
    };
    Ok(Some(NodeInfo {
        kind,
        major: nix::sys::stat::major(m.rdev()) as u32,
        minor: nix::sys::stat::minor(m.rdev()) as u32,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_others() {
        assert_eq!(
            lookup(Path::new("/dev/null")).unwrap(),
            Some(NodeInfo {
                kind: DeviceKind::Char,
                major: 1,
                minor: 3
            })
        );
        assert_eq!(lookup(Path::new("/dev")).unwrap(), None);
        let t = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/null", t.path().join("l")).unwrap();
        assert_eq!(lookup(&t.path().join("l")).unwrap(), None);
        assert!(lookup(&t.path().join("missing")).is_err());
    }
}
