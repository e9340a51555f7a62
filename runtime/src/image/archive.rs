//! Writing images and root filesystems out: a tar stream of a directory tree
//! (the `export` of a container, the single layer of a saved image) and a
//! `docker save` archive (`manifest.json`, one configuration and one layer
//! per image) that `docker load` and our own import read back.
use super::manifest::{History, ImageConfig, RootFs};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Writes a tar stream of everything below `root` (not `root` itself),
/// entries named relative to it, parents first and siblings in name order,
/// symlinks kept as symlinks, hard links within the tree kept as links,
/// owners numeric. Sockets are left out (they cannot be archived). With
/// `one_filesystem`, anything on another filesystem than `root` (a mount:
/// /proc, /sys, /dev, volumes, bind-mounted files) is written as its mount
/// point only, an empty directory or an empty file, as `docker export` does.
pub fn tar_tree<W: Write>(root: &Path, one_filesystem: bool, out: W) -> io::Result<W> {
    let root_dev = std::fs::symlink_metadata(root)?.dev();
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut names = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<Vec<_>>>()?;
        names.sort();
        // Visited depth first in name order: subdirectories go on the stack
        // in reverse.
        let mut subdirs = Vec::new();
        for name in names {
            let r = rel.join(&name);
            let path = root.join(&r);
            let m = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                // Gone since the listing (a running container): skipped.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let ft = m.file_type();
            if ft.is_socket() {
                continue;
            }
            if one_filesystem && m.dev() != root_dev {
                mount_point(&mut b, &r, &m)?;
                continue;
            }
            if ft.is_dir() {
                let mut h = header(&m, tar::EntryType::Directory);
                b.append_data(&mut h, &r, io::empty())?;
                subdirs.push(r);
                continue;
            }
            if ft.is_file() && m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = links.get(&key) {
                    let mut h = header(&m, tar::EntryType::Link);
                    h.set_size(0);
                    b.append_link(&mut h, &r, first)?;
                    continue;
                }
                links.insert(key, r.clone());
            }
            if ft.is_file() {
                let Some(f) = open_same_file(&path, &m)? else {
                    continue; // replaced or removed since it was listed
                };
                let mut h = header(&m, tar::EntryType::Regular);
                h.set_size(m.len());
                // A file that grows while it is read is cut at the size its
                // header announced, one that shrinks is padded with zeros:
                // the archive stays well formed either way.
                b.append_data(&mut h, &r, Exact::new(f, m.len()))?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path)?;
                let mut h = header(&m, tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &r, &target)?;
            } else {
                let kind = if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else if ft.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                let mut h = header(&m, kind);
                let rdev = m.rdev();
                h.set_device_major(nix::sys::stat::major(rdev) as u32)?;
                h.set_device_minor(nix::sys::stat::minor(rdev) as u32)?;
                b.append_data(&mut h, &r, io::empty())?;
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    b.into_inner()
}

/// Opens the regular file `m` describes, never following a symlink nor
/// blocking on a FIFO put in its place since (a running container may race
/// the walk); None when it is gone or no longer that file.
fn open_same_file(path: &Path, m: &std::fs::Metadata) -> io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e)
            if e.kind() == io::ErrorKind::NotFound
                || e.raw_os_error() == Some(nix::libc::ELOOP) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let now = f.metadata()?;
    Ok((now.is_file() && now.ino() == m.ino() && now.dev() == m.dev()).then_some(f))
}

