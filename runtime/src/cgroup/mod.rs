//! Cgroup v1 and v2: layout detection, creation with limits, membership,
//! OOM accounting and removal. What the two hierarchies share is here; each
//! backend is one file ([`v1`], [`v2`]), removal has its own, and so have the
//! device allow-list ([`devices`], compiled to BPF on v2 by [`bpf`]), the
//! freezer ([`freeze`]) and usage figures ([`stats`]).
mod bpf;
pub mod devices;
mod freeze;
mod remove;
mod stats;
#[cfg(test)]
mod testutil;
mod v1;
mod v2;

pub use freeze::{freeze, is_frozen, thaw};
pub use remove::remove;
pub use stats::{Usage, members, usage};
/// Cgroup v2: the group below the parent that holds the containers without
/// a memory cgroup of their own (see `v2::placed`); no parent may use the
/// name as a component.
pub use v2::SHARED as SHARED_MEMORY_GROUP;

use crate::spec::{CgroupLayout, CgroupSpec};
use std::io::{ErrorKind, Write};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no usable cgroup hierarchy found under {0}")]
    NoHierarchy(String),
    #[error("cgroup {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cgroup {path} still busy after {secs} s (members: {members})")]
    Busy {
        path: String,
        secs: u64,
        members: String,
    },
}

fn io_err(path: &Path, source: std::io::Error) -> CgroupError {
    CgroupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The controllers Quilt uses (v1: one hierarchy each, created in this
/// order; v2: enabled in the parents' subtree_control where available).
const CONTROLLERS: [&str; 4] = ["memory", "cpu", "pids", "io"];
/// The v1 hierarchies a container has a directory in (those mounted):
/// memory, cpu and pids for the limits, `devices` for the allow-list (v2 has
/// no devices controller: a BPF program attached to the cgroup does its
/// work), `cpuacct` and `blkio` for usage figures, `freezer` for pause.
const V1_HIERARCHIES: [&str; 7] = [
    "memory", "cpu", "pids", "devices", "cpuacct", "blkio", "freezer",
];
/// The v1 hierarchies a container started by an older quilt may lack
/// (joined when there, skipped when not).
const V1_OPTIONAL: [&str; 4] = ["devices", "cpuacct", "blkio", "freezer"];
/// CFS period used for CPU limits, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// Detects the host layout under /sys/fs/cgroup. Pure v2 (cgroup2 at the root,
/// `cgroup.controllers` present) -> V2; v1 controller directories (memory, cpu,
/// pids), even beside a cgroup2 mount at `unified` -> V1.
pub fn detect_layout() -> Result<CgroupLayout, CgroupError> {
    detect_layout_at(Path::new("/sys/fs/cgroup"))
}

/// Same as `detect_layout`, rooted elsewhere (tests use a fake tree).
pub fn detect_layout_at(root: &Path) -> Result<CgroupLayout, CgroupError> {
    if root.join("cgroup.controllers").is_file() {
        return Ok(CgroupLayout::V2 {
            root: root.to_path_buf(),
        });
    }
    if CONTROLLERS.iter().any(|c| root.join(c).is_dir()) {
        return Ok(CgroupLayout::V1 {
            root: root.to_path_buf(),
        });
    }
    Err(CgroupError::NoHierarchy(root.display().to_string()))
}

/// Whether a container of this spec gets a memory cgroup of its own: it has
/// a memory limit, or asks for one (see `CgroupSpec::own_memory`). The
/// others share one (v1: see `v1::shared_memory_dir`; v2: `v2::placed`).
fn wants_own_memory(spec: &CgroupSpec) -> bool {
    spec.limits.memory_bytes.is_some() || spec.own_memory
}

/// Checks the relative cgroup path: non-empty, no `..`, not absolute.
fn rel_path(spec: &CgroupSpec) -> Result<&Path, CgroupError> {
    let p = Path::new(spec.path.trim_matches('/'));
    let ok = !spec.path.trim_matches('/').is_empty()
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if !ok {
        return Err(io_err(
            p,
            std::io::Error::new(ErrorKind::InvalidInput, "invalid cgroup path"),
        ));
    }
    Ok(p)
}

/// The container's directories, one per controller hierarchy (only those
/// whose hierarchy is mounted).
fn dirs(spec: &CgroupSpec) -> Result<Vec<PathBuf>, CgroupError> {
    let rel = rel_path(spec)?;
    Ok(match &spec.layout {
        CgroupLayout::V2 { root } => vec![root.join(v2::placed(root, rel, spec))],
        CgroupLayout::V1 { root } => V1_HIERARCHIES
            .iter()
            .filter(|c| root.join(c).is_dir())
            .map(|c| root.join(c).join(rel))
            .collect(),
    })
}

/// Removes the (empty) parent cgroup `parent` that quiltd creates its
/// containers under, in every hierarchy. Best effort: a parent that still has
/// containers in it stays (rmdir fails with EBUSY). On v1 the parent's
/// memory cgroup, which containers without a memory limit share, is emptied
/// of their leftover charges first, so that it does not linger as a dying
/// cgroup.
pub fn remove_parent_if_empty(layout: &CgroupLayout, parent: &str) {
    let spec = CgroupSpec {
        layout: layout.clone(),
        path: parent.to_owned(),
        limits: Default::default(),
        // The parent itself, wherever it is.
        own_memory: true,
    };
    if let Ok(mut dirs) = dirs(&spec) {
        // v2: the group of the containers without a memory cgroup of their
        // own goes first, being below the parent.
        if let CgroupLayout::V2 { root } = layout {
            dirs.insert(0, root.join(parent.trim_matches('/')).join(v2::SHARED));
        }
        for d in dirs {
            // Checked again after the reclaim: a container that joined
            // meanwhile (another daemon with the same parent) keeps it.
            if is_unused(&d) {
                remove::release_charges(&d);
                if is_unused(&d) {
                    let _ = std::fs::remove_dir(&d);
                }
            }
        }
    }
}

/// Whether a cgroup directory exists with no process and no child cgroup
/// in it.
fn is_unused(dir: &Path) -> bool {
    let Ok(Some(procs)) = read_file(&dir.join("cgroup.procs")) else {
        return false;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    procs.trim().is_empty()
        && !entries
            .flatten()
            .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
}

/// Writes `value` to a control file (create + truncate, so it also works on a
/// fake tree of regular files).
fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.write_all(value.as_bytes()).map_err(|e| io_err(path, e))
}

fn read_file(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path, e)),
    }
}

