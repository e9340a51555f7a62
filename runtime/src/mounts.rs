//! Mounts of a container as the shim receives them, and resolution of a
//! path inside a root directory with symlinks that can never leave it.
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Component, Path, PathBuf};

/// One mount made in the container's mount namespace before pivot_root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountConfig {
    /// Absolute, normalised path inside the container (checked by the daemon).
    pub target: String,
    pub read_only: bool,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// Bind mount of a host path (a volume's data directory or a bind source).
    Bind {
        source: PathBuf,
        /// The daemon creates `source` before the start (a volume's directory).
        #[serde(default)]
        create: bool,
    },
    /// A fresh tmpfs; 0 = the kernel's default size.
    Tmpfs { size_bytes: u64 },
}

const MAX_SYMLINKS: usize = 40;

/// Resolves `path` (absolute or relative to `/`) inside `root` as if `root`
/// were `/`: `..` stops at the root and symlinks (absolute or relative) are
/// followed inside it. Returns a host path below `root` (not necessarily
/// existing: missing trailing components are kept as they are).
/// With `create_dirs`, missing components are created as directories (mode 0755).
pub fn resolve_in_root(root: &Path, path: &str, create_dirs: bool) -> io::Result<PathBuf> {
    // Components still to walk, last one on top.
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    push_components(&mut todo, Path::new(path));
    let mut cur: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let host = join(root, &cur).join(&c);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links in {path:?}"
                    )));
                }
                let dest = std::fs::read_link(&host)?;
                if dest.is_absolute() {
                    cur.clear();
                }
                push_components(&mut todo, &dest);
            }
            Ok(_) => cur.push(c),
            Err(e) if e.kind() == io::ErrorKind::NotFound && create_dirs => {
                use std::os::unix::fs::DirBuilderExt;
                match std::fs::DirBuilder::new().mode(0o755).create(&host) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        // Raced with someone: walk it again.
                        todo.push(c);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                cur.push(c);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                cur.push(c);
                // Nothing below a missing component can be a symlink.
                while let Some(rest) = todo.pop() {
                    if rest == ".." {
                        cur.pop();
                    } else {
                        cur.push(rest);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(join(root, &cur))
}

fn push_components(todo: &mut Vec<std::ffi::OsString>, p: &Path) {
    let comps: Vec<_> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    todo.extend(comps.into_iter().rev());
}

fn join(root: &Path, comps: &[std::ffi::OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(c);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/", root.join("a/abs")).unwrap();
        symlink("../../../../..", root.join("a/rel")).unwrap();
        symlink("b", root.join("a/tob")).unwrap();
        assert_eq!(
            resolve_in_root(root, "/a/abs/etc", false).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, "/a/rel/etc", false).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, "/../../x", false).unwrap(),
            root.join("x")
        );
        assert_eq!(
            resolve_in_root(root, "/a/tob/c/d", true).unwrap(),
            root.join("a/b/c/d")
        );
        assert!(root.join("a/b/c/d").is_dir());
        symlink("loop", root.join("loop")).unwrap();
        assert!(resolve_in_root(root, "/loop/x", false).is_err());
    }
}
