//! Raw syscalls. The only module allowed to use `unsafe`; every block has a
//! `// SAFETY:` comment.
use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// pidfd_open(2) with O_CLOEXEC semantics (pidfds are always close-on-exec).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    if pid <= 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: pidfd_open takes a pid and a flags word, touches no memory of
    // ours and returns a new file descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// pidfd_send_signal(2) without siginfo.
pub fn pidfd_send_signal(pidfd: &impl AsFd, signal: i32) -> io::Result<()> {
    // SAFETY: the fd is borrowed for the duration of the call, the siginfo
    // pointer is NULL (allowed: the kernel fills in a default one).
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_fd().as_raw_fd(),
            signal,
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

/// prctl(PR_CAPBSET_DROP, cap). EINVAL means the capability does not exist.
pub fn capbset_drop(cap: u32) -> Result<(), Errno> {
    // SAFETY: integer-only prctl.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
    Errno::result(r).map(drop)
}

/// prctl(PR_CAPBSET_READ, cap): Ok(true) if the capability is in the bounding set.
pub fn capbset_read(cap: u32) -> Result<bool, Errno> {
    // SAFETY: integer-only prctl.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
    Errno::result(r).map(|v| v == 1)
}

/// Clears the ambient capability set.
pub fn ambient_clear_all() -> Result<(), Errno> {
    // SAFETY: integer-only prctl.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    Errno::result(r).map(drop)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// capget(2) (version 3): the calling thread's permitted set.
pub fn capget_permitted() -> Result<u64, Errno> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and two data structs laid out as the kernel's
    // __user_cap_header_struct / __user_cap_data_struct[2] for version 3;
    // both live for the whole call and the kernel writes only into `data`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    Errno::result(r)?;
    Ok(u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32))
}

/// capset(2) (version 3, 64-bit sets) on the calling thread:
/// effective = permitted = inheritable = `caps` (bit n = capability n).
pub fn capset_all(caps: u64) -> Result<(), Errno> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let lo = caps as u32;
    let hi = (caps >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: lo,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: hi,
        },
    ];
    // SAFETY: header and two data structs laid out as the kernel's
    // __user_cap_header_struct / __user_cap_data_struct[2] for version 3;
    // both live for the whole call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    Errno::result(r).map(drop)
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

/// Index of the first `needle` in `haystack` (glibc's vectorised memchr).
pub fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    if haystack.is_empty() {
        return None;
    }
    // SAFETY: the pointer and length describe the live, initialised slice;
    // memchr only reads within it and returns NULL or a pointer into it.
    let p = unsafe {
        libc::memchr(
            haystack.as_ptr().cast(),
            libc::c_int::from(needle),
            haystack.len(),
        )
    };
    if p.is_null() {
        None
    } else {
        Some(p as usize - haystack.as_ptr() as usize)
    }
}

/// ioctl(TIOCSCTTY): makes the terminal `fd` the controlling terminal of
/// the calling process (a session leader without one).
pub fn set_controlling_tty(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal) and
    // touches no memory of ours; the fd is borrowed for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// ioctl(TIOCSWINSZ): sets the window size of the terminal `fd`.
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a struct winsize from the pointer, which
    // points to `ws`, alive for the whole call.
    let r = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCSWINSZ,
            &ws as *const libc::winsize,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// MOUNT_ATTR_* flags of mount_setattr(2).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

/// struct mount_attr (linux/mount.h, MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) with AT_RECURSIVE: sets the MOUNT_ATTR_* flags `set` on
/// the mount at `path` and on every mount below it (Linux 5.12+; ENOSYS
/// before). A final symlink in `path` is not followed.
pub fn mount_setattr_recursive(path: &std::path::Path, set: u64) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `c` is a NUL-terminated path and `attr` a mount_attr of the
    // size passed; both outlive the call, which only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            (libc::AT_RECURSIVE | libc::AT_SYMLINK_NOFOLLOW) as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn memchr_matches_naive() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for needle in [0u8, 10, 250, 251, 255] {
            for start in [0, 1, 7, 100, 4999, 5000] {
                let s = &data[start..];
                assert_eq!(
                    super::memchr(needle, s),
                    s.iter().position(|&b| b == needle)
                );
            }
        }
        assert_eq!(super::memchr(b'\n', b""), None);
    }
}
