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
