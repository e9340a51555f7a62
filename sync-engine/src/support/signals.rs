//! Signals: parsing a signal named in a request, and delivery through a
//! pidfd (immune to pid reuse).
use crate::error::{EngineError, Result};
use quilt_runtime::proc;
use quilt_runtime::signal::Signal;
use std::os::fd::OwnedFd;

/// A signal named in a request ("TERM", "SIGTERM", "15"); SIGKILL when empty.
pub(crate) fn requested(signal: &str) -> Result<Signal> {
    if signal.is_empty() {
        return Ok(Signal::KILL);
    }
    Signal::parse(signal).ok_or_else(|| match signal.len() {
        // A signal's name is short: a long one is not echoed back.
        0..=32 => EngineError::InvalidArgument(format!("invalid signal {signal:?}")),
        n => EngineError::InvalidArgument(format!("invalid signal: a {n}-byte name")),
    })
}

/// Sends `sig` through `pidfd`; a process that is already gone is no error.
/// `what` names the target in an error.
pub(crate) fn send(pidfd: &OwnedFd, sig: Signal, what: &str) -> Result<()> {
    match proc::pidfd_send_signal(pidfd, sig) {
        Ok(()) => Ok(()),
        Err(e) if rustix::io::Errno::from_io_error(&e) == Some(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(EngineError::internal(
            &format!("signal {} to {what}", sig.number()),
            e,
        )),
    }
}

/// A pidfd of the container's PID 1, opened now and then checked to be the
/// child of the very supervisor recorded for it (same pid, same start
/// time): a pid reused by another process is never signalled. None when it
/// has no live PID 1. Reads /proc only (it never waits).
fn open_target(c: &crate::model::Container) -> Option<OwnedFd> {
    let (pid, shim, started) = (c.pid?, c.shim_pid?, c.shim_start_time?);
    let fd = proc::pidfd_open(pid).ok()?;
    (proc::parent_pid(pid) == Some(shim) && proc::start_time(shim) == Some(started)).then_some(fd)
}

/// Signals the container's PID 1 through a pidfd (immune to pid reuse),
/// opened and checked on the blocking pool; a container that has no live
/// PID 1 any more is left alone.
pub(crate) async fn signal_target(c: &crate::model::Container, sig: Signal) -> Result<()> {
    let row = c.clone();
    let Some(fd) = tokio::task::spawn_blocking(move || open_target(&row)).await? else {
        // Exited in the meantime: nothing to signal.
        return Ok(());
    };
    send(&fd, sig, &format!("container {}", c.name))
}
