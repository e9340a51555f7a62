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

/// openat2(2), tried again while the kernel answers EAGAIN. With
/// RESOLVE_IN_ROOT or RESOLVE_BENEATH, a walk through ".." fails so when a
/// mount or a rename happened anywhere on the host meanwhile (the kernel
/// cannot then prove that it stayed inside), and the caller is meant to
/// retry: on a host starting many containers that is common. Bounded: the
/// 128th EAGAIN is returned.
pub fn openat2<P: ?Sized + nix::NixPath, Fd: AsFd>(
    dirfd: Fd,
    path: &P,
    how: nix::fcntl::OpenHow,
) -> nix::Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match nix::fcntl::openat2(dirfd.as_fd(), path, how) {
            Err(Errno::EAGAIN) if tries < 128 => {
                tries += 1;
                std::thread::yield_now();
            }
            other => return other,
        }
    }
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

/// Marks the directory `dir` as the top of a directory hierarchy
/// (`chattr +T`). ext4's inode allocator then spreads its subdirectories
/// over the block groups, as it does the root's, instead of packing them
/// into the group of `dir`. Each container directory (and the files and
/// directories below it) thus lands in a group of its own; without a
/// journal, ext4 skips every inode freed in the last minute when it
/// allocates one, and with every container's inodes in one group each
/// mkdir walked the inodes of all the containers removed in that minute.
/// EOPNOTSUPP or ENOTTY where the filesystem has no such flag.
pub fn set_topdir(dir: &impl AsFd) -> io::Result<()> {
    const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
    let fd = dir.as_fd().as_raw_fd();
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int (the kernel's type, whatever
    // the request's name says) through the pointer, which points to a live
    // c_int; `fd` is an open descriptor borrowed for the call.
    let r = unsafe { libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, which
    // points to a live c_int; `fd` is borrowed for the call.
    let r = unsafe { libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &flags) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Hands the allocator's free memory back to the kernel (glibc
/// `malloc_trim(0)`): after a large transient allocation (a big listing) the
/// freed arenas otherwise stay in the process's RSS. Blocking (it walks
/// every arena): call it off the async runtime.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only returns unused heap pages to the kernel; it
    // takes the allocator's own locks and touches no memory the caller owns.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Closes every descriptor >= `from` (close_range(2)). Only for a process
/// that owns no `OwnedFd` at or above `from` it will use again (the
/// container's init, which keeps nothing but its stdio).
pub fn close_from(from: u32) -> io::Result<()> {
    // SAFETY: close_range closes descriptors; the caller guarantees that no
    // live owner of one of them will use or close it again.
    let r = unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
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
/// no migration afterwards. SIGCHLD is sent when the child exits (with
/// CLONE_PARENT, to the caller's parent: whatever the caller's exit sends).
/// Only allowed in a single-threaded process (checked).
pub fn clone_fork(flags: CloneFlags, cgroup: Option<BorrowedFd<'_>>) -> io::Result<CloneResult> {
    ensure_single_threaded()?;
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: u64::from(flags.bits() as u32) | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        // With CLONE_PARENT the child is its grandparent's, and the kernel
        // takes the signal the caller's own exit sends (clone3 refuses
        // one given here).
        exit_signal: if flags.contains(CloneFlags::CLONE_PARENT) {
            0
        } else {
            libc::SIGCHLD as u64
        },
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
    // missing in the child. (glibc's cached TID is stale in the child:
    // raise() and abort() ask the kernel for it, and Rust's locks and thread
    // ids do not use it, but the pthread calls that pass it to the kernel,
    // pthread_setaffinity_np, pthread_setschedparam, pthread_getcpuclockid,
    // PI or robust mutexes, must not be used in such a child. The shim,
    // which runs whole in one (the fork server's), uses none of them.)
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

/// Ignores signal `sig` (SIG_IGN). The command a helper later execs gets
/// default dispositions back (`reset_signal_dispositions`).
pub fn ignore_signal(sig: libc::c_int) {
    // SAFETY: installing SIG_IGN references no Rust code.
    unsafe {
        libc::signal(sig, libc::SIG_IGN);
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

/// bpf(2) commands, program and attach types used here (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// The `prog_load` member of `union bpf_attr`, up to `expected_attach_type`
/// (the kernel treats the members after it as zero).
#[repr(C)]
struct BpfProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `prog_attach` member of `union bpf_attr`, up to `replace_bpf_fd`.
#[repr(C)]
struct BpfProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The `query` member of `union bpf_attr`, up to `prog_cnt` (and the hole
/// after it, which must be zero).
#[repr(C)]
struct BpfProgQueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    hole: u32,
}

/// The `prog_id` member of `union bpf_attr` (BPF_PROG_GET_FD_BY_ID).
#[repr(C)]
struct BpfGetIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(2) with `attr` of type `T`; the result (a descriptor or 0).
///
/// # Safety
/// `attr` must be a member of `union bpf_attr` that `cmd` takes, and every
/// pointer in it must be valid for what the kernel reads or writes there
/// during the call.
unsafe fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller guarantees that `attr` is what `cmd` expects; its
    // size is passed, so the kernel reads and writes no more than that.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program made of `insns` (each the
/// kernel's `struct bpf_insn`, 8 bytes in native layout). On a verifier
/// refusal the error carries the end of the verifier's log.
pub fn bpf_load_device_program(insns: &[[u8; 8]], name: &str) -> io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut prog_name = [0u8; 16];
    for (dst, src) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *dst = src;
    }
    let load = |log: Option<&mut Vec<u8>>| {
        let (log_level, log_size, log_buf) = match log {
            Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
            None => (0, 0, 0),
        };
        let mut attr = BpfProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level,
            log_size,
            log_buf,
            kern_version: 0,
            prog_flags: 0,
            prog_name,
            prog_ifindex: 0,
            expected_attach_type: BPF_CGROUP_DEVICE,
        };
        // SAFETY: BPF_PROG_LOAD takes `prog_load`; `insns` (insn_cnt
        // instructions of 8 bytes), the NUL-terminated license and the log
        // buffer (log_size bytes, written by the kernel) outlive the call.
        let fd = unsafe { bpf(BPF_PROG_LOAD, &mut attr) }?;
        // SAFETY: BPF_PROG_LOAD returned a new descriptor, owned by nobody else.
        Ok::<_, io::Error>(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
    };
    match load(None) {
        Ok(fd) => Ok(fd),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EINVAL)) => {
            // Load again with the verifier's log, for the message only.
            let mut log = vec![0u8; 64 * 1024];
            let again = load(Some(&mut log));
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let tail: Vec<&str> = text.lines().rev().take(4).collect();
            match again {
                Ok(fd) => Ok(fd),
                Err(_) => Err(io::Error::new(
                    e.kind(),
                    format!(
                        "{e} (verifier: {})",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    ),
                )),
            }
        }
        Err(e) => Err(e),
    }
}

/// Attaches a device program to the cgroup open at `cgroup` (an
/// O_DIRECTORY descriptor), with no flag: the cgroup's one device program,
/// replaced when there was one, and no program may be attached below it.
pub fn bpf_attach_device_program(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut attr = BpfProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        replace_bpf_fd: 0,
    };
    // SAFETY: BPF_PROG_ATTACH takes `prog_attach`, which holds no pointer;
    // both descriptors are borrowed for the call.
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }.map(|_| ())
}

/// The ids of the device programs attached to the cgroup open at `cgroup`.
pub fn bpf_device_programs(cgroup: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = BpfProgQueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        hole: 0,
    };
    // SAFETY: BPF_PROG_QUERY takes `query`; the kernel writes at most
    // prog_cnt ids to `ids`, which outlives the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
    ids.truncate((attr.prog_cnt as usize).min(64));
    Ok(ids)
}

