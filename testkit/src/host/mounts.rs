//! Mount points in our mount namespace (/proc/self/mountinfo).

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, umount2};

/// Mount points at or below `root`, deepest (latest) first.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .filter(|m| m.starts_with(root))
        .collect();
    out.reverse();
    out
}

/// Lazily unmounts everything at or below `root`; returns what it tried.
pub fn umount_all_under(root: &Path) -> Vec<PathBuf> {
    let mut done = Vec::new();
    // Each pass unmounts what is visible; stacked mounts need several passes.
    for _ in 0..10 {
        let m = mounts_under(root);
        if m.is_empty() {
            break;
        }
        for p in m {
            if let Err(e) = umount2(&p, MntFlags::MNT_DETACH) {
                eprintln!("quilt-testkit: umount -l {}: {e}", p.display());
            }
            done.push(p);
        }
    }
    done
}

/// Decodes the octal escapes (`\040` for a space, ...) the kernel writes in
/// mountinfo paths. (procfs keeps them as they are.)
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/x\\134y"), "/x\\y");
        assert_eq!(unescape("/t\\011ab\\012nl"), "/t\tab\nnl");
    }

    #[test]
    fn proc_is_mounted() {
        assert!(mounts_under(Path::new("/proc")).contains(&PathBuf::from("/proc")));
        assert!(mounts_under(Path::new("/nonexistent/quilt-testkit")).is_empty());
    }
}