fn cpu_quota_us(cpus: f64) -> u64 {
    let q = (cpus * CPU_PERIOD_US as f64).round();
    if q.is_finite() && q > 1000.0 {
        q as u64
    } else {
        1000
    }
}

/// Creates the container's cgroup(s) (enabling controllers in parents on v2)
/// and writes the limits. Idempotent.
pub fn create(spec: &CgroupSpec) -> Result<(), CgroupError> {
    let rel = rel_path(spec)?;
    match &spec.layout {
        CgroupLayout::V2 { root } => {
            let placed = v2::placed(root, rel, spec);
            let shared = placed != rel;
            v2::create(root, &placed, &spec.limits, shared)
        }
        CgroupLayout::V1 { root } => v1::create(root, rel, spec),
    }
}

/// Restricts the devices the cgroup's members may open or mknod to `rules`
/// (see [`devices::rules_for`]): on v1 in the `devices` controller, on v2
/// with a BPF device program attached to the cgroup. Must run after
/// `create` and before anything runs in the cgroup; applying it again (a
/// restart) replaces the previous list.
pub fn restrict_devices(
    spec: &CgroupSpec,
    rules: &[devices::DeviceRule],
) -> Result<(), CgroupError> {
    let rel = rel_path(spec)?;
    match &spec.layout {
        CgroupLayout::V2 { root } => bpf::apply_v2(root, &v2::placed(root, rel, spec), rules),
        CgroupLayout::V1 { root } => devices::apply_v1(root, rel, rules),
    }
}

/// v2: the ids of the device programs attached to the container's cgroup
/// (for diagnostics and tests). Empty on v1.
pub fn device_programs(spec: &CgroupSpec) -> Result<Vec<u32>, CgroupError> {
    use std::os::fd::AsFd;
    let CgroupLayout::V2 { root } = &spec.layout else {
        return Ok(Vec::new());
    };
    let rel = rel_path(spec)?;
    let dir = v2::open_dir(root, &v2::placed(root, rel, spec))?;
    crate::sys::bpf_device_programs(dir.as_fd()).map_err(|e| io_err(&root.join(rel), e))
}

/// Whether the kernel still holds the BPF program `id` (a device program
/// goes once its cgroup is removed; for tests).
pub fn bpf_program_exists(id: u32) -> std::io::Result<bool> {
    crate::sys::bpf_program_exists(id)
}

/// Moves `pid` into the container's cgroup(s) (the runtime itself joins with
/// `join_self` in the child, which avoids the parent-side write's RCU wait;
/// kept for the tests that check membership semantics).
#[cfg(test)]
pub fn add_process(spec: &CgroupSpec, pid: i32) -> Result<(), CgroupError> {
    let v = pid.to_string();
    for dir in dirs(spec)? {
        let procs = dir.join("cgroup.procs");
        // Never create the cgroup implicitly: it must exist (create() first).
        if !dir.is_dir() {
            return Err(io_err(&dir, std::io::Error::from(ErrorKind::NotFound)));
        }
        write_file(&procs, &v)?;
    }
    Ok(())
}