/// Whether the kernel still holds the BPF program with this id.
pub fn bpf_program_exists(id: u32) -> io::Result<bool> {
    let mut attr = BpfGetIdAttr {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: BPF_PROG_GET_FD_BY_ID takes `prog_id` etc., no pointer.
    match unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) } {
        Ok(fd) => {
            // SAFETY: a new descriptor, owned by nobody else: closed here.
            drop(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) });
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): the calling process gets a
/// new anonymous session keyring of its own, shared with nobody (not with
/// the host's login session, nor with the user's default session keyring).
/// Returns the new keyring's serial.
pub fn join_new_session_keyring() -> io::Result<i32> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: a NULL name asks for a new anonymous keyring; nothing is read
    // or written through pointers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r as i32)
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
        // Private: a tree cloned from a shared mount would otherwise stay
        // in its peer group, and mounts made below it in the container
        // would propagate to the host (and the host's into it).
        propagation: libc::MS_PRIVATE,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    mount_setattr(tree.as_raw_fd(), c"", flags, &attr)
}

/// mount_setattr(2) on the mount a descriptor refers to (AT_EMPTY_PATH),
/// with AT_RECURSIVE: sets `set` on it and on every mount below it.
pub fn mount_setattr_fd_recursive(fd: BorrowedFd<'_>, set: u64) -> io::Result<()> {
    mount_setattr_tree(fd, set, None, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens `a/../b` in a directory, resolved in it, while another thread
    /// mounts and unmounts (in a mount namespace of its own) as fast as it
    /// can: every mount makes the kernel's ".." check fail with EAGAIN;
    /// the wrapper tries again. Returns the first error of `open`, if any.
    fn open_while_mounting(open: impl Fn(&OwnedFd) -> nix::Result<OwnedFd>) -> Option<nix::Error> {
        use nix::mount::{MntFlags, MsFlags, mount, umount2};
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("b"), "").unwrap();
        let target = dir.path().join("a");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mounter = std::thread::spawn(move || {
            nix::sched::unshare(CloneFlags::CLONE_NEWNS).unwrap();
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .unwrap();
            while !flag.load(Ordering::Relaxed) {
                mount(
                    Some("tmpfs"),
                    &target,
                    Some("tmpfs"),
                    MsFlags::empty(),
                    None::<&str>,
                )
                .unwrap();
                umount2(&target, MntFlags::MNT_DETACH).unwrap();
            }
        });
        let root: OwnedFd = std::fs::File::open(dir.path()).unwrap().into();
        let mut first = None;
        for _ in 0..20_000 {
            if let Err(e) = open(&root) {
                first = Some(e);
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        mounter.join().unwrap();
        first
    }

    #[test]
    fn openat2_is_tried_again_while_mounts_race_its_dotdot() {
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (it mounts)"
        );
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT);
        // The kernel's own answer under this race (what the wrapper is for);
        // a kernel that never gives it leaves nothing to show.
        let raw = open_while_mounting(|root| nix::fcntl::openat2(root, "a/../b", how));
        assert!(matches!(raw, None | Some(Errno::EAGAIN)), "{raw:?}");
        let wrapped = open_while_mounting(|root| openat2(root, "a/../b", how));
        assert_eq!(
            wrapped, None,
            "the kernel answered EAGAIN {raw:?} unwrapped"
        );
    }

    #[test]
    fn a_directory_is_marked_top_or_refused() {
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let f = std::fs::File::open(dir.path()).unwrap();
        match set_topdir(&f) {
            Ok(()) => {
                // Set, and setting it again is a no-op.
                set_topdir(&f).unwrap();
                let out = std::process::Command::new("lsattr")
                    .arg("-d")
                    .arg(dir.path())
                    .output()
                    .unwrap();
                let attrs = String::from_utf8_lossy(&out.stdout);
                let flags = attrs.split_whitespace().next().unwrap_or("");
                assert!(flags.contains('T'), "{attrs}");
            }
            // A filesystem without inode flags (tmpfs), or without this one.
            Err(e) => assert!(
                matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL)
                ),
                "{e}"
            ),
        }
    }
}
