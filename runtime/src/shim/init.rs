//! `--init`: a minimal init as the container's PID 1. It forks the workload
//! (which becomes PID 2), forwards the signals it receives to it, reaps every
//! process that is re-parented to it (zombies of daemonising children), and
//! exits with the workload's status once the workload has ended.
use super::common::*;
use crate::sys;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

/// Signals PID 1 passes on to the workload.
const FORWARDED: [Signal; 8] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGALRM,
];

/// Runs the workload under a reaping, forwarding PID 1. Returns only if the
/// fork itself fails. `errp_w` is the close-on-exec error pipe: the workload
/// child inherits it (exec closes it; a failure is written to it), PID 1
/// closes its own copy so the shim sees EOF once the workload has exec'd.
pub fn run_under_init(
    path: &CString,
    argv: &[CString],
    env: &[CString],
    argv0: &str,
    errp_w: &OwnedFd,
) -> SetupError {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    // Blocked before the fork, so nothing is lost between fork and sigwait.
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None) {
        return setup("blocking signals in init")(e);
    }
    match sys::fork() {
        Err(e) => setup("fork of the workload")(e),
        Ok(ForkResult::Child) => {
            reset_signals();
            report_and_exit(errp_w, execve(path, argv, env, argv0))
        }
        Ok(ForkResult::Parent { child }) => {
            // Hold no end of the error pipe or of the output pipes: the
            // workload's exec (or its error) and exit are what the shim sees.
            // PID 1 leaves through _exit and never drops `errp_w`'s owner,
            // so closing the number here closes it exactly once.
            let _ = nix::unistd::close(errp_w.as_raw_fd());
            quiet_stdio();
            // Nothing else either: not the log pipes, not a descriptor the
            // shim or quiltd held. A workload must never reach them through
            // /proc/1/fd. (PID 1 leaves through _exit; nothing it owns is
            // used or dropped after this.)
            let _ = sys::close_from(3);
            sys::exit_now(supervise(child, &set))
        }
    }
}

/// PID 1 needs no output of its own: point 0, 1, 2 at /dev/null so the
/// output pipes end when the workload's processes are gone.
fn quiet_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// The init loop; returns the exit code to leave with.
fn supervise(workload: Pid, set: &SigSet) -> i32 {
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(workload, sig);
            continue;
        }
        // Reap everything that has ended: the workload and any orphan.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == workload => return code,
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == workload => return 128 + s as i32,
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
