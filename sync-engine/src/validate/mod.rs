//! Checks on API input. Everything rejected here is INVALID_ARGUMENT and
//! leaves nothing behind (nothing has been written yet).
mod mounts;
pub(crate) mod names;
mod sizes;

use crate::error::{EngineError, Result};
use crate::model::CreateSpec;
pub(crate) use mounts::{host_path, validate_all as mounts};
pub use names::{container_name as name, hostname, image_name, volume_name};
pub use sizes::{MAX_MESSAGE, bounded_message, echo};
pub(crate) use sizes::{args as arg_budget, cut, path as path_budget};

/// The smallest disk budget: logs and overlay metadata alone take some.
const MIN_DISK_BYTES: u64 = 1024 * 1024;
/// Below this the kernel and the shim itself cannot run a workload sensibly.
const MIN_MEMORY_MB: i64 = 6;

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(msg.into())
}

pub fn env_entry(e: &str) -> Result<()> {
    match e.split_once('=') {
        Some((k, _)) if !k.is_empty() && !e.contains('\0') => Ok(()),
        _ => Err(invalid(format!(
            "invalid environment entry {}: expected KEY=VALUE",
            echo(e)
        ))),
    }
}

pub fn command(argv: &[String]) -> Result<()> {
    match argv.first() {
        None => return Err(invalid("the command is empty: give the program to run")),
        Some(a) if a.is_empty() => return Err(invalid("the command's program name is empty")),
        _ => {}
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(invalid("the command contains a NUL byte"));
    }
    Ok(())
}

pub fn working_dir(w: &str) -> Result<()> {
    if !w.starts_with('/') || w.contains('\0') {
        return Err(invalid(format!(
            "invalid working directory {}: it must be an absolute path",
            echo(w)
        )));
    }
    Ok(())
}

pub fn limits(memory_mb: i64, cpus: f64, pids: i64, host_cpus: usize) -> Result<()> {
    if memory_mb < 0 {
        return Err(invalid(format!(
            "invalid memory limit {memory_mb} MB: must not be negative"
        )));
    }
    if memory_mb > 0 && memory_mb < MIN_MEMORY_MB {
        return Err(invalid(format!(
            "memory limit {memory_mb} MB is too small: the minimum is {MIN_MEMORY_MB} MB"
        )));
    }
    if memory_mb > i64::MAX / (1024 * 1024) {
        return Err(invalid(format!("memory limit {memory_mb} MB is too large")));
    }
    if !cpus.is_finite() || cpus < 0.0 {
        return Err(invalid(format!(
            "invalid cpu limit {cpus}: must be a non-negative number"
        )));
    }
    if cpus > host_cpus as f64 {
        return Err(invalid(format!(
            "cpu limit {cpus} is more than the {host_cpus} cpus of this host"
        )));
    }
    if cpus > 0.0 && cpus < 0.01 {
        return Err(invalid(format!(
            "cpu limit {cpus} is too small: the minimum is 0.01"
        )));
    }
    if pids < 0 {
        return Err(invalid(format!(
            "invalid pids limit {pids}: must not be negative"
        )));
    }
    Ok(())
}

/// Label keys are not empty; neither keys nor values hold a NUL byte (a
/// text column of PostgreSQL cannot, and both backends keep the same).
pub fn labels(spec: &CreateSpec) -> Result<()> {
    for (k, v) in spec.labels.iter().chain(spec.node_labels.iter()) {
        if k.is_empty() || k.contains('\0') {
            return Err(invalid(format!("invalid label key {}", echo(k))));
        }
        if v.contains('\0') {
            return Err(invalid(format!(
                "invalid value of label {}: it holds a NUL byte",
                echo(k)
            )));
        }
    }
    Ok(())
}

