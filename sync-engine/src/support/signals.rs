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
    Signal::parse(signal)
        .ok_or_else(|| EngineError::InvalidArgument(format!("invalid signal {signal:?}")))
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

/// Signals the container's PID 1 through its pidfd (immune to pid reuse);
/// a container that has no live PID 1 any more is left alone.
pub(crate) fn signal_target(
    shared: &crate::engine::Shared,
    c: &crate::model::Container,
    sig: Signal,
) -> Result<()> {
    let Some(fd) = shared.live(&c.id).target() else {
        // Exited in the meantime: nothing to signal.
        return Ok(());
    };
    send(&fd, sig, &format!("container {}", c.name))
}
