//! Starting a container: spawns `quilt-shim run`, hands it the config and
//! waits for its StartReport. Blocking; call off the reactor.
use crate::spec::{ContainerConfig, StartReport};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot spawn {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("shim protocol error: {0}")]
    Protocol(String),
}

/// Spawns `SHIM run`, writes `config` as JSON to its stdin, reads the one-line
/// JSON StartReport from its stdout. The shim stays the daemon's child; the
/// caller reaps it later with `proc::try_reap` once its pidfd is readable.
/// When the report is Failed the shim has already exited; it is reaped here.
pub fn start(_shim: &Path, _config: &ContainerConfig) -> Result<StartReport, LaunchError> {
    todo!()
}