/// Moves the calling process into the container's cgroup(s). The caller
/// must be single-threaded. On v1 this writes "0" to each `tasks` file: moving
/// only the calling thread skips the kernel's global threadgroup lock, whose
/// write side costs an RCU grace period (several milliseconds) per
/// `cgroup.procs` write. On v2 it writes "0" to `cgroup.procs`. On v1 a
/// container without a memory cgroup of its own joins the shared one.
pub fn join_self(spec: &CgroupSpec) -> Result<(), CgroupError> {
    join_through(&open_join_files(spec)?)
}

/// The files `join_self` writes to, opened for writing: by the shim for
/// the container's first process, while that process sets up its mounts
/// (`join_through` then moves whichever process writes). Opened straight
/// away, with no stat of the hierarchy or the directory first (this is on
/// every start's path); a missing directory is looked into only when the
/// open says so.
pub fn open_join_files(spec: &CgroupSpec) -> Result<Vec<OwnedFd>, CgroupError> {
    let file = match spec.layout {
        CgroupLayout::V2 { .. } => v2::JOIN_FILE,
        CgroupLayout::V1 { .. } => v1::JOIN_FILE,
    };
    let mut files = Vec::new();
    for target in join_targets(spec)? {
        let path = target.dir.join(file);
        // As `write_file` opens (a file of a real cgroup is always there,
        // and truncating it is a no-op).
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path);
        match opened {
            Ok(f) => files.push(OwnedFd::from(f)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let mounted = target.hierarchy.as_deref().is_none_or(Path::is_dir);
                if mounted && !target.optional {
                    return Err(io_err(&target.dir, e));
                }
            }
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    Ok(files)
}

/// Moves the calling process (single-threaded) into the cgroups whose
/// membership files `files` are (`open_join_files`): "0" names the
/// writer, whoever opened the file.
pub fn join_through(files: &[OwnedFd]) -> Result<(), CgroupError> {
    for f in files {
        match rustix::io::write(f, b"0") {
            Ok(1) => {}
            Ok(_) => {
                return Err(io_err(
                    Path::new("a cgroup's membership file"),
                    std::io::Error::from(ErrorKind::WriteZero),
                ));
            }
            Err(e) => return Err(io_err(Path::new("a cgroup's membership file"), e.into())),
        }
    }
    Ok(())
}

/// A directory a member of the container joins.
struct JoinTarget {
    dir: PathBuf,
    /// It may be missing: a container started before quilt gave
    /// containers a devices (or cpuacct, blkio, freezer) cgroup, still
    /// running across an upgrade, has none to join; its commands are
    /// confined as it is. Every other hierarchy must be there.
    optional: bool,
    /// v1: the hierarchy; one that is not mounted is skipped.
    hierarchy: Option<PathBuf>,
}

fn join_targets(spec: &CgroupSpec) -> Result<Vec<JoinTarget>, CgroupError> {
    let rel = rel_path(spec)?;
    Ok(match &spec.layout {
        CgroupLayout::V2 { root } => vec![JoinTarget {
            dir: root.join(v2::placed(root, rel, spec)),
            optional: false,
            hierarchy: None,
        }],
        CgroupLayout::V1 { root } => V1_HIERARCHIES
            .iter()
            .filter_map(|&c| {
                let dir = match c {
                    "memory" => v1::memory_dir(root, rel, spec)?,
                    _ => root.join(c).join(rel),
                };
                Some(JoinTarget {
                    dir,
                    optional: V1_OPTIONAL.contains(&c),
                    hierarchy: Some(root.join(c)),
                })
            })
            .collect(),
    })
}

/// Moves the pooled container's first process `pid` (single-threaded,
/// waiting for its adoption) into what the adopting container's limits
/// need and it was not prepared in: on v1, a memory limit gives the
/// container a memory cgroup of its own, made by `create`; the process
/// leaves the shared one for it. (Its charges stay where they were made:
/// the preparation's, not the workload's.) Nothing moves on v2, where one
/// prepared without a memory cgroup of its own is refused a memory limit.
pub fn adopt(pooled: &CgroupSpec, new: &CgroupSpec, pid: i32) -> Result<(), CgroupError> {
    if let CgroupLayout::V2 { root } = &new.layout
        && wants_own_memory(new)
        && !wants_own_memory(pooled)
    {
        // Its cgroup has no memory controller and could not move without
        // a migration: a pool that may take memory limits prepares its
        // containers with `own_memory`.
        return Err(io_err(
            &root.join(&new.path),
            std::io::Error::new(
                ErrorKind::InvalidInput,
                "prepared without a memory cgroup of its own: cannot take a memory limit",
            ),
        ));
    }
    create(new)?;
    // `create` writes only the limits the adopter has: one the pooled
    // container was prepared with (a pool takes the default pids limit) and
    // the adopter goes without is lifted, never inherited.
    if pooled.limits.pids.is_some() && new.limits.pids.is_none() {
        lift_pids_limit(new)?;
    }
    let (CgroupLayout::V1 { root }, CgroupLayout::V1 { .. }) = (&new.layout, &pooled.layout) else {
        return Ok(());
    };
    if wants_own_memory(pooled) || !wants_own_memory(new) {
        return Ok(());
    }
    let rel = rel_path(new)?;
    if !root.join("memory").is_dir() {
        return Ok(());
    }
    let dir = root.join("memory").join(rel);
    write_file(&dir.join(v1::JOIN_FILE), &pid.to_string())
}

/// No pids limit for the container's cgroup any more.
fn lift_pids_limit(spec: &CgroupSpec) -> Result<(), CgroupError> {
    let rel = rel_path(spec)?;
    let dir = match &spec.layout {
        CgroupLayout::V2 { root } => root.join(v2::placed(root, rel, spec)),
        CgroupLayout::V1 { root } => root.join("pids").join(rel),
    };
    write_file(&dir.join("pids.max"), "max")
}

/// v2 only: an O_DIRECTORY descriptor of the container's cgroup, for
/// clone3(CLONE_INTO_CGROUP). None on v1.
pub fn open_v2_dir(spec: &CgroupSpec) -> Result<Option<std::fs::File>, CgroupError> {
    let CgroupLayout::V2 { root } = &spec.layout else {
        return Ok(None);
    };
    v2::open_dir(root, &v2::placed(root, rel_path(spec)?, spec)).map(Some)
}

/// Value of a `key N` line in a flat-keyed cgroup file.
fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == key).then(|| it.next()?.parse().ok())?
    })
}

