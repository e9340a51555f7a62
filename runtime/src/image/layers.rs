//! Applies layer tarballs, bottom first, onto a rootfs directory: entries
//! replace what lower layers left, `.wh.NAME` deletes NAME, and
//! `.wh..wh..opq` empties a directory of its lower content. Paths with ".."
//! are refused, and nothing is ever written through a symlink: a symlink in
//! the way of a parent directory is replaced by a real directory.
use super::tree::{clean_rel, ensure_parents, parents_are_dirs, remove_any};
use std::collections::{BTreeMap, HashSet};
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Metadata of a directory entry, applied once every layer is in.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    uid: u64,
    gid: u64,
}

/// Applies layers onto one rootfs.
pub(super) struct Applier {
    root: PathBuf,
    dirs: BTreeMap<PathBuf, DirMeta>,
    /// Entries seen over all layers (an empty rootfs is refused).
    entries: u64,
    /// Layer mode: whiteouts are recorded (for the layers below, applied
    /// when an image is composed) instead of applied.
    record: Option<Whiteouts>,
}

/// What one layer deletes from the layers below it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Whiteouts {
    /// Paths (relative to the root) deleted by `.wh.NAME`.
    pub removed: Vec<PathBuf>,
    /// Directories emptied of their lower content by `.wh..wh..opq`.
    pub opaque: Vec<PathBuf>,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg)
}

impl Applier {
    pub fn new(root: &Path) -> Self {
        Applier {
            root: root.to_path_buf(),
            dirs: BTreeMap::new(),
            entries: 0,
            record: None,
        }
    }

    /// An applier for one layer on its own (see `record`).
    pub fn for_layer(root: &Path) -> Self {
        Applier {
            record: Some(Whiteouts::default()),
            ..Applier::new(root)
        }
    }

    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Applies one (uncompressed) layer tar stream; returns the reader so
    /// that the caller can drain and check it.
    pub fn apply<R: Read>(&mut self, reader: R) -> io::Result<R> {
        let mut ar = tar::Archive::new(reader);
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(true);
        ar.set_preserve_mtime(true);
        ar.set_unpack_xattrs(false);
        ar.set_overwrite(true);
        // Paths this layer has written: an opaque whiteout keeps them.
        let mut written: HashSet<PathBuf> = HashSet::new();
        for entry in ar.entries()? {
            let mut entry = entry?;
            let raw = entry.path()?.into_owned();
            let rel = clean_rel(&raw).ok_or_else(|| {
                invalid(format!(
                    "tar entry {} escapes the image root",
                    raw.display()
                ))
            })?;
            if rel.as_os_str().is_empty() {
                continue;
            }
            self.entries += 1;
            let name = rel
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            if name == OPAQUE {
                match self.record.as_mut() {
                    Some(w) => w.opaque.push(parent),
                    None => self.opaque(&parent, &written)?,
                }
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT) {
                if !hidden.starts_with(WHITEOUT) && !hidden.is_empty() {
                    match self.record.as_mut() {
                        Some(w) => w.removed.push(parent.join(hidden)),
                        None => self.whiteout(&parent.join(hidden))?,
                    }
                }
                // Other `.wh..wh.*` entries are aufs bookkeeping: ignored.
                continue;
            }
            ensure_parents(&self.root, &rel)?;
            let dst = self.root.join(&rel);
            written.insert(rel.clone());
            let kind = entry.header().entry_type();
            match kind {
                tar::EntryType::Directory => {
                    match std::fs::symlink_metadata(&dst) {
                        Ok(m) if m.is_dir() => {}
                        Ok(_) => {
                            std::fs::remove_file(&dst)?;
                            std::fs::DirBuilder::new().mode(0o755).create(&dst)?;
                        }
                        Err(e) if e.kind() == ErrorKind::NotFound => {
                            std::fs::DirBuilder::new().mode(0o755).create(&dst)?;
                        }
                        Err(e) => return Err(e),
                    }
                    let h = entry.header();
                    self.dirs.insert(
                        rel,
                        DirMeta {
                            mode: h.mode()? & 0o7777,
                            uid: h.uid().unwrap_or(0),
                            gid: h.gid().unwrap_or(0),
                        },
                    );
                }
                tar::EntryType::Link => {
                    let target = entry.link_name()?.ok_or_else(|| {
                        invalid(format!("hard link {} has no target", rel.display()))
                    })?;
                    let trel = clean_rel(&target)
                        .filter(|t| !t.as_os_str().is_empty())
                        .ok_or_else(|| {
                            invalid(format!(
                                "hard link {} -> {} escapes the image root",
                                rel.display(),
                                target.display()
                            ))
                        })?;
                    if !parents_are_dirs(&self.root, &trel) {
                        return Err(invalid(format!(
                            "hard link {} -> {}: target not found in the image",
                            rel.display(),
                            target.display()
                        )));
                    }
                    remove_any(&dst)?;
                    std::fs::hard_link(self.root.join(&trel), &dst)?;
                }
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::Symlink
                | tar::EntryType::Fifo => {
                    remove_any(&dst)?;
                    entry.unpack(&dst)?;
                }
                // Device nodes come from the runtime's /dev, not from images;
                // other entry kinds carry no files.
                _ => {}
            }
        }
        Ok(ar.into_inner())
    }

