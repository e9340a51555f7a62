//! A container's private user namespace, from outside it. The shim stays
//! root in the host's namespace: it writes the namespace's id maps, builds
//! the mounts the container sees its files through — the shared image as an
//! idmapped lower layer of an overlay mounted with the host's privileges
//! (so the image stays unchanged and overlayfs keeps its trusted xattrs),
//! volumes and bind mounts idmapped too — and hands them, as detached
//! mounts, to the container's first process, which waits for them on a
//! socket before it sets anything up.
use super::common::*;
use crate::mounts::{MountConfig, MountKind};
use crate::spec::IdMap;
use crate::sys;
use rustix::mount::{OpenTreeFlags, open_tree};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Tag of a message carrying one mount.
const MOUNT: u8 = b'm';
/// Tag of the last message: everything was sent.
const GO: u8 = b'g';

/// Writes the uid and gid maps of the user namespace of process `pid`:
/// ids 0..size inside are host ids host_uid.. / host_gid.. outside.
pub fn write_maps(pid: i32, map: &IdMap) -> SetupResult<()> {
    for (file, host) in [("uid_map", map.host_uid), ("gid_map", map.host_gid)] {
        let p = format!("/proc/{pid}/{file}");
        let line = format!("0 {host} {}\n", map.size);
        // One write(2): the kernel takes a map in a single call only.
        let n = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|mut f| f.write(line.as_bytes()))
            .map_err(setup(format!("writing {p}")))?;
        if n != line.len() {
            return Err(SetupError::new(
                EXIT_SETUP,
                format!("writing {p}: short write"),
            ));
        }
    }
    Ok(())
}

/// The user namespace of process `pid`, as a descriptor.
pub fn open_userns(pid: i32) -> SetupResult<OwnedFd> {
    let p = format!("/proc/{pid}/ns/user");
    std::fs::File::open(&p)
        .map(OwnedFd::from)
        .map_err(setup(format!("open {p}")))
}

/// Why an idmapped mount could not be made, with what to do about it.
fn idmap_error(what: &str, e: std::io::Error) -> SetupError {
    let hint = match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
            ": its file system (or one mounted below it) does not support idmapped mounts, \
             which a private user namespace needs (use --userns host)"
        }
        _ => "",
    };
    SetupError::new(EXIT_SETUP, format!("idmapped mount of {what}: {e}{hint}"))
}

/// A detached copy of the mount tree at `source` (with the mounts below
/// it), idmapped with `userns` and with the MOUNT_ATTR_* flags `attrs`.
pub fn idmapped_tree(
    source: BorrowedFd<'_>,
    what: &str,
    userns: BorrowedFd<'_>,
    attrs: u64,
) -> SetupResult<OwnedFd> {
    let tree = open_tree(
        source,
        "",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_EMPTY_PATH
            | OpenTreeFlags::AT_RECURSIVE,
    )
    .map_err(|e| idmap_error(what, e.into()))?;
    sys::mount_setattr_tree(tree.as_fd(), attrs, Some(userns), true)
        .map_err(|e| idmap_error(what, e))?;
    Ok(tree)
}

/// The container's root: a detached overlay of the idmapped image `lower`
/// and the container's DIR/upper and DIR/work (`volatile`: see
/// `ContainerConfig::volatile_rootfs`), mounted with the host's privileges
/// (fsopen/fsmount: it is in no mount namespace until the container
/// attaches it).
pub fn overlay(lower: &OwnedFd, dir: &Path, volatile: bool) -> SetupResult<OwnedFd> {
    if volatile {
        clear_volatile_mark(dir)?;
    }
    let lowerdir = format!("/proc/self/fd/{}", lower.as_raw_fd());
    crate::layer::detached_overlay(&lowerdir, dir, volatile)
        .map_err(|e| SetupError::new(EXIT_SETUP, e.to_string()))
}

/// Every mount a container with user namespace `userns` gets from the
/// shim, in the order the container takes them: its root (see `overlay`),
/// then one idmapped tree per bind mount of `mounts` (volumes and binds;
/// read-only ones already read-only, nosuid and nodev).
pub fn container_mounts(
    userns: BorrowedFd<'_>,
    image_rootfs: &Path,
    dir: &Path,
    volatile: bool,
    mounts: &[MountConfig],
) -> SetupResult<Vec<OwnedFd>> {
    let image = std::fs::File::open(image_rootfs)
        .map_err(setup(format!("open image {}", image_rootfs.display())))?;
    let lower = idmapped_tree(
        image.as_fd(),
        &format!("the image {}", image_rootfs.display()),
        userns,
        0,
    )?;
    let mut fds = vec![overlay(&lower, dir, volatile)?];
    for m in mounts {
        if let MountKind::Bind { source, create } = &m.kind {
            let (fd, shown) = super::mounts::open_source(source, *create)?;
            let attrs = if m.read_only {
                sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV
            } else {
                0
            };
            fds.push(idmapped_tree(fd.as_fd(), &shown, userns, attrs)?);
        }
    }
    Ok(fds)
}

/// Sends the mounts `fds` on `sock`, one per message, then the go-ahead.
pub fn send(sock: &OwnedFd, fds: &[OwnedFd]) -> SetupResult<()> {
    let io = |e| setup("handing the mounts to the container")(e);
    for fd in fds {
        super::fdpass::send(sock, MOUNT, Some(fd.as_fd())).map_err(io)?;
    }
    super::fdpass::send(sock, GO, None).map_err(io)
}

/// In the container's first process: waits for the shim's mounts (at most
/// `max`), received close-on-exec. An end of the socket without the
/// go-ahead means the shim gave up (it reports why itself).
pub fn receive(sock: &OwnedFd, max: usize) -> SetupResult<Vec<OwnedFd>> {
    let gave_up = || SetupError::new(EXIT_SETUP, "the shim did not prepare the user namespace");
    let mut fds = Vec::new();
    loop {
        let got = super::fdpass::receive(sock, true).map_err(setup("waiting for the shim"))?;
        match got {
            Some((GO, got)) if got.is_empty() => return Ok(fds),
            Some((MOUNT, got)) if got.len() == 1 && fds.len() < max => fds.extend(got),
            _ => return Err(gave_up()),
        }
    }
}

/// Makes the calling process (just entered into, or created in, a user
/// namespace) that namespace's root: ids 0, no supplementary groups (the
/// host's would show as nobody), its capabilities in the namespace kept.
pub fn become_root() -> SetupResult<()> {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    setgroups(&[]).map_err(setup("setgroups in the user namespace"))?;
    let (g, u) = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(g, g, g).map_err(setup("setresgid 0 in the user namespace"))?;
    setresuid(u, u, u).map_err(setup("setresuid 0 in the user namespace"))
}

/// A new user namespace with `map` and no process in it, as a descriptor
/// (for a stopped container's files: the same mapping as when it runs).
/// Only in a single-threaded process.
pub fn with_map(map: &IdMap) -> SetupResult<OwnedFd> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(setup("pipe2"))?;
    match sys::clone_fork(nix::sched::CloneFlags::CLONE_NEWUSER, None)
        .map_err(setup("clone a user namespace"))?
    {
        sys::CloneResult::Child => {
            // Hold the namespace until the parent has its descriptor (EOF).
            drop(w);
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(&r, &mut b);
            sys::exit_now(0)
        }
        sys::CloneResult::Parent { pid, pidfd } => {
            drop(r);
            let ns = write_maps(pid.as_raw(), map).and_then(|()| open_userns(pid.as_raw()));
            drop(w);
            drop(pidfd);
            while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
            ns
        }
    }
}
