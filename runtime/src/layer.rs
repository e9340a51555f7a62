//! A container's writable layer, made ahead of its start: a directory with
//! `upper`, `work` and `rootfs`, and a detached overlay of an image over
//! `upper` and `work` (fsopen/fsmount: in no mount namespace, and gone with
//! its last descriptor, whatever becomes of the process that holds it).
//!
//! An overlay's mount is the dearest step of a start: overlayfs makes its
//! work directory and tries the upper file system (a temporary file, a
//! whiteout, extended attributes), each a new inode there. A layer's
//! directory is a whole container directory made ahead: beside the layer's
//! directories it has the files every start makes there (its logs and its
//! exit status's reservation), empty. A start that takes one has it renamed
//! to the container's directory and hands the overlay to the shim, whose
//! container attaches it as its root instead of mounting one (see
//! `shim::container`).
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The directories of a layer, in a container's directory as in a layer's.
const DIRS: [&str; 3] = ["upper", "work", "rootfs"];

/// An overlay could not be made: the step, the kernel's error, and what
/// the kernel logged about it.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}{log}")]
pub struct OverlayError {
    pub what: String,
    pub source: io::Error,
    log: String,
}

/// A detached overlay of `lowerdir` (an overlay option value, escaped)
/// over `dir`/upper and `dir`/work; `volatile`: never synced (see
/// `ContainerConfig::volatile_rootfs`).
pub fn detached_overlay(
    lowerdir: &str,
    dir: &Path,
    volatile: bool,
) -> Result<OwnedFd, OverlayError> {
    use rustix::mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, fsconfig_create, fsconfig_set_flag,
        fsconfig_set_string, fsmount, fsopen,
    };
    let fail = |what: String, fs: Option<&OwnedFd>, e: rustix::io::Errno| OverlayError {
        what,
        source: e.into(),
        log: fs.map(context_log).unwrap_or_default(),
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| fail("fsopen overlay".into(), None, e))?;
    for (key, value) in [
        ("lowerdir", lowerdir.to_owned()),
        ("upperdir", overlay_escape(&dir.join("upper"))),
        ("workdir", overlay_escape(&dir.join("work"))),
    ] {
        fsconfig_set_string(&fs, key, value.as_str())
            .map_err(|e| fail(format!("overlay {key}={value}"), Some(&fs), e))?;
    }
    if volatile {
        fsconfig_set_flag(&fs, "volatile")
            .map_err(|e| fail("overlay volatile".into(), Some(&fs), e))?;
    }
    fsconfig_create(&fs)
        .map_err(|e| fail(format!("mount overlay for {}", dir.display()), Some(&fs), e))?;
    fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(|e| fail("fsmount overlay".into(), Some(&fs), e))
}

/// What the kernel logged on a file system context (lines like
/// "e overlay: ..."), for an error message.
fn context_log(fs: &OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..8 {
        match rustix::io::read(fs, &mut buf) {
            Ok(n) if n > 0 => out.push(String::from_utf8_lossy(&buf[..n]).trim().to_owned()),
            _ => break,
        }
    }
    if out.is_empty() {
        String::new()
    } else {
        format!(" ({})", out.join("; "))
    }
}

/// `p` as an overlay option value: `\`, `,` and `:` escaped.
pub fn overlay_escape(p: &Path) -> String {
    let mut s = String::new();
    for ch in p.to_string_lossy().chars() {
        if matches!(ch, '\\' | ',' | ':') {
            s.push('\\');
        }
        s.push(ch);
    }
    s
}

/// A layer made ahead: its directory and its overlay.
#[derive(Debug)]
pub struct Layer {
    dir: PathBuf,
    root: OwnedFd,
    /// The image root's device and inode when the layer was made: a layer
    /// of an image since removed (and perhaps made again) is not used.
    lower: (u64, u64),
}

impl Layer {
    /// Makes the directory `dir` (which must not exist; its parent must)
    /// with the layer's directories and a start's files, and the overlay of
    /// the image root `lower` over them. On error nothing of it is left
    /// but, possibly, `dir` (the caller removes it).
    pub fn make(lower: &Path, dir: &Path, volatile: bool) -> io::Result<Layer> {
        use std::os::unix::fs::DirBuilderExt;
        let meta = std::fs::metadata(lower)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", lower.display()),
            ));
        }
        // As a container directory made at its start is (DirBuilder's
        // default mode, less the umask).
        let mut b = std::fs::DirBuilder::new();
        b.create(dir)?;
        b.mode(0o755);
        for d in DIRS {
            b.create(dir.join(d))?;
        }
        for log in [crate::logfile::SHIM_LOG, crate::logfile::LOG_FILE] {
            crate::logfile::open_append(&dir.join(log))?;
        }
        crate::exitfile::reserve(dir)?;
        let root = detached_overlay(&overlay_escape(lower), dir, volatile)
            .map_err(|e| io::Error::new(e.source.kind(), e.to_string()))?;
        Ok(Layer {
            dir: dir.to_owned(),
            root,
            lower: (meta.dev(), meta.ino()),
        })
    }

    /// Its directory (in the pool's).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether it is a layer of the image root at `lower` as it is now.
    pub fn is_of(&self, lower: &Path) -> bool {
        std::fs::metadata(lower).is_ok_and(|m| (m.dev(), m.ino()) == self.lower)
    }

    /// Makes the layer the container directory `dir`, and gives its
    /// overlay for the container's root. Where `dir` does not exist, the
    /// layer's directory is renamed to it (`Installed::left` is None);
    /// where it does (it must not have the layer's directories yet), they
    /// are moved into it, and the layer's directory is left, with what else
    /// it has, for the caller to remove. On error what was moved is moved
    /// back (as far as it can be) and the layer is given back with the
    /// error.
    pub fn install(self, dir: &Path) -> Result<Installed, (Layer, io::Error)> {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, &self.dir, CWD, dir, RenameFlags::NOREPLACE) {
            Ok(()) => {
                return Ok(Installed {
                    root: self.root,
                    left: None,
                });
            }
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err((self, e.into())),
        }
        let from = match std::fs::File::open(&self.dir) {
            Ok(f) => f,
            Err(e) => return Err((self, e)),
        };
        let to = match std::fs::File::open(dir) {
            Ok(f) => f,
            Err(e) => return Err((self, e)),
        };
        for (i, d) in DIRS.iter().enumerate() {
            if let Err(e) = renameat_with(&from, *d, &to, *d, RenameFlags::NOREPLACE) {
                for back in DIRS[..i].iter().rev() {
                    let _ = renameat_with(&to, *back, &from, *back, RenameFlags::NOREPLACE);
                }
                return Err((self, e.into()));
            }
        }
        Ok(Installed {
            root: self.root,
            left: Some(self.dir),
        })
    }
}

