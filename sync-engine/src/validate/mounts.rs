//! The checks made on a container's mounts at CreateContainer (before
//! anything is written, so a refused mount leaves nothing behind), and on
//! other host paths the daemon would expose or read wholesale.
use super::names::volume_name;
use crate::error::{EngineError, Result};
use crate::model::{MountSource, MountSpec};
use std::path::{Component, Path, PathBuf};

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(msg.into())
}

/// Container paths where nothing may be mounted (or below which).
const RESERVED_TARGETS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// A mount target: absolute, normalised (no `.`, `..`, empty components or
/// trailing slash), not `/`, not in /proc, /sys or /dev.
pub fn target(t: &str) -> Result<()> {
    let bad = |why: &str| invalid(format!("invalid mount target {}: {why}", super::echo(t)));
    if !t.starts_with('/') {
        return Err(bad("it must be an absolute path"));
    }
    if t.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    if t == "/" {
        return Err(bad("the root of the container cannot be a mount target"));
    }
    if t[1..].split('/').any(|c| c == "..") {
        return Err(bad("'..' is not allowed"));
    }
    if t[1..].split('/').any(|c| c.is_empty() || c == ".") {
        return Err(bad("the path must be normalised"));
    }
    for r in RESERVED_TARGETS {
        if t == r || t.starts_with(&format!("{r}/")) {
            return Err(bad(&format!("mounts in {r} are not allowed")));
        }
    }
    Ok(())
}

/// Host paths that may never be bind mounted: these, anything below them,
/// and anything containing them.
fn sensitive_host_paths(data_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "/proc",
        "/sys",
        "/dev",
        "/boot",
        "/run/quilt",
        "/etc/shadow",
        "/etc/gshadow",
        "/etc/shadow-",
        "/etc/gshadow-",
        "/etc/sudoers",
        "/etc/sudoers.d",
        "/root/.ssh",
        "/var/run/docker.sock",
        "/run/docker.sock",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    v.push(data_dir.to_path_buf());
    if let Ok(c) = data_dir.canonicalize() {
        v.push(c);
    }
    v
}

/// Checks a bind source and returns its canonical form. Blocking (canonicalize):
/// call from the blocking pool. `extra` holds further refused paths (the socket).
pub fn bind_source(src: &str, data_dir: &Path, extra: &[PathBuf]) -> Result<String> {
    host_path("bind mount source", src, data_dir, extra)
}

/// The same checks for any host directory a container would see or the
/// daemon would read wholesale (a directory image, an import source):
/// WHAT names it in the error. Blocking (canonicalize).
pub fn host_path(what: &str, src: &str, data_dir: &Path, extra: &[PathBuf]) -> Result<String> {
    let bad = |why: String| invalid(format!("invalid {what} {}: {why}", super::echo(src)));
    let p = Path::new(src);
    if !p.is_absolute() {
        return Err(bad("it must be an absolute host path".into()));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(bad("'..' is not allowed".into()));
    }
    let canon = p
        .canonicalize()
        .map_err(|e| bad(format!("cannot resolve it: {e}")))?;
    if canon == Path::new("/") {
        return Err(bad("the host's root cannot be used".into()));
    }
    let mut refused = sensitive_host_paths(data_dir);
    refused.extend(extra.iter().cloned());
    for r in &refused {
        if canon.starts_with(r) || r.starts_with(&canon) {
            return Err(bad(format!(
                "{} is a sensitive host path and cannot be used",
                canon.display()
            )));
        }
    }
    canon
        .into_os_string()
        .into_string()
        .map_err(|_| bad("the path is not valid UTF-8".into()))
}

/// Validates every mount; bind sources are replaced by their canonical path.
/// Blocking (see `bind_source`).
pub fn validate_all(
    mounts: &[MountSpec],
    data_dir: &Path,
    extra: &[PathBuf],
) -> Result<Vec<MountSpec>> {
    let mut out = Vec::with_capacity(mounts.len());
    for m in mounts {
        target(&m.target)?;
        if out.iter().any(|o: &MountSpec| o.target == m.target) {
            return Err(invalid(format!(
                "duplicate mount target {}",
                super::echo(&m.target)
            )));
        }
        let source = match &m.source {
            MountSource::Volume(n) => {
                volume_name(n)?;
                MountSource::Volume(n.clone())
            }
            MountSource::Bind(s) => MountSource::Bind(bind_source(s, data_dir, extra)?),
            MountSource::Tmpfs { size_bytes } => MountSource::Tmpfs {
                size_bytes: *size_bytes,
            },
        };
        out.push(MountSpec {
            target: m.target.clone(),
            read_only: m.read_only,
            source,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        for ok in ["/data", "/a/b", "/tmp/x"] {
            assert!(target(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "data", "/", "/a/../b", "/..", "/a/", "/a//b", "/./a", "/proc", "/proc/x",
            "/sys/fs", "/dev", "/dev/shm",
        ] {
            assert!(target(bad).is_err(), "{bad}");
        }
        assert!(target("/procx").is_ok());
    }

    #[test]
    fn bind_sources() {
        let data = tempfile::tempdir().unwrap();
        let ok = tempfile::tempdir().unwrap();
        let src = ok.path().to_str().unwrap();
        assert_eq!(
            bind_source(src, data.path(), &[]).unwrap(),
            ok.path().canonicalize().unwrap().to_str().unwrap()
        );
        let inside = data.path().join("x");
        std::fs::create_dir(&inside).unwrap();
        for bad in [
            "relative",
            "/",
            "/proc",
            "/proc/self",
            "/sys",
            "/dev",
            "/etc/shadow",
            "/no/such/path/here",
            data.path().to_str().unwrap(),
            inside.to_str().unwrap(),
            data.path().parent().unwrap().to_str().unwrap(),
        ] {
            assert!(bind_source(bad, data.path(), &[]).is_err(), "{bad}");
        }
        // A symlink to a refused path is refused too.
        let link = ok.path().join("l");
        std::os::unix::fs::symlink("/proc", &link).unwrap();
        assert!(bind_source(link.to_str().unwrap(), data.path(), &[]).is_err());
    }
}