/// All checks that need no I/O.
pub fn create_spec(spec: &CreateSpec, host_cpus: usize) -> Result<()> {
    sizes::create(spec)?;
    command(&spec.command)?;
    if spec.image.is_empty() {
        return Err(invalid(
            "an image is required (\"default\", a rootfs tarball or a directory)",
        ));
    }
    if let Some(n) = &spec.name {
        name(n)?;
    }
    if let Some(n) = &spec.node {
        names::node_name(n)?;
    }
    for (what, ns) in [
        ("ttl", spec.lifetime.ttl_ns),
        ("idle timeout", spec.lifetime.idle_timeout_ns),
    ] {
        if !(0..=crate::model::lifetime::MAX_LIFETIME_NS).contains(&ns) {
            return Err(invalid(format!("the {what} must be between 0 and a year")));
        }
    }
    if spec.auto_remove && spec.restart != crate::model::RestartPolicy::No {
        return Err(invalid(
            "a restart policy and --rm conflict: a removed container cannot be restarted",
        ));
    }
    if let Some(h) = &spec.hostname {
        hostname(h)?;
    }
    if let Some(w) = &spec.working_dir {
        working_dir(w)?;
    }
    for e in &spec.env {
        env_entry(e)?;
    }
    limits(spec.memory_mb, spec.cpus, spec.pids_limit, host_cpus)?;
    if spec.disk_bytes > 0 && spec.disk_bytes < MIN_DISK_BYTES {
        return Err(invalid(format!(
            "disk budget of {} bytes is too small: the minimum is {MIN_DISK_BYTES} bytes (1 MiB)",
            spec.disk_bytes
        )));
    }
    labels(spec)?;
    crate::security::validate(&spec.security)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a container may run (`--node`, `--node-label`) is checked
    /// as its own labels are: a bad name, a bad key or too many are
    /// refused before anything is placed.
    #[test]
    fn node_and_node_labels() {
        let spec = |f: fn(&mut CreateSpec)| {
            let mut s = CreateSpec::new("default");
            s.command = vec!["true".into()];
            f(&mut s);
            create_spec(&s, 2)
        };
        assert!(spec(|_| ()).is_ok());
        assert!(spec(|s| s.node = Some("node-a".into())).is_ok());
        assert!(spec(|s| s.node = Some("".into())).is_err());
        assert!(spec(|s| s.node = Some("a/b".into())).is_err());
        assert!(spec(|s| s.node = Some("n".repeat(64))).is_err());
        assert!(
            spec(|s| {
                s.node_labels.insert("zone".into(), "a".into());
            })
            .is_ok()
        );
        assert!(
            spec(|s| {
                s.node_labels.insert("".into(), "a".into());
            })
            .is_err()
        );
        assert!(
            spec(|s| {
                s.node_labels.insert("k".repeat(10_000), "a".into());
            })
            .is_err()
        );
        assert!(
            spec(|s| {
                for i in 0..10_000 {
                    s.node_labels.insert(format!("k{i}"), "v".into());
                }
            })
            .is_err()
        );
    }

    #[test]
    fn label_keys_and_values() {
        let spec = |k: &str, v: &str| {
            let mut s = CreateSpec::new("default");
            s.command = vec!["true".into()];
            s.labels.insert(k.into(), v.into());
            create_spec(&s, 2)
        };
        assert!(spec("a", "").is_ok());
        assert!(spec("com.example/\u{e9}", "\"quoted\" \\ {}").is_ok());
        assert!(spec("", "x").is_err());
        assert!(spec("a\0b", "x").is_err());
        let err = spec("k", "a\0b").unwrap_err().to_string();
        assert!(err.contains("NUL"), "{err}");
    }

    #[test]
    fn env_entries() {
        assert!(env_entry("A=1").is_ok());
        assert!(env_entry("A=").is_ok());
        assert!(env_entry("A=b=c").is_ok());
        assert!(env_entry("A").is_err());
        assert!(env_entry("=x").is_err());
    }

    #[test]
    fn commands() {
        assert!(command(&[]).is_err());
        assert!(command(&["".into()]).is_err());
        assert!(command(&["sh".into(), "-c".into(), "exit 7".into()]).is_ok());
    }

    #[test]
    fn limit_checks() {
        assert!(limits(0, 0.0, 0, 2).is_ok());
        assert!(limits(32, 0.5, 20, 2).is_ok());
        assert!(limits(-1, 0.0, 0, 2).is_err());
        assert!(limits(0, -0.5, 0, 2).is_err());
        assert!(limits(0, f64::NAN, 0, 2).is_err());
        assert!(limits(0, 3.0, 0, 2).is_err());
        assert!(limits(0, 0.0, -5, 2).is_err());
        assert!(limits(2, 0.0, 0, 2).is_err());
    }

    #[test]
    fn working_dirs() {
        assert!(working_dir("/srv").is_ok());
        assert!(working_dir("srv").is_err());
    }
}
