//! The content-addressed layer store: each layer of an imported image is
//! unpacked once, on its own, into DATA/images/layers/<alg>-<hex>/tree
//! (its whiteouts kept aside in `whiteouts.json`), and an image's rootfs is
//! composed from its layers, bottom first: whiteouts applied, then the
//! layer's directories created and its files *hard-linked* from the layer.
//! Two images sharing a base therefore share every file's data on disk,
//! and the composed rootfs is a single directory, so the container's
//! overlay (and its idmapped lower layer) keeps one lowerdir whatever the
//! depth of the image: no mount-option length limit to meet.
use super::digest::BlobDigest;
use super::layers::Whiteouts;
use super::tree::{self, parents_are_dirs, remove_any};
use super::{ImageStore, unique_suffix};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const TREE: &str = "tree";
const WHITEOUTS: &str = "whiteouts.json";

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, msg.into())
}

/// The directory name of a layer digest ("sha256:<hex>" -> "sha256-<hex>");
/// an error for anything but a well-formed digest.
fn dir_name(digest: &str) -> io::Result<String> {
    let d = BlobDigest::parse(digest).ok_or_else(|| invalid(format!("bad digest {digest:?}")))?;
    Ok(format!("{}-{}", d.algorithm.name(), d.hex))
}

impl ImageStore {
    /// DATA/images/layers.
    pub(super) fn layers_root(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn layer_dir(&self, digest: &str) -> io::Result<PathBuf> {
        Ok(self.layers_root().join(dir_name(digest)?))
    }

    /// True when the layer is unpacked in the store.
    pub(super) fn has_layer(&self, digest: &str) -> bool {
        self.layer_dir(digest)
            .is_ok_and(|d| d.join(WHITEOUTS).is_file() && d.join(TREE).is_dir())
    }

    /// Unpacks a layer into the store unless it is there: `unpack` fills
    /// an empty directory and returns the layer's whiteouts. The layer is
    /// built in a temp dir and renamed into place (a concurrent unpack of
    /// the same layer loses quietly).
    pub(super) fn add_layer(
        &self,
        digest: &str,
        unpack: impl FnOnce(&Path) -> io::Result<Whiteouts>,
    ) -> io::Result<()> {
        if self.has_layer(digest) {
            return Ok(());
        }
        let target = self.layer_dir(digest)?;
        std::fs::create_dir_all(&self.root)?;
        let tmp = self.root.join(format!(".tmp-layer-{}", unique_suffix()));
        std::fs::DirBuilder::new().mode(0o700).create(&tmp)?;
        let result = (|| {
            let tree = tmp.join(TREE);
            std::fs::DirBuilder::new().mode(0o755).create(&tree)?;
            let whiteouts = unpack(&tree)?;
            let json = serde_json::to_vec(&whiteouts).map_err(io::Error::other)?;
            std::fs::write(tmp.join(WHITEOUTS), json)?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
            std::fs::create_dir_all(self.layers_root())?;
            match std::fs::rename(&tmp, &target) {
                Ok(()) => Ok(()),
                Err(_) if self.has_layer(digest) => Ok(()),
                Err(e) => Err(e),
            }
        })();
        if tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Composes the rootfs of an image from its stored layers (bottom
    /// first) into `rootfs`, an empty directory.
    pub(super) fn compose(&self, digests: &[String], rootfs: &Path) -> io::Result<()> {
        let mut dirs: Vec<(PathBuf, std::fs::Metadata)> = Vec::new();
        for digest in digests {
            let dir = self.layer_dir(digest)?;
            let missing = |e: io::Error| {
                if e.kind() == ErrorKind::NotFound {
                    io::Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "layer {digest} is not in the layer store (removed meanwhile? import again)"
                        ),
                    )
                } else {
                    e
                }
            };
            let json = std::fs::read(dir.join(WHITEOUTS)).map_err(missing)?;
            let w: Whiteouts = serde_json::from_slice(&json)
                .map_err(|e| invalid(format!("layer {digest}: corrupt {WHITEOUTS}: {e}")))?;
            for rel in &w.removed {
                if parents_are_dirs(rootfs, rel) {
                    dirs.retain(|(d, _)| !d.starts_with(rel));
                    remove_any(&rootfs.join(rel))?;
                }
            }
            for rel in &w.opaque {
                let d = rootfs.join(rel);
                if !parents_are_dirs(rootfs, &rel.join("x"))
                    || !std::fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir())
                {
                    continue;
                }
                for e in std::fs::read_dir(&d)? {
                    let e = e?;
                    let child = rel.join(e.file_name());
                    dirs.retain(|(p, _)| !p.starts_with(&child));
                    remove_any(&e.path())?;
                }
            }
            merge(&dir.join(TREE), rootfs, &mut dirs).map_err(missing)?;
        }
        // Directory modes and owners last, deepest first; the topmost
        // layer's metadata wins (stable sort, first of each run kept).
        dirs.reverse();
        dirs.sort_by(|a, b| b.0.cmp(&a.0));
        dirs.dedup_by(|a, b| a.0 == b.0);
        let root_owner = nix::unistd::geteuid().is_root();
        for (rel, m) in &dirs {
            let p = rootfs.join(rel);
            if !std::fs::symlink_metadata(&p).is_ok_and(|x| x.is_dir()) {
                continue;
            }
            if root_owner {
                std::os::unix::fs::lchown(&p, Some(m.uid()), Some(m.gid()))?;
            }
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
        std::fs::set_permissions(rootfs, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }

    /// Bytes of a stored layer's files (a hard-linked file counts once).
    pub(super) fn layer_size(&self, digest: &str) -> io::Result<u64> {
        tree::tree_size(&self.layer_dir(digest)?.join(TREE))
    }

    /// Deletes stored layers (renamed away first, so that none is ever
    /// seen half-deleted). Missing is fine. Images composed from them keep
    /// their files (hard links).
    pub fn remove_layers(&self, digests: &[String]) -> io::Result<()> {
        for digest in digests {
            let dir = self.layer_dir(digest)?;
            let trash = self.root.join(format!(".tmp-rm-{}", unique_suffix()));
            match std::fs::rename(&dir, &trash) {
                Ok(()) => std::fs::remove_dir_all(&trash)?,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The digests ("<alg>:<hex>") of every layer in the store.
    pub fn stored_layers(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.layers_root()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let (alg, hex) = name.split_once('-')?;
                let digest = format!("{alg}:{hex}");
                BlobDigest::parse(&digest).map(|_| digest)
            })
            .collect()
    }
}

/// Merges the layer tree `src` onto `dst`: directories created (their
/// metadata recorded in `dirs`, applied by the caller), what is in the way
/// replaced, regular files hard-linked (copied when the link count is
/// exhausted), symlinks and FIFOs recreated. Never follows a symlink in
/// `dst`: an entry in the way of a directory is replaced by one.
fn merge(src: &Path, dst: &Path, dirs: &mut Vec<(PathBuf, std::fs::Metadata)>) -> io::Result<()> {
    let root_owner = nix::unistd::geteuid().is_root();
    tree::walk(src, &mut |rel, m| {
        let to = dst.join(rel);
        let from = src.join(rel);
        let t = m.file_type();
        if t.is_dir() {
            match std::fs::symlink_metadata(&to) {
                Ok(x) if x.is_dir() => {}
                Ok(_) => {
                    remove_any(&to)?;
                    std::fs::DirBuilder::new().mode(0o755).create(&to)?;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    std::fs::DirBuilder::new().mode(0o755).create(&to)?;
                }
                Err(e) => return Err(e),
            }
            // Writable and traversable while the tree is composed.
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))?;
            dirs.push((rel.to_path_buf(), m.clone()));
            return Ok(());
        }
        remove_any(&to)?;
        if t.is_file() {
            match std::fs::hard_link(&from, &to) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EMLINK) => {
                    tree::copy_file(&from, &to)?;
                    if root_owner {
                        std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))?;
                        std::fs::set_permissions(
                            &to,
                            std::fs::Permissions::from_mode(m.mode() & 0o7777),
                        )?;
                    }
                }
                Err(e) => return Err(e),
            }
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            if root_owner {
                std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))?;
            }
        } else {
            use std::os::unix::fs::FileTypeExt;
            if t.is_fifo() {
                nix::unistd::mkfifo(
                    &to,
                    nix::sys::stat::Mode::from_bits_truncate(m.mode() & 0o7777),
                )?;
                if root_owner {
                    std::os::unix::fs::lchown(&to, Some(m.uid()), Some(m.gid()))?;
                }
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
            }
        }
        Ok(())
    })
}