/// A layer made a container's (`Layer::install`).
#[derive(Debug)]
pub struct Installed {
    /// The overlay, for the container's root.
    pub root: OwnedFd,
    /// The layer's own directory where it was left (its directories were
    /// moved into a container directory that existed): the caller's to
    /// remove.
    pub left: Option<PathBuf>,
}

impl AsFd for Layer {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.root.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs root (an overlay), as the shim does: fails without it.
    #[test]
    fn a_layer_made_ahead_moves_into_a_container_and_shows_its_image() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (it mounts overlays)"
        );
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("image");
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/os-release"), "ID=test\n").unwrap();
        let (pool, container) = (t.path().join("pool"), t.path().join("c1"));
        std::fs::create_dir_all(&pool).unwrap();
        std::fs::create_dir_all(&container).unwrap();

        let layer = Layer::make(&lower, &pool.join("l1"), false).unwrap();
        assert!(layer.is_of(&lower));
        assert!(!layer.is_of(&t.path().join("other")));
        // A container directory that has a layer already keeps it.
        std::fs::create_dir(container.join("work")).unwrap();
        let (layer, e) = layer.install(&container).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        for d in DIRS {
            assert!(layer.dir().join(d).is_dir(), "{d} moved back");
        }
        assert!(!container.join("upper").exists());
        std::fs::remove_dir(container.join("work")).unwrap();

        // Into a container directory that exists: the directories move,
        // the layer's directory is left with the rest.
        let installed = layer.install(&container).unwrap();
        for d in DIRS {
            assert!(container.join(d).is_dir(), "{d} moved in");
            assert!(!pool.join("l1").join(d).exists());
        }
        assert_eq!(installed.left.as_deref(), Some(pool.join("l1").as_path()));
        assert!(pool.join("l1").join(crate::logfile::LOG_FILE).is_file());
        drop(installed);

        // Where there is none, the layer's directory becomes it, with the
        // files a start makes.
        let container = t.path().join("c2");
        let layer = Layer::make(&lower, &pool.join("l2"), false).unwrap();
        let installed = layer.install(&container).unwrap();
        assert_eq!(installed.left, None);
        assert!(!pool.join("l2").exists());
        for d in DIRS {
            assert!(container.join(d).is_dir(), "{d}");
        }
        for f in [crate::logfile::LOG_FILE, crate::logfile::SHIM_LOG] {
            let m = std::fs::metadata(container.join(f)).unwrap();
            assert_eq!((m.len(), m.mode() & 0o777), (0, 0o640), "{f}");
        }
        // Its exit status's space is reserved: clearing finds it so.
        let reserved = std::fs::metadata(container.join(".exit.json.reserved")).unwrap();
        crate::exitfile::clear(&container).unwrap();
        let again = std::fs::metadata(container.join(".exit.json.reserved")).unwrap();
        assert_eq!((reserved.ino(), reserved.len()), (again.ino(), again.len()));
        let root = installed.root;
        // Attached, the overlay shows the image, and what is written
        // through it lands in the container's upper directory.
        let at = container.join("rootfs");
        rustix::mount::move_mount(
            &root,
            "",
            rustix::fs::CWD,
            &at,
            rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .unwrap();
        let seen = std::fs::read_to_string(at.join("etc/os-release"));
        let wrote = std::fs::write(at.join("written"), "x");
        rustix::mount::unmount(&at, rustix::mount::UnmountFlags::DETACH).unwrap();
        assert_eq!(seen.unwrap(), "ID=test\n");
        wrote.unwrap();
        assert_eq!(
            std::fs::read_to_string(container.join("upper/written")).unwrap(),
            "x"
        );
        assert!(!lower.join("written").exists());
    }

    #[test]
    fn a_layer_of_no_image_is_not_made() {
        let t = tempfile::tempdir().unwrap();
        let e = Layer::make(&t.path().join("none"), &t.path().join("l"), false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(!t.path().join("l").exists());
    }
}
