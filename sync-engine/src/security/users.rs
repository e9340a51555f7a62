//! (filled in by the containment work)
use crate::engine::Shared;
use crate::error::Result;
use crate::model::{Container, Security};
use quilt_runtime::spec::SecurityConfig;

pub(super) fn validate(_s: &Security) -> Result<()> {
    Ok(())
}

pub(super) fn configure(_shared: &Shared, _c: &Container, _cfg: &mut SecurityConfig) -> Result<()> {
    Ok(())
}

/// Checks a user given to an exec.
pub(super) fn check_user(_user: &str) -> Result<()> {
    Ok(())
}