/// Exactly `left` bytes of `inner`: cut there, or padded with zeros when
/// it ends sooner.
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, len: u64) -> Self {
        Exact {
            inner: inner.take(len),
            left: len,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let mut n = self.inner.read(buf)?;
        if n == 0 {
            n = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            buf[..n].fill(0);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A header with the entry's mode, owner and mtime, no data.
fn header(m: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
    h.set_entry_type(kind);
    h.set_size(0);
    h
}

/// A mount point inside the tree: its directory (or an empty file in place
/// of a bind-mounted file), without what is mounted there.
fn mount_point<W: Write>(
    b: &mut tar::Builder<W>,
    rel: &Path,
    m: &std::fs::Metadata,
) -> io::Result<()> {
    let kind = if m.is_dir() {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    };
    let mut h = header(m, kind);
    b.append_data(&mut h, rel, io::empty())
}

/// One image of a `docker save` archive.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// An uncompressed tar file: the image's single layer.
    pub layer: PathBuf,
    /// Its configuration; `rootfs` is replaced by the layer's diff id.
    pub config: ImageConfig,
    /// "name:tag" names.
    pub repo_tags: Vec<String>,
}

/// The sha256 of a file, as "sha256:<hex>".
fn file_digest(path: &Path) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h)?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

/// The configuration blob of an image whose only layer has `diff_id`.
pub fn config_bytes(config: &ImageConfig, diff_id: &str) -> io::Result<Vec<u8>> {
    let mut c = config.clone();
    c.rootfs = Some(RootFs {
        kind: Some("layers".into()),
        diff_ids: vec![diff_id.to_owned()],
    });
    if c.history.iter().filter(|h| !h.empty_layer).count() != 1 {
        c.history = vec![History {
            created: c.created.clone(),
            created_by: Some("quilt".into()),
            ..History::default()
        }];
    }
    if c.os.is_none() {
        c.os = Some("linux".into());
    }
    if c.architecture.is_none() {
        c.architecture = Some(super::manifest::host_architecture().into());
    }
    serde_json::to_vec(&c).map_err(io::Error::other)
}

/// Writes a `docker save` archive of `images` (each with one layer).
/// Blocking; reads each layer twice (its digest, then its bytes).
pub fn write_docker_archive<W: Write>(out: W, images: &[ArchiveImage]) -> io::Result<W> {
    let mut b = tar::Builder::new(out);
    let mut manifest = Vec::with_capacity(images.len());
    for img in images {
        let diff_id = file_digest(&img.layer)?;
        let hex = diff_id.trim_start_matches("sha256:").to_owned();
        let config = config_bytes(&img.config, &diff_id)?;
        let config_name = format!("{}.json", hex::encode(Sha256::digest(&config)));
        let layer_name = format!("{hex}/layer.tar");
        let mut f = std::fs::File::open(&img.layer)?;
        let len = f.metadata()?.len();
        let mut h = blob_header(len);
        b.append_data(&mut h, &layer_name, (&mut f).take(len))?;
        let mut h = blob_header(config.len() as u64);
        b.append_data(&mut h, &config_name, config.as_slice())?;
        manifest.push(serde_json::json!({
            "Config": config_name,
            "RepoTags": if img.repo_tags.is_empty() { serde_json::Value::Null } else { serde_json::json!(img.repo_tags) },
            "Layers": [layer_name],
        }));
    }
    let bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    let mut h = blob_header(bytes.len() as u64);
    b.append_data(&mut h, "manifest.json", bytes.as_slice())?;
    b.into_inner()
}

fn blob_header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(len);
    h.set_mtime(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn entries(bytes: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                )
            })
            .collect()
    }

    #[test]
    fn tree_tar_keeps_links_and_order() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("a"), b"hello").unwrap();
        std::fs::hard_link(root.join("a"), root.join("b/c/hard")).unwrap();
        symlink("/etc/passwd", root.join("b/link")).unwrap();
        let bytes = tar_tree(root, true, Vec::new()).unwrap();
        let got = entries(&bytes);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "b/c", "b/link", "b/c/hard"]);
        assert_eq!(got[3].1, tar::EntryType::Symlink);
        assert_eq!(got[4].1, tar::EntryType::Link);
        // The same tree gives the same bytes.
        assert_eq!(bytes, tar_tree(root, true, Vec::new()).unwrap());
    }

    #[test]
    fn exact_pads_and_cuts() {
        let mut out = Vec::new();
        Exact::new(&b"abc"[..], 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
        out.clear();
        Exact::new(&b"abcdef"[..], 2).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
    }

    #[test]
    fn docker_archive_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let layer = d.path().join("layer.tar");
        let tree = d.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("f"), b"x").unwrap();
        let f = std::fs::File::create(&layer).unwrap();
        tar_tree(&tree, false, f).unwrap();
        let img = ArchiveImage {
            layer: layer.clone(),
            config: ImageConfig::default(),
            repo_tags: vec!["t:1".into()],
        };
        let bytes = write_docker_archive(Vec::new(), &[img]).unwrap();
        let names: Vec<String> = entries(&bytes).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 3);
        assert!(names[0].ends_with("/layer.tar"));
        assert_eq!(names[2], "manifest.json");
        let mut a = tar::Archive::new(bytes.as_slice());
        let mut config = None;
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().display().to_string();
            if p.ends_with(".json") && p != "manifest.json" {
                let mut s = Vec::new();
                e.read_to_end(&mut s).unwrap();
                config = Some(super::super::manifest::parse_config(&s).unwrap());
            }
        }
        let c = config.unwrap();
        assert_eq!(
            c.rootfs.unwrap().diff_ids,
            vec![file_digest(&layer).unwrap()]
        );
        assert_eq!(c.os.as_deref(), Some("linux"));
    }
}