/// Number of OOM kills recorded for the cgroup (0 if it does not exist).
pub fn oom_kills(spec: &CgroupSpec) -> Result<u64, CgroupError> {
    let rel = rel_path(spec)?;
    let file = match &spec.layout {
        CgroupLayout::V2 { root } => v2::oom_file(root, &v2::placed(root, rel, spec)),
        CgroupLayout::V1 { root } => v1::oom_file(root, rel),
    };
    Ok(read_file(&file)?
        .and_then(|s| keyed_value(&s, "oom_kill"))
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::testutil::{fake_v1, fake_v2, spec};
    use super::*;
    use crate::spec::Limits;
    use std::fs;

    #[test]
    fn detect() {
        let v2 = fake_v2();
        assert_eq!(
            detect_layout_at(v2.path()).unwrap(),
            CgroupLayout::V2 {
                root: v2.path().into()
            }
        );

        let v1 = fake_v1(false);
        assert_eq!(
            detect_layout_at(v1.path()).unwrap(),
            CgroupLayout::V1 {
                root: v1.path().into()
            }
        );

        // Hybrid: v1 controllers plus a cgroup2 mount at `unified`.
        let mixed = tempfile::tempdir().unwrap();
        for c in ["memory", "cpu", "pids", "unified"] {
            fs::create_dir(mixed.path().join(c)).unwrap();
        }
        fs::write(mixed.path().join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        assert_eq!(
            detect_layout_at(mixed.path()).unwrap(),
            CgroupLayout::V1 {
                root: mixed.path().into()
            }
        );

        // Only pids mounted is still v1.
        let pids_only = tempfile::tempdir().unwrap();
        fs::create_dir(pids_only.path().join("pids")).unwrap();
        assert!(matches!(
            detect_layout_at(pids_only.path()).unwrap(),
            CgroupLayout::V1 { .. }
        ));

        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            detect_layout_at(empty.path()),
            Err(CgroupError::NoHierarchy(_))
        ));
    }

    #[test]
    fn bad_paths_and_missing() {
        let t = fake_v2();
        let layout = CgroupLayout::V2 {
            root: t.path().into(),
        };
        for p in ["", "/", "../x", "a/../../b"] {
            let s = CgroupSpec {
                layout: layout.clone(),
                path: p.into(),
                limits: Limits::default(),
                own_memory: false,
            };
            assert!(create(&s).is_err(), "{p:?}");
        }
        let s = spec(layout, Limits::default());
        // Not created: add fails, oom reads 0, remove is a no-op.
        assert!(add_process(&s, 1).is_err());
        assert!(join_self(&s).is_err());
        assert!(open_v2_dir(&s).is_err());
        assert_eq!(oom_kills(&s).unwrap(), 0);
        remove(&s).unwrap();
    }
}
