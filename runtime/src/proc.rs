//! Process handles for the daemon: pidfds, non-blocking reaping, signals.
use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    crate::sys::pidfd_open(pid)
}

/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> std::io::Result<()> {
    crate::sys::pidfd_send_signal(pidfd, signal)
}

/// waitpid(pid, WNOHANG) for one of our own children. Ok(true) = reaped,
/// Ok(false) = still running, ECHILD (not our child, e.g. after a daemon
/// restart) = Ok(true) as there is nothing left to reap.
pub fn try_reap(pid: i32) -> std::io::Result<bool> {
    if pid <= 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    loop {
        return match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => Ok(false),
            Ok(WaitStatus::Exited(..)) | Ok(WaitStatus::Signaled(..)) => Ok(true),
            // Stop/continue reports are not requested; treat anything else as alive.
            Ok(_) => Ok(false),
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => Ok(true),
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
    let pid = Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    while let Err(Errno::EINTR) = waitpid(pid, None) {}
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
    let stat = std::fs::read_to_string(format!("/proc/{entry}/stat")).ok()?;
    let close = stat.rfind(')')?;
    Some(
        stat.get(close + 1..)?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
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
pub(crate) fn own_thread_count() -> Option<u64> {
    stat_fields_of("self")?.get(20 - 3)?.parse().ok()
}

/// Parent PID of a process, None if it is gone.
pub fn parent_pid(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(4 - 3)?.parse().ok()
}

const SIGNAL_NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Kernel real-time signal range (glibc reserves 32 and 33 for itself).
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

/// "KILL", "SIGKILL", "kill", "9" -> 9. None for unknown names and numbers
/// outside 1..=64.
pub fn parse_signal(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = s.parse().ok()?;
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNAL_NAMES.iter().find(|(nm, _)| *nm == name) {
        return Some(n);
    }
    // RTMIN, RTMIN+n, RTMAX, RTMAX-n.
    let rt = |base: i32, rest: &str, sign: char| -> Option<i32> {
        if rest.is_empty() {
            return Some(base);
        }
        let off = rest.strip_prefix(sign)?;
        if off.is_empty() || !off.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let off: i32 = off.parse().ok()?;
        let n = if sign == '+' { base + off } else { base - off };
        (RTMIN..=RTMAX).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(RTMIN, rest, '+');
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(RTMAX, rest, '-');
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn signals() {
        for s in ["KILL", "SIGKILL", "kill", "sigkill", "SigKill", "9", " 9 "] {
            assert_eq!(parse_signal(s), Some(9), "{s}");
        }
        assert_eq!(parse_signal("TERM"), Some(15));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("HUP"), Some(1));
        assert_eq!(parse_signal("usr1"), Some(10));
        assert_eq!(parse_signal("SIGUSR2"), Some(12));
        assert_eq!(parse_signal("1"), Some(1));
        assert_eq!(parse_signal("64"), Some(64));
        assert_eq!(parse_signal("RTMIN"), Some(34));
        assert_eq!(parse_signal("SIGRTMIN+2"), Some(36));
        assert_eq!(parse_signal("rtmax-1"), Some(63));
        for bad in [
            "",
            "0",
            "65",
            "-1",
            "+9",
            "NOPE",
            "SIG",
            "9x",
            "RTMIN+40",
            "99999999999999",
        ] {
            assert_eq!(parse_signal(bad), None, "{bad}");
        }
    }

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
        pidfd_send_signal(&fd, libc::SIGKILL).unwrap();
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
    }
}
