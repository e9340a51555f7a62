//! The container's volumes, bind mounts and tmpfs mounts, made inside its
//! mount namespace after the rootfs is ready and before it becomes the root.
use super::common::*;
use crate::mounts::{MountConfig, MountKind};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
    match crate::sys::openat2(nix::fcntl::AT_FDCWD, source, how) {
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

/// The bind mounts of `mounts` as detached copies of their trees (with the
/// mounts below them), read-only as asked, taken in the shim's namespace
/// before it enters the daemon's template (which may not see what was
/// mounted on the host since the daemon started): the container attaches
/// them wherever its own namespace began.
pub fn detached_trees(mounts: &[MountConfig]) -> SetupResult<Vec<OwnedFd>> {
    use rustix::mount::{OpenTreeFlags, open_tree};
    let mut trees = Vec::new();
    for m in mounts {
        if let MountKind::Bind { source, create } = &m.kind {
            let (fd, shown) = open_source(source, *create)?;
            let tree = open_tree(
                &fd,
                "",
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_EMPTY_PATH
                    | OpenTreeFlags::AT_RECURSIVE,
            )
            .map_err(|e| setup(format!("copying the mount {shown}"))(std::io::Error::from(e)))?;
            // Private (never the source's peer), read-only as asked.
            let attrs = if m.read_only {
                crate::sys::MOUNT_ATTR_RDONLY
                    | crate::sys::MOUNT_ATTR_NOSUID
                    | crate::sys::MOUNT_ATTR_NODEV
            } else {
                0
            };
            crate::sys::mount_setattr_tree(tree.as_fd(), attrs, None, true)
                .map_err(setup(format!("mount attributes of {shown}")))?;
            trees.push(tree);
        }
    }
    Ok(trees)
}

/// Makes every mount below `rootfs`. Targets are resolved inside the rootfs
/// (symlinks followed within it, never out of it); missing directories are
/// created, and an empty file when a file is bind mounted. With `trees`,
/// the bind mounts are those detached mount trees, one per bind mount in
/// order, made (read-only as asked; idmapped in a user namespace) by the
/// shim.
pub fn setup_mounts(
    rootfs: &Path,
    mounts: &[MountConfig],
    mut trees: Option<std::vec::IntoIter<OwnedFd>>,
) -> SetupResult<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    let root = open_root(rootfs)?;
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
        // Anything but a directory (a file, a socket such as an ssh-agent's
        // or docker.sock, a FIFO) is mounted on a file.
        let source_is_file = match &source {
            Some((fd, path)) => {
                nix::sys::stat::fstat(fd)
                    .map_err(|e| SetupError::new(EXIT_SETUP, format!("mount source {path}: {e}")))?
                    .st_mode
                    & libc::S_IFMT
                    != libc::S_IFDIR
            }
            None => false,
        };
        // The target is opened from a descriptor of the rootfs, every step
        // resolved inside it (openat2 RESOLVE_IN_ROOT): a directory swapped
        // for a symlink meanwhile (another container sharing a volume) can
        // never lead out. A missing target is created with O_EXCL and
        // O_NOFOLLOW, nothing is ever truncated, and the mount is made onto
        // the very object opened.
        let target = open_target(&root, &m.target, source_is_file)?;
        let target_path = format!("/proc/self/fd/{}", target.as_raw_fd());
        let target_path = Path::new(&target_path);
        match (&m.kind, &source) {
            (MountKind::Bind { .. }, Some((tree, shown))) if trees.is_some() => {
                rustix::mount::move_mount(
                    tree,
                    "",
                    &target,
                    "",
                    rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                        | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
                )
                .map_err(|e| {
                    setup(format!("bind mount {shown} on {}", m.target))(std::io::Error::from(e))
                })?;
            }
            (MountKind::Bind { .. }, Some((fd, shown))) => {
                let by_fd = format!("/proc/self/fd/{}", fd.as_raw_fd());
                nix::mount::mount(
                    Some(Path::new(&by_fd)),
                    target_path,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(setup(format!("bind mount {shown} on {}", m.target)))?;
                if m.read_only {
                    // The new mount, reached again from the rootfs (it now
                    // sits on the opened target).
                    let mounted = open_in_root(&root, &m.target)?;
                    read_only_recursive(&mounted, &m.target)?;
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
                    target_path,
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
fn read_only_recursive(mounted: &OwnedFd, shown: &str) -> SetupResult<()> {
    let attrs = crate::sys::MOUNT_ATTR_RDONLY
        | crate::sys::MOUNT_ATTR_NOSUID
        | crate::sys::MOUNT_ATTR_NODEV;
    match crate::sys::mount_setattr_fd_recursive(mounted.as_fd(), attrs) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "quilt-shim: no mount_setattr(2) (Linux < 5.12): mounts nested under the read-only {shown} stay writable"
            );
            let by_fd = format!("/proc/self/fd/{}", mounted.as_raw_fd());
            remount_read_only(Path::new(&by_fd), MsFlags::MS_NOSUID | MsFlags::MS_NODEV)
        }
        Err(e) => Err(SetupError::new(
            EXIT_SETUP,
            format!("read-only {shown}: {e}"),
        )),
    }
}

/// How every path inside the rootfs is resolved: from the rootfs's
/// descriptor, `..` and symlinks (absolute ones too) kept inside it, no
/// magic links (/proc/PID/fd/...).
fn in_root() -> ResolveFlag {
    ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// An O_PATH descriptor of the rootfs directory, the anchor every path
/// inside the container is resolved from.
pub(super) fn open_root(rootfs: &Path) -> SetupResult<OwnedFd> {
    nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(setup(format!("open {}", rootfs.display())))
}

/// The directory that holds `path` inside the rootfs (made when missing,
/// resolved inside the root) as a real descriptor (for the *at calls), and
/// the final component's name, which is never followed.
pub(super) fn open_parent(root: &OwnedFd, path: &str) -> SetupResult<(OwnedFd, String)> {
    let bad =
        |why: String| SetupError::new(EXIT_SETUP, format!("path in the container {path}: {why}"));
    let (parent, name) = match path.rsplit_once('/') {
        Some((p, n)) if !n.is_empty() && n != "." && n != ".." => (p, n),
        _ => return Err(bad("not a normalised absolute path".into())),
    };
    let parent = if parent.is_empty() { "/" } else { parent };
    if parent != "/" {
        // Made (and checked) like a mount target directory.
        open_target(root, parent, false)?;
    }
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(in_root());
    let dir = crate::sys::openat2(root, parent, how).map_err(|e| bad(format!("{parent}: {e}")))?;
    Ok((dir, name.to_owned()))
}

/// An O_PATH descriptor of `path` inside `rootfs` (resolved in it).
fn open_in_root(rootfs: &OwnedFd, path: &str) -> SetupResult<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(in_root());
    crate::sys::openat2(rootfs, path, how)
        .map_err(|e| SetupError::new(EXIT_SETUP, format!("mount target {path}: {e}")))
}

/// Opens the mount target `target` (absolute, normalised) inside `rootfs`,
/// creating what is missing: directories on the way, then the target itself
/// (a directory, or an empty file when a file is bind mounted). Returns an
/// O_PATH descriptor of it.
pub(super) fn open_target(root: &OwnedFd, target: &str, file: bool) -> SetupResult<OwnedFd> {
    let bad = |why: String| SetupError::new(EXIT_SETUP, format!("mount target {target}: {why}"));
    let comps: Vec<&str> = target.split('/').filter(|c| !c.is_empty()).collect();
    if comps.is_empty() || comps.iter().any(|c| *c == "." || *c == "..") {
        return Err(bad("not a normalised absolute path".into()));
    }
    let open = |path: &str, dir: bool| {
        let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
        if dir {
            flags |= OFlag::O_DIRECTORY;
        }
        crate::sys::openat2(root, path, OpenHow::new().flags(flags).resolve(in_root()))
    };
    // Each directory on the way, made when missing, then reopened through
    // the root (what was made may be raced; only what resolves inside the
    // root is ever used).
    let mut prefix = String::new();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let parent = if prefix.is_empty() {
            "/".to_owned()
        } else {
            prefix.clone()
        };
        prefix.push('/');
        prefix.push_str(comp);
        match open(&prefix, !last) {
            Ok(fd) if last => return Ok(fd),
            Ok(_) => continue,
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(bad(format!("{prefix}: {e}"))),
        }
        let dir = open(&parent, true).map_err(|e| bad(format!("{parent}: {e}")))?;
        let made = if last && file {
            nix::fcntl::openat(
                &dir,
                *comp,
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_WRONLY
                    | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::from_bits_truncate(0o644),
            )
            .map(drop)
        } else {
            nix::sys::stat::mkdirat(&dir, *comp, nix::sys::stat::Mode::from_bits_truncate(0o755))
        };
        match made {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(bad(format!("create {prefix}: {e}"))),
        }
        let fd = open(&prefix, !(last && file)).map_err(|e| bad(format!("{prefix}: {e}")))?;
        if last {
            return Ok(fd);
        }
    }
    unreachable!("the last component returns")
}
