//! A container's containment, from what was asked (`model::Security`) to
//! what the runtime enforces (`quilt_runtime::spec::SecurityConfig`): the
//! checks made at create, and the resolution made at each start.
//!
//! - `seccomp.rs`: the seccomp profile (default, unconfined, docker JSON);
//! - `devices.rs`: devices and GPUs (`gpus.rs`: finding the host's GPUs
//!   and the NVIDIA driver's files);
//! - `users.rs`: user, user namespace, read-only rootfs, capabilities, ulimits.
mod devices;
mod gpus;
mod seccomp;
mod users;

pub(crate) use users::{for_create, idmap, startup};

use crate::engine::Shared;
use crate::error::Result;
use crate::model::{Container, Security};
use quilt_runtime::spec::SecurityConfig;
use std::sync::Arc;

pub(crate) use seccomp::SeccompCache;

/// Checks made at create, before anything is written (INVALID_ARGUMENT).
pub(crate) fn validate(s: &Security) -> Result<()> {
    seccomp::validate(s)?;
    devices::validate(s)?;
    users::validate(s)
}

/// Checks against the host made at create, after `validate` (on the
/// blocking pool: paths are resolved and stat'ed): devices must be device
/// nodes, `--gpus` needs a GPU; a custom seccomp profile must compile.
/// Returns the options as they are stored (device paths canonical).
pub(crate) async fn check_host(shared: &Arc<Shared>, s: Security) -> Result<Security> {
    seccomp::check(shared, &s).await?;
    if s.devices.is_empty() && s.gpus.is_none() {
        return Ok(s);
    }
    let data_dir = shared.cfg().data_dir.clone();
    tokio::task::spawn_blocking(move || devices::check_host(&data_dir, s)).await?
}

/// `runtime_config`, when it needs no host file and no compile: no device
/// nodes or GPUs, and the default profile (compiled from start-up) or
/// none, its filter in the cache (a custom profile, up to a megabyte, is
/// not even hashed here). Such a start builds its config on the reactor in
/// microseconds instead of a round trip to the blocking pool. None: call
/// `runtime_config` on the blocking pool.
pub(crate) fn ready_config(shared: &Shared, c: &Container) -> Result<Option<SecurityConfig>> {
    if !c.security.devices.is_empty()
        || c.security.gpus.is_some()
        || matches!(c.security.seccomp, crate::model::Seccomp::Custom(_))
    {
        return Ok(None);
    }
    let mut cfg = users_config(shared, c)?;
    match seccomp::configure_cached(shared, c, &mut cfg) {
        true => Ok(Some(cfg)),
        false => Ok(None),
    }
}

/// What the runtime enforces for this start of `c`. Blocking (it may read
/// host files): call on the blocking pool.
pub(crate) fn runtime_config(shared: &Shared, c: &Container) -> Result<SecurityConfig> {
    let mut cfg = users_config(shared, c)?;
    devices::configure(shared, c, &mut cfg)?;
    seccomp::configure(shared, c, &mut cfg)?;
    Ok(cfg)
}

/// What both begin with: the disk limit, and the user, capabilities and
/// limits (the seccomp filter depends on the capabilities). No I/O.
fn users_config(shared: &Shared, c: &Container) -> Result<SecurityConfig> {
    let mut cfg = SecurityConfig {
        disk_limit_bytes: (c.disk_bytes > 0).then_some(c.disk_bytes),
        ..Default::default()
    };
    users::configure(shared, c, &mut cfg)?;
    Ok(cfg)
}

/// The same for a command exec'd into `c`: the container's containment, with
/// its user replaced when the exec names one. Blocking.
pub(crate) fn exec_config(
    shared: &Shared,
    c: &Container,
    user: Option<&str>,
) -> Result<SecurityConfig> {
    with_user(runtime_config(shared, c)?, user)
}

/// `exec_config` as `ready_config` builds it (None: call `exec_config` on
/// the blocking pool).
pub(crate) fn ready_exec_config(
    shared: &Shared,
    c: &Container,
    user: Option<&str>,
) -> Result<Option<SecurityConfig>> {
    match ready_config(shared, c)? {
        Some(cfg) => with_user(cfg, user).map(Some),
        None => Ok(None),
    }
}

/// The exec's own user, when it names one, in place of the container's.
fn with_user(mut cfg: SecurityConfig, user: Option<&str>) -> Result<SecurityConfig> {
    if let Some(u) = user {
        users::check_user(u)?;
        cfg.user = Some(u.to_owned());
    }
    Ok(cfg)
}
