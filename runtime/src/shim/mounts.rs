//! The container's volumes, bind mounts and tmpfs mounts, made inside its
//! mount namespace after the rootfs is ready and before pivot_root.
use super::common::*;
use crate::mounts::{MountConfig, MountKind, resolve_in_root};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

/// Opens a bind source as an O_PATH descriptor. A user's bind source was
/// canonicalised when the container was created, so no component of it may
/// be a symlink now: one that is was swapped in since, and is refused.
/// (Volume directories live under the data dir, which may itself sit
/// behind a symlink; only root can change them.)
pub(super) fn open_source(source: &Path, volume: bool) -> SetupResult<(OwnedFd, String)> {
    let shown = source.display().to_string();
    let swapped = || {
        SetupError::new(
            EXIT_SETUP,
            format!(
                "mount source {shown} has changed into a symlink since the container was created"
            ),
        )
    };
    let failed =
        |e: nix::errno::Errno| SetupError::new(EXIT_SETUP, format!("mount source {shown}: {e}"));
    let mut resolve = ResolveFlag::RESOLVE_NO_MAGICLINKS;
    if !volume {
        resolve |= ResolveFlag::RESOLVE_NO_SYMLINKS;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(resolve);
    match nix::fcntl::openat2(nix::fcntl::AT_FDCWD, source, how) {
        Ok(fd) => Ok((fd, shown)),
        Err(nix::errno::Errno::ELOOP) => Err(swapped()),
        Err(nix::errno::Errno::ENOSYS) => {
            // Before Linux 5.6: open without following a final symlink, then
            // check that the object reached is the one the path names.
            let fd = nix::fcntl::open(
                source,
                OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(failed)?;
            if !volume {
                let is_link = nix::sys::stat::fstat(&fd)
                    .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
                    .map_err(failed)?;
                let reached = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                if is_link || reached.ok().as_deref() != Some(source) {
                    return Err(swapped());
                }
            }
            Ok((fd, shown))
        }
        Err(e) => Err(failed(e)),
    }
}

/// Makes every mount below `rootfs`. Targets are resolved inside the rootfs
/// (symlinks followed within it, never out of it); missing directories are
/// created, and an empty file when a file is bind mounted. With `trees`
/// (a user namespace), the bind mounts are those detached mount trees, one
/// per bind mount in order, made (idmapped, read-only as asked) by the shim.
pub fn setup_mounts(
    rootfs: &Path,
    mounts: &[MountConfig],
    mut trees: Option<std::vec::IntoIter<OwnedFd>>,
) -> SetupResult<()> {
    for m in mounts {
        // The source is pinned first: the mount is made from this fd, so a
        // path swapped after the checks cannot redirect it.
        let source = match (&m.kind, trees.as_mut()) {
            (MountKind::Bind { source, .. }, Some(trees)) => {
                let tree = trees.next().ok_or_else(|| {
                    SetupError::new(EXIT_SETUP, "the shim sent fewer mounts than there are")
                })?;
                Some((tree, source.display().to_string()))
            }
            (MountKind::Bind { source, create }, None) => Some(open_source(source, *create)?),
            (MountKind::Tmpfs { .. }, _) => None,
        };
        let source_is_file = match &source {
            Some((fd, path)) => {
                nix::sys::stat::fstat(fd)
                    .map_err(|e| SetupError::new(EXIT_SETUP, format!("mount source {path}: {e}")))?
                    .st_mode
                    & libc::S_IFMT
                    == libc::S_IFREG
            }
            None => false,
        };
        let parent = match m.target.rsplit_once('/') {
            Some((p, n)) if !n.is_empty() && n != ".." && n != "." => p,
            _ => {
                return Err(SetupError::new(
                    EXIT_SETUP,
                    format!("invalid mount target {:?}", m.target),
                ));
            }
        };
        resolve_in_root(rootfs, if parent.is_empty() { "/" } else { parent }, true)
            .map_err(setup(format!("mount target {}", m.target)))?;
        // Symlinks (also a final one) are followed inside the rootfs only.
        let target = resolve_in_root(rootfs, &m.target, false)
            .map_err(setup(format!("mount target {}", m.target)))?;
        if !target.starts_with(rootfs) || target == rootfs {
            return Err(SetupError::new(
                EXIT_SETUP,
                format!("mount target {} leaves the container", m.target),
            ));
        }
        match std::fs::symlink_metadata(&target) {
            Ok(_) => {}
            Err(_) if source_is_file => {
                std::fs::File::create(&target)
                    .map_err(setup(format!("create {}", target.display())))?;
            }
            Err(_) => {
                std::fs::create_dir(&target)
                    .map_err(setup(format!("mkdir {}", target.display())))?;
            }
        }
        match (&m.kind, &source) {
            (MountKind::Bind { .. }, Some((tree, shown))) if trees.is_some() => {
                rustix::mount::move_mount(
                    tree,
                    "",
                    rustix::fs::CWD,
                    &target,
                    rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
                )
                .map_err(|e| {
                    setup(format!("bind mount {shown} on {}", m.target))(std::io::Error::from(e))
                })?;
            }
            (MountKind::Bind { .. }, Some((fd, shown))) => {
                let by_fd = format!("/proc/self/fd/{}", fd.as_raw_fd());
                nix::mount::mount(
                    Some(Path::new(&by_fd)),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(setup(format!("bind mount {shown} on {}", m.target)))?;
                if m.read_only {
                    read_only_recursive(&target)?;
                }
            }
            (MountKind::Bind { .. }, None) => unreachable!("bind sources are opened above"),
            (MountKind::Tmpfs { size_bytes }, _) => {
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if m.read_only {
                    flags |= MsFlags::MS_RDONLY;
                }
                let mut data = String::from("mode=1777");
                if *size_bytes > 0 {
                    data.push_str(&format!(",size={size_bytes}"));
                }
                mnt(
                    Some(Path::new("tmpfs")),
                    &target,
                    Some("tmpfs"),
                    flags,
                    Some(&data),
                )?;
            }
        }
    }
    Ok(())
}

/// Makes a bind mount and every mount nested under it read-only (and
/// nosuid, nodev). Kernels without mount_setattr(2) (before 5.12) get a
/// read-only remount of the top mount only.
fn read_only_recursive(target: &Path) -> SetupResult<()> {
    let attrs = crate::sys::MOUNT_ATTR_RDONLY
        | crate::sys::MOUNT_ATTR_NOSUID
        | crate::sys::MOUNT_ATTR_NODEV;
    match crate::sys::mount_setattr_recursive(target, attrs) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "quilt-shim: no mount_setattr(2) (Linux < 5.12): mounts nested under the read-only {} stay writable",
                target.display()
            );
            remount_read_only(target, MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
        }
        Err(e) => Err(SetupError::new(
            EXIT_SETUP,
            format!("read-only {}: {e}", target.display()),
        )),
    }
}
