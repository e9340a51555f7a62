//! Raw syscalls. The only module allowed to use `unsafe`; every block has a
//! `// SAFETY:` comment.
use crate::signal::Signal;
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// pidfd_send_signal(2) without siginfo. Named signals go through rustix;
/// the others (32..=64: glibc's two and the real-time signals) through the
/// raw syscall, because rustix only builds a `Signal` for those with an
/// `unsafe` constructor whose contract forbids sending glibc's reserved ones
/// (which `kill -s 32` may ask for).
pub fn pidfd_send_signal(pidfd: &impl AsFd, signal: Signal) -> io::Result<()> {
    if let Some(named) = rustix::process::Signal::from_named_raw(signal.number()) {
        return Ok(rustix::process::pidfd_send_signal(pidfd, named)?);
    }
    // SAFETY: the fd is borrowed for the duration of the call, the siginfo
    // pointer is NULL (allowed: the kernel fills in a default one).
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_fd().as_raw_fd(),
            signal.number(),
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every descriptor >= `from` close-on-exec (close_range(2) with
/// CLOSE_RANGE_CLOEXEC). Errors are ignored by callers: it is a hardening step.
pub fn cloexec_from(from: u32) -> io::Result<()> {
    // SAFETY: close_range only changes descriptor flags; CLOSE_RANGE_CLOEXEC
    // closes nothing, so no OwnedFd in this process is invalidated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            from,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Set once the process was seen single-threaded. The shim never starts
/// threads, so this stays true; it lets the check pass later when /proc no
/// longer shows this process (after setns into another pid namespace's mount
/// namespace).
static SEEN_SINGLE_THREADED: AtomicBool = AtomicBool::new(false);

/// Errors unless the calling process has exactly one thread.
pub fn ensure_single_threaded() -> io::Result<()> {
    match crate::proc::own_thread_count() {
        Some(1) => {
            SEEN_SINGLE_THREADED.store(true, Ordering::Relaxed);
            Ok(())
        }
        None if SEEN_SINGLE_THREADED.load(Ordering::Relaxed) => Ok(()),
        _ => Err(io::Error::other(
            "refusing to fork/clone: the process is not (known to be) single-threaded",
        )),
    }
}

/// Result of `clone_fork`, as seen by each side.
pub enum CloneResult {
    /// We are the new process (a copy of the caller, fork-style).
    Child,
    Parent {
        pid: Pid,
        pidfd: OwnedFd,
    },
}

/// The kernel's `struct clone_args` (CLONE_ARGS_SIZE_VER2, 88 bytes).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) with fork semantics (no CLONE_VM, no new stack: the child
/// continues from this call on a copy of the caller's memory, like fork(2)),
/// plus `flags` (namespaces), a pidfd for the child (CLONE_PIDFD) and, with
/// `cgroup`, CLONE_INTO_CGROUP: the child is born in that cgroup (v2), with
/// no migration afterwards. SIGCHLD is sent when the child exits.
/// Only allowed in a single-threaded process (checked).
pub fn clone_fork(flags: CloneFlags, cgroup: Option<BorrowedFd<'_>>) -> io::Result<CloneResult> {
    ensure_single_threaded()?;
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: u64::from(flags.bits() as u32) | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed, and `pidfd`
    // outlives the call. Without CLONE_VM and with no stack given, the child
    // runs on its own copy of our memory exactly as after fork(2); the process
    // is single-threaded (checked above), so no lock can be held by a thread
    // missing in the child. (glibc's cached TID is stale in the child; the
    // child only runs our own code up to execve/_exit, and glibc's raise()
    // asks the kernel for the TID.)
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        r if r < 0 => Err(io::Error::last_os_error()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent {
            pid: Pid::from_raw(pid as i32),
            // SAFETY: with CLONE_PIDFD the kernel stored a new descriptor in
            // `pidfd`, owned by nobody else.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// fork(2); only allowed in a single-threaded process (checked).
pub fn fork() -> io::Result<nix::unistd::ForkResult> {
    ensure_single_threaded()?;
    // SAFETY: single-threaded (checked above), so the child can keep running
    // arbitrary code: no lock can be held by a thread that does not exist in it.
    Ok(unsafe { nix::unistd::fork() }?)
}

/// _exit(2): leaves immediately, without running atexit handlers or flushing
/// stdio (what a forked child must do).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Resets every catchable signal to its default disposition (ignored signals
/// would otherwise stay ignored across execve).
pub fn reset_signal_dispositions() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL references no Rust code; failures (for
        // signal numbers glibc reserves) are harmless and ignored.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// Brings a network interface up (SIOCGIFFLAGS + SIOCSIFFLAGS with IFF_UP).
pub fn interface_up(name: &str) -> io::Result<()> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: ifreq is plain old data (arrays and a union of integers and
    // pointers); all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags inside `req`,
    // which lives for the whole call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled in ifru_flags, the union member read here.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads `req`, which lives for the whole call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Resolves once the process behind `pidfd` has exited (a pidfd turns
/// readable then). Event driven: the fd is registered with tokio's reactor.
/// Must be called inside a tokio runtime.
pub async fn pidfd_exited(pidfd: std::os::fd::OwnedFd) -> io::Result<()> {
    use tokio::io::{Interest, unix::AsyncFd};
    // SAFETY: the AsyncFd takes ownership of `pidfd`, so the descriptor stays
    // open and refers to the same pidfd for the AsyncFd's entire lifetime; it
    // is never exchanged through get_mut.
    let afd = match unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) } {
        Ok(afd) => afd,
        Err(e) => {
            // The reactor would not take it: wait on the blocking pool.
            let (pidfd, _) = e.into_parts();
            return tokio::task::spawn_blocking(move || wait_readable(&pidfd))
                .await
                .map_err(io::Error::other)?;
        }
    };
    let _ready = afd.readable().await?;
    Ok(())
}

/// Blocks until `fd` is readable (a pidfd: its process has exited).
fn wait_readable(fd: &OwnedFd) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// MOUNT_ATTR_* flags of mount_setattr(2).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
/// Set by `mount_setattr_fd` with a user namespace, never directly.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// struct mount_attr (linux/mount.h, MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) of `dirfd` + `path` with `flags` (AT_*).
fn mount_setattr(
    dirfd: libc::c_int,
    path: &std::ffi::CStr,
    flags: libc::c_int,
    attr: &MountAttr,
) -> io::Result<()> {
    // SAFETY: `path` is a NUL-terminated string and `attr` a mount_attr of
    // the size passed; both outlive the call, which only reads them. `dirfd`
    // is AT_FDCWD or a descriptor the caller borrows for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags as libc::c_uint,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// mount_setattr(2): sets the MOUNT_ATTR_* flags `set` on the mount at
/// `path` and, with `recursive`, on every mount below it (Linux 5.12+;
/// ENOSYS before). A final symlink in `path` is not followed.
pub fn mount_setattr_path(path: &std::path::Path, set: u64, recursive: bool) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut flags = libc::AT_SYMLINK_NOFOLLOW;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(libc::AT_FDCWD, &c, flags, &attr)
}

/// mount_setattr(2) with AT_RECURSIVE: `mount_setattr_path(path, set, true)`.
pub fn mount_setattr_recursive(path: &std::path::Path, set: u64) -> io::Result<()> {
    mount_setattr_path(path, set, true)
}

/// mount_setattr(2) on the detached mount tree `tree` (from open_tree(2)
/// with OPEN_TREE_CLONE): sets `set` and, with `userns`, makes it an
/// idmapped mount of that user namespace's mapping (MOUNT_ATTR_IDMAP: a
/// file owned by id N on disk is seen as owned by the namespace's id N).
/// With `recursive`, on every mount of the tree.
pub fn mount_setattr_tree(
    tree: BorrowedFd<'_>,
    set: u64,
    userns: Option<BorrowedFd<'_>>,
    recursive: bool,
) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    let attr = MountAttr {
        attr_set: set | userns.map_or(0, |_| MOUNT_ATTR_IDMAP),
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    mount_setattr(tree.as_raw_fd(), c"", flags, &attr)
}