    /// `.wh..wh..opq` in PARENT: removes what lower layers put there.
    fn opaque(&mut self, parent: &Path, written: &HashSet<PathBuf>) -> io::Result<()> {
        let dir = self.root.join(parent);
        if !parents_are_dirs(&self.root, &parent.join("x")) {
            return Ok(());
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for e in entries {
            let e = e?;
            let rel = parent.join(e.file_name());
            if !written.contains(&rel) {
                self.forget(&rel);
                remove_any(&e.path())?;
            }
        }
        Ok(())
    }

    /// `.wh.NAME`: deletes NAME from the lower layers.
    fn whiteout(&mut self, rel: &Path) -> io::Result<()> {
        if parents_are_dirs(&self.root, rel) {
            self.forget(rel);
            remove_any(&self.root.join(rel))?;
        }
        Ok(())
    }

    fn forget(&mut self, rel: &Path) {
        self.dirs.retain(|k, _| !k.starts_with(rel));
    }

    /// Gives directories their modes and owners (deepest first, so that a
    /// read-only directory never blocks its content) and makes the root
    /// traversable.
    pub fn finish(self) -> io::Result<Option<Whiteouts>> {
        let root_owner = nix::unistd::geteuid().is_root();
        for (rel, m) in self.dirs.iter().rev() {
            let p = self.root.join(rel);
            match std::fs::symlink_metadata(&p) {
                Ok(meta) if meta.is_dir() => {}
                _ => continue,
            }
            if root_owner {
                let id = |v: u64| u32::try_from(v).ok();
                std::os::unix::fs::chown(&p, id(m.uid), id(m.gid))?;
            }
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m.mode))?;
        }
        std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o755))?;
        Ok(self.record)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::hdr;
    use super::*;

    fn layer(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            match kind {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    b.append_link(&mut hdr(*kind, 0o777, 0), path, data)
                        .unwrap();
                }
                _ => {
                    let mode = if *kind == tar::EntryType::Directory {
                        0o755
                    } else {
                        0o644
                    };
                    b.append_data(
                        &mut hdr(*kind, mode, data.len() as u64),
                        path,
                        data.as_bytes(),
                    )
                    .unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as L};

    #[test]
    fn whiteouts_and_opaque_dirs() {
        let root = tempfile::tempdir().unwrap();
        let mut a = Applier::new(root.path());
        a.apply(
            &layer(&[
                ("etc/", D, ""),
                ("etc/a", F, "a"),
                ("etc/b", F, "b"),
                ("d/", D, ""),
                ("d/old", F, "old"),
                ("d/sub/", D, ""),
                ("d/sub/x", F, "x"),
                ("gone/", D, ""),
                ("gone/y", F, "y"),
            ])[..],
        )
        .unwrap();
        a.apply(
            &layer(&[
                ("etc/.wh.a", F, ""),
                ("etc/b", F, "b2"),
                // Written before the opaque marker in the same layer: kept.
                ("d/new", F, "new"),
                ("d/.wh..wh..opq", F, ""),
                (".wh.gone", F, ""),
                ("hard", H, "etc/b"),
            ])[..],
        )
        .unwrap();
        a.finish().unwrap();
        let r = root.path();
        assert!(!r.join("etc/a").exists());
        assert_eq!(std::fs::read_to_string(r.join("etc/b")).unwrap(), "b2");
        assert_eq!(std::fs::read_to_string(r.join("hard")).unwrap(), "b2");
        assert_eq!(std::fs::read_to_string(r.join("d/new")).unwrap(), "new");
        assert!(!r.join("d/old").exists() && !r.join("d/sub").exists());
        assert!(!r.join("gone").exists());
        assert!(!r.join("etc/.wh.a").exists() && !r.join("d/.wh..wh..opq").exists());
    }

    #[test]
    fn never_writes_through_symlinks() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let mut a = Applier::new(root.path());
        let target = outside.path().to_str().unwrap().to_owned();
        a.apply(&layer(&[("link", L, &target), ("f", L, &format!("{target}/f"))])[..])
            .unwrap();
        // A later layer writes below the symlink and over the file link.
        a.apply(&layer(&[("link/x", F, "x"), ("f", F, "data")])[..])
            .unwrap();
        a.finish().unwrap();
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
        let link = root.path().join("link");
        assert!(std::fs::symlink_metadata(&link).unwrap().is_dir());
        assert_eq!(std::fs::read_to_string(link.join("x")).unwrap(), "x");
        assert_eq!(
            std::fs::read_to_string(root.path().join("f")).unwrap(),
            "data"
        );
    }

    #[test]
    fn escaping_paths_refused() {
        let root = tempfile::tempdir().unwrap();
        // The tar builder refuses "..", so write the header by hand.
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..9].copy_from_slice(b"a/../../x");
        h.set_mode(0o644);
        h.set_size(0);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend_from_slice(&[0u8; 1024]);
        let err = Applier::new(root.path()).apply(&raw[..]).unwrap_err();
        assert!(err.to_string().contains("escapes"), "{err}");
        // A hard link to a path outside is refused too.
        let err = Applier::new(root.path())
            .apply(&layer(&[("h", H, "/etc/passwd")])[..])
            .unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        assert!(!root.path().join("h").exists());
    }
}
