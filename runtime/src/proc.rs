//! Process handles for the daemon: pidfds, non-blocking reaping, signals.
use crate::signal::Signal;
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;

/// pidfd_open(2) (pidfds are always close-on-exec). EINVAL for a pid <= 0.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid.max(0))
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// pidfd_send_signal(2) without siginfo.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: Signal) -> std::io::Result<()> {
    crate::sys::pidfd_send_signal(pidfd, signal)
}

/// waitpid(pid, WNOHANG) for one of our own children. Ok(true) = reaped,
/// Ok(false) = still running, ECHILD (not our child, e.g. after a daemon
/// restart) = Ok(true) as there is nothing left to reap.
pub fn try_reap(pid: i32) -> std::io::Result<bool> {
    match try_wait_status(pid) {
        Ok(status) => Ok(status.is_some()),
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(true),
        Err(e) => Err(e),
    }
}

/// waitpid(pid) for one of our own children, blocking until it exits: its
/// exit status (what `std::process::Child::wait` gives).
pub fn wait_blocking(pid: i32) -> std::io::Result<std::process::ExitStatus> {
    loop {
        if let Some(status) = wait_status(pid, None)? {
            return Ok(status);
        }
    }
}

/// waitpid(pid, WNOHANG) for one of our own children: its exit status once
/// it has exited (what `std::process::Child::try_wait` gives).
pub fn try_wait_status(pid: i32) -> std::io::Result<Option<std::process::ExitStatus>> {
    wait_status(pid, Some(WaitPidFlag::WNOHANG))
}

fn wait_status(
    pid: i32,
    flags: Option<WaitPidFlag>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    if pid <= 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    loop {
        return match waitpid(Pid::from_raw(pid), flags) {
            // The raw status as wait(2) encodes it.
            Ok(WaitStatus::Exited(_, code)) => {
                Ok(Some(std::process::ExitStatus::from_raw((code & 0xff) << 8)))
            }
            Ok(WaitStatus::Signaled(_, sig, core)) => Ok(Some(std::process::ExitStatus::from_raw(
                sig as i32 | if core { 0x80 } else { 0 },
            ))),
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(e) => Err(e.into()),
        };
    }
}

/// SIGKILLs one of our own unreaped children and waits for it. Blocking;
/// call off the reactor. The pid cannot have been reused: it is ours until
/// we reap it.
pub fn kill_and_reap_child(pid: i32) {
    if pid <= 0 {
        return;
    }
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let _ = wait_blocking(pid);
}

/// The fields of /proc/PID/stat after the command name (field 3 onwards).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    if pid <= 0 {
        return None;
    }
    stat_fields_of(&pid.to_string())
}

/// The same for /proc/ENTRY/stat (ENTRY: a pid or "self").
fn stat_fields_of(entry: &str) -> Option<Vec<String>> {
    let stat = read_stat(&format!("/proc/{entry}/stat"))?;
    let close = stat.rfind(')')?;
    Some(
        stat.get(close + 1..)?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// A /proc stat file, read into one buffer: a line of at most a few
/// hundred bytes, where `read_to_string` would size it and grow its buffer
/// read by read (twice per start on the fork server's and the shim's way,
/// see `sys::ensure_single_threaded`).
fn read_stat(path: &str) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    // A line that fills the buffer is not whole.
    (n < buf.len()).then(|| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Start time of a process (field 22 of /proc/PID/stat), None if it is gone.
pub fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(22 - 3)?.parse().ok()
}

/// State letter of a process (field 3: R, S, D, Z, ...), None if it is gone.
pub fn state(pid: i32) -> Option<String> {
    stat_fields(pid)?.into_iter().next()
}

/// Number of threads of the calling process (field 20 of /proc/self/stat).
/// Raises this process's soft limit of open files to its hard limit (a
/// daemon holds descriptors per container, exec and connection: the
/// default soft limit of 1024 runs out long before memory does). Returns
/// the limit now in force.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

pub(crate) fn own_thread_count() -> Option<u64> {
    stat_fields_of("self")?.get(20 - 3)?.parse().ok()
}

/// Parent PID of a process, None if it is gone.
pub fn parent_pid(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(4 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn stat_of_self() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
        assert_eq!(parent_pid(me), Some(nix::unistd::getppid().as_raw()));
        assert_eq!(start_time(0), None);
        assert_eq!(parent_pid(-3), None);
    }

    #[test]
    fn pidfd_and_reap() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let fd = pidfd_open(pid).unwrap();
        assert!(!try_reap(pid).unwrap());
        pidfd_send_signal(&fd, Signal::KILL).unwrap();
        // The pidfd becomes readable once the process has exited.
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
        assert_eq!(n, 1);
        assert!(try_reap(pid).unwrap());
        // Already reaped: ECHILD counts as reaped.
        assert!(try_reap(pid).unwrap());
        // Keep std's Child from trying anything after we reaped it.
        let _ = child.try_wait();
        assert!(pidfd_open(-1).is_err());
        assert!(pidfd_open(0).is_err());
    }

    #[test]
    fn named_and_realtime_signals_are_delivered() {
        use std::os::unix::process::ExitStatusExt;
        for sig in [
            Signal::TERM,
            Signal::parse("RTMIN+3").unwrap(),
            Signal::RTMAX,
        ] {
            let mut child = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            let fd = pidfd_open(child.id() as i32).unwrap();
            pidfd_send_signal(&fd, sig).unwrap();
            let status = child.wait().unwrap();
            assert_eq!(status.signal(), Some(sig.number()), "{sig}");
        }
    }
}
