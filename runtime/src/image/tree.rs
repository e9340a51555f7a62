//! Filesystem helpers for building image trees: clean relative paths,
//! parents that are real directories (a symlink is never traversed), removal
//! that never follows links, tree copies and a content digest of a tree.
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// `p` as a clean relative path ("." and a leading "/" dropped); None when
/// it contains "..".
pub(super) fn clean_rel(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn mkdir(p: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().mode(0o755).create(p)
}

/// ROOT/a, ROOT/a/b, ... : the ancestors of ROOT/REL below ROOT, outermost
/// first (ROOT/REL itself excluded).
fn parents_below(root: &Path, rel: &Path) -> Vec<PathBuf> {
    let comps: Vec<Component> = rel.components().collect();
    let mut cur = root.to_path_buf();
    comps
        .iter()
        .take(comps.len().saturating_sub(1))
        .map(|c| {
            cur.push(c);
            cur.clone()
        })
        .collect()
}

/// Makes every ancestor of ROOT/REL (below ROOT) a real directory: missing
/// ones are created, a symlink or file in the way is replaced by a directory.
pub(super) fn ensure_parents(root: &Path, rel: &Path) -> io::Result<()> {
    for cur in parents_below(root, rel) {
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(&cur)?;
                mkdir(&cur)?;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => mkdir(&cur)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// True when every ancestor of ROOT/REL below ROOT exists as a real
/// directory (no symlink on the way).
pub(super) fn parents_are_dirs(root: &Path, rel: &Path) -> bool {
    parents_below(root, rel)
        .iter()
        .all(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
}

/// Removes whatever is at `p` without following a symlink; missing is fine.
pub(super) fn remove_any(p: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Names in `dir`, sorted bytewise (deterministic walks).
fn sorted_names(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// Visits every entry below `root` (not `root` itself), parents first,
/// siblings in name order, without following symlinks.
pub(super) fn walk(
    root: &Path,
    f: &mut dyn FnMut(&Path, &std::fs::Metadata) -> io::Result<()>,
) -> io::Result<()> {
    fn go(
        root: &Path,
        rel: &Path,
        f: &mut dyn FnMut(&Path, &std::fs::Metadata) -> io::Result<()>,
    ) -> io::Result<()> {
        for name in sorted_names(&root.join(rel))? {
            let r = rel.join(&name);
            let m = std::fs::symlink_metadata(root.join(&r))?;
            f(&r, &m)?;
            if m.is_dir() {
                go(root, &r, f)?;
            }
        }
        Ok(())
    }
    go(root, Path::new(""), f)
}

/// Total size in bytes of the regular files below `root` (a hard-linked
/// file counts once).
pub(super) fn tree_size(root: &Path) -> io::Result<u64> {
    let mut total = 0;
    let mut seen = std::collections::HashSet::new();
    walk(root, &mut |_, m| {
        if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
            total += m.len();
        }
        Ok(())
    })?;
    Ok(total)
}

/// Bytes of the regular files below `root`, each inode once, for a disk
/// use report: entries that vanish or cannot be read meanwhile are skipped
/// (the tree may be changing), a missing root is 0.
pub(super) fn du(root: &Path) -> u64 {
    fn go(dir: &Path, seen: &mut std::collections::HashSet<(u64, u64)>, total: &mut u64) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                go(&e.path(), seen, total);
            } else if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                *total += m.len();
            }
        }
    }
    let mut total = 0;
    go(root, &mut std::collections::HashSet::new(), &mut total);
    total
}

/// sha256 hex over the whole tree: every path, type, mode, owner, and the
/// content of files and symlinks.
pub(super) fn digest_tree(root: &Path) -> io::Result<String> {
    let mut h = Sha256::new();
    // Hard-linked files: the content is hashed once, later links by name.
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(root, &mut |rel, m| {
        let kind = file_kind(m);
        h.update(format!("{kind} {:o} {} {} ", m.mode() & 0o7777, m.uid(), m.gid()).as_bytes());
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update([0]);
        let p = root.join(rel);
        if m.is_file() && m.nlink() > 1 {
            if let Some(first) = links.get(&(m.dev(), m.ino())) {
                h.update(b"=");
                h.update(first.as_os_str().as_encoded_bytes());
                h.update([0]);
                return Ok(());
            }
            links.insert((m.dev(), m.ino()), rel.to_path_buf());
        }
        if m.is_file() {
            h.update(m.len().to_le_bytes());
            io::copy(&mut std::fs::File::open(&p)?, &mut h)?;
        } else if m.file_type().is_symlink() {
            h.update(std::fs::read_link(&p)?.as_os_str().as_encoded_bytes());
            h.update([0]);
        }
        Ok(())
    })?;
    Ok(hex::encode(h.finalize()))
}

fn file_kind(m: &std::fs::Metadata) -> char {
    let t = m.file_type();
    if t.is_dir() {
        'd'
    } else if t.is_symlink() {
        'l'
    } else if t.is_file() {
        'f'
    } else if t.is_fifo() {
        'p'
    } else {
        '?'
    }
}

/// Copies files, directories and symlinks; hard links inside the copy stay
/// hard links.
pub(super) struct TreeCopier {
    /// (dev, ino) of a copied multi-link file -> where its copy is.
    links: HashMap<(u64, u64), PathBuf>,
}

impl TreeCopier {
    pub fn new() -> Self {
        TreeCopier {
            links: HashMap::new(),
        }
    }

    /// Copies the host path SRC (file, symlink or directory, recursively)
    /// to DST, which must not exist; DST's parent must be a real directory.
    /// `skip(name)` leaves out directory entries by name; `copied` is told
    /// the bytes of each file.
    pub fn copy(
        &mut self,
        src: &Path,
        dst: &Path,
        skip: &dyn Fn(&std::ffi::OsStr) -> bool,
        copied: &mut dyn FnMut(u64),
    ) -> io::Result<()> {
        let m = std::fs::symlink_metadata(src)?;
        let t = m.file_type();
        if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
        } else if t.is_dir() {
            match std::fs::symlink_metadata(dst) {
                Ok(d) if d.is_dir() => {}
                Ok(_) => {
                    std::fs::remove_file(dst)?;
                    mkdir(dst)?;
                }
                Err(_) => mkdir(dst)?,
            }
            for name in sorted_names(src)? {
                if skip(&name) {
                    continue;
                }
                self.copy(&src.join(&name), &dst.join(&name), skip, copied)?;
            }
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        } else if t.is_file() {
            let key = (m.dev(), m.ino());
            if m.nlink() > 1
                && let Some(first) = self.links.get(&key)
                && std::fs::hard_link(first, dst).is_ok()
            {
                return Ok(());
            }
            copy_file(src, dst)?;
            copied(m.len());
            if m.nlink() > 1 {
                self.links.insert(key, dst.to_path_buf());
            }
        } else {
            // Sockets, devices and fifos are not image content.
            return Ok(());
        }
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::lchown(dst, Some(m.uid()), Some(m.gid()))?;
            if !t.is_symlink() {
                // chown clears set-id bits: restore the mode.
                std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
            }
        }
        Ok(())
    }
}

/// Copies a regular file's content to a new file DST (never through a link).
pub(super) fn copy_file(src: &Path, dst: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mode = std::fs::metadata(src)?.mode() & 0o7777;
    let mut from = std::fs::File::open(src)?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)?;
    io::copy(&mut from, &mut to)?;
    to.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(())
}
