//! Cgroup v1 and v2: layout detection, creation with limits, membership,
//! OOM accounting and removal.
use crate::spec::{CgroupLayout, CgroupSpec, Limits};
use std::io::{ErrorKind, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

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
/// order; v2: enabled in the parents' subtree_control).
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];
/// CFS period used for CPU limits, in microseconds.
const CPU_PERIOD_US: u64 = 100_000;
/// How long `remove` keeps retrying rmdir while killed processes leave. A
/// killed task keeps its cgroup populated until it has finished exiting,
/// which on a loaded host can take well over a second.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(10);

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
        CgroupLayout::V2 { root } => vec![root.join(rel)],
        CgroupLayout::V1 { root } => CONTROLLERS
            .iter()
            .filter(|c| root.join(c).is_dir())
            .map(|c| root.join(c).join(rel))
            .collect(),
    })
}

/// Removes the (empty) parent cgroup `parent` that quiltd creates its
/// containers under, in every hierarchy. Best effort: a parent that still has
/// containers in it stays (rmdir fails with EBUSY).
pub fn remove_parent_if_empty(layout: &CgroupLayout, parent: &str) {
    let spec = CgroupSpec {
        layout: layout.clone(),
        path: parent.to_owned(),
        limits: Default::default(),
    };
    if let Ok(dirs) = dirs(&spec) {
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
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
        CgroupLayout::V2 { root } => create_v2(root, rel, &spec.limits),
        CgroupLayout::V1 { root } => create_v1(root, rel, &spec.limits),
    }
}

fn create_v1(root: &Path, rel: &Path, limits: &Limits) -> Result<(), CgroupError> {
    let needed = |ctrl: &str| match ctrl {
        "memory" => limits.memory_bytes.is_some(),
        "cpu" => limits.cpus.is_some(),
        _ => limits.pids.is_some(),
    };
    for ctrl in CONTROLLERS {
        let hier = root.join(ctrl);
        if !hier.is_dir() {
            if needed(ctrl) {
                return Err(io_err(
                    &hier,
                    std::io::Error::new(
                        ErrorKind::NotFound,
                        format!("{ctrl} controller not mounted but a {ctrl} limit was requested"),
                    ),
                ));
            }
            continue;
        }
        let dir = hier.join(rel);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        match ctrl {
            "memory" => {
                if let Some(bytes) = limits.memory_bytes {
                    let v = bytes.to_string();
                    let mem = dir.join("memory.limit_in_bytes");
                    let memsw = dir.join("memory.memsw.limit_in_bytes");
                    let has_memsw = memsw.exists();
                    match write_file(&mem, &v) {
                        Ok(()) => {}
                        // Raising the limit above the current memsw limit: memsw first.
                        Err(CgroupError::Io { source, .. })
                            if has_memsw && source.raw_os_error() == Some(libc::EINVAL) =>
                        {
                            write_file(&memsw, &v)?;
                            write_file(&mem, &v)?;
                        }
                        Err(e) => return Err(e),
                    }
                    if has_memsw {
                        write_file(&memsw, &v)?;
                    }
                }
            }
            "cpu" => {
                if let Some(cpus) = limits.cpus {
                    write_file(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write_file(
                        &dir.join("cpu.cfs_quota_us"),
                        &cpu_quota_us(cpus).to_string(),
                    )?;
                }
            }
            _ => {
                if let Some(n) = limits.pids {
                    write_file(&dir.join("pids.max"), &n.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// Controllers listed in a space-separated control file.
fn controller_list(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| w.trim_start_matches(['+', '-']).to_string())
        .collect()
}

fn create_v2(root: &Path, rel: &Path, limits: &Limits) -> Result<(), CgroupError> {
    // Walk from the root down to the parent of the leaf, enabling our
    // controllers for the children of each level.
    let comps: Vec<_> = rel.components().collect();
    let mut level = root.to_path_buf();
    // What the kernel makes available to `level`'s children is what `level`
    // enabled; used when a (fake) level has no cgroup.controllers file.
    let mut inherited: Option<Vec<String>> = None;
    for comp in &comps {
        let available = match read_file(&level.join("cgroup.controllers"))? {
            Some(s) => controller_list(&s),
            None => inherited.clone().unwrap_or_default(),
        };
        let enabled = read_file(&level.join("cgroup.subtree_control"))?
            .map(|s| controller_list(&s))
            .unwrap_or_default();
        let missing: Vec<&str> = CONTROLLERS
            .iter()
            .copied()
            .filter(|c| available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c))
            .collect();
        if !missing.is_empty() {
            let line = missing
                .iter()
                .map(|c| format!("+{c}"))
                .collect::<Vec<_>>()
                .join(" ");
            write_file(&level.join("cgroup.subtree_control"), &line)?;
        }
        let mut now_enabled: Vec<String> = enabled
            .into_iter()
            .filter(|e| available.iter().any(|a| a == e))
            .collect();
        now_enabled.extend(missing.iter().map(|s| s.to_string()));
        inherited = Some(now_enabled);
        level.push(comp);
        match std::fs::create_dir(&level) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(&level, e)),
        }
    }
    let leaf = level;
    if let Some(bytes) = limits.memory_bytes {
        write_file(&leaf.join("memory.max"), &bytes.to_string())?;
        let swap = leaf.join("memory.swap.max");
        if swap.exists() {
            write_file(&swap, "0")?;
        }
    }
    if let Some(cpus) = limits.cpus {
        write_file(
            &leaf.join("cpu.max"),
            &format!("{} {}", cpu_quota_us(cpus), CPU_PERIOD_US),
        )?;
    }
    if let Some(n) = limits.pids {
        write_file(&leaf.join("pids.max"), &n.to_string())?;
    }
    Ok(())
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
/// `cgroup.procs` write. On v2 it writes "0" to `cgroup.procs`.
pub fn join_self(spec: &CgroupSpec) -> Result<(), CgroupError> {
    let file = match spec.layout {
        CgroupLayout::V2 { .. } => "cgroup.procs",
        CgroupLayout::V1 { .. } => "tasks",
    };
    for dir in dirs(spec)? {
        if !dir.is_dir() {
            return Err(io_err(&dir, std::io::Error::from(ErrorKind::NotFound)));
        }
        write_file(&dir.join(file), "0")?;
    }
    Ok(())
}

/// v2 only: an O_DIRECTORY descriptor of the container's cgroup, for
/// clone3(CLONE_INTO_CGROUP). None on v1.
pub fn open_v2_dir(spec: &CgroupSpec) -> Result<Option<std::fs::File>, CgroupError> {
    use std::os::unix::fs::OpenOptionsExt;
    let CgroupLayout::V2 { root } = &spec.layout else {
        return Ok(None);
    };
    let dir = root.join(rel_path(spec)?);
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(&dir)
        .map(Some)
        .map_err(|e| io_err(&dir, e))
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
        CgroupLayout::V2 { root } => root.join(rel).join("memory.events"),
        CgroupLayout::V1 { root } => root.join("memory").join(rel).join("memory.oom_control"),
    };
    Ok(read_file(&file)?
        .and_then(|s| keyed_value(&s, "oom_kill"))
        .unwrap_or(0))
}

/// SIGKILLs whatever is still in the cgroup, then rmdirs it in every
/// controller (leaves first). Succeeds if it does not exist.
pub fn remove(spec: &CgroupSpec) -> Result<(), CgroupError> {
    // One deadline for the whole removal, however many hierarchies (v1).
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let mut first_err = None;
    for dir in dirs(spec)? {
        if let Err(e) = remove_tree(&dir, deadline) {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Kills the processes of one cgroup directory (not its children).
fn kill_members(dir: &Path) {
    let kill = dir.join("cgroup.kill");
    if kill.exists() {
        // v2 (5.14+): kills the whole subtree at once.
        let _ = write_file(&kill, "1");
    }
    if let Ok(Some(procs)) = read_file(&dir.join("cgroup.procs")) {
        for pid in procs
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            if pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The processes still in a cgroup, with their state, for error messages.
fn describe_members(dir: &Path) -> String {
    let procs = read_file(&dir.join("cgroup.procs")).ok().flatten();
    let events = read_file(&dir.join("cgroup.events")).ok().flatten();
    let mut out: Vec<String> = procs
        .unwrap_or_default()
        .split_whitespace()
        .map(|pid| {
            let state = pid.parse().ok().and_then(crate::proc::state);
            format!("{pid}:{}", state.as_deref().unwrap_or("?"))
        })
        .collect();
    if out.is_empty() {
        out.push("none listed".into());
    }
    if let Some(ev) = events {
        out.push(ev.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    out.join(", ")
}

/// Removes a cgroup directory and its child cgroups, leaves first.
fn remove_tree(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    if !dir.is_dir() {
        return Ok(());
    }
    kill_members(dir);
    // Child cgroups are the subdirectories (control files are regular files).
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    remove_tree(&entry.path(), deadline)?;
                }
            }
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    }
    let mut delay = Duration::from_millis(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                // Killed processes take a moment to leave; new ones may have forked.
                kill_members(dir);
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(CgroupError::Busy {
                    path: dir.display().to_string(),
                    secs: REMOVE_TIMEOUT.as_secs(),
                    members: describe_members(dir),
                });
            }
            Err(e) => return Err(io_err(dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn spec(layout: CgroupLayout, limits: Limits) -> CgroupSpec {
        CgroupSpec {
            layout,
            path: "quilt/c1".into(),
            limits,
        }
    }

    fn read(p: impl AsRef<Path>) -> String {
        fs::read_to_string(p).unwrap()
    }

    fn fake_v2() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        fs::write(
            t.path().join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        )
        .unwrap();
        fs::write(t.path().join("cgroup.subtree_control"), "").unwrap();
        fs::write(t.path().join("cgroup.procs"), "1\n").unwrap();
        t
    }

    fn fake_v1(with_memsw: bool) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for c in ["memory", "cpu", "pids", "cpuset"] {
            fs::create_dir(t.path().join(c)).unwrap();
        }
        if with_memsw {
            // Pre-create the leaf with a memsw file, as the kernel would.
            let leaf = t.path().join("memory/quilt/c1");
            fs::create_dir_all(&leaf).unwrap();
            fs::write(
                leaf.join("memory.memsw.limit_in_bytes"),
                "9223372036854771712\n",
            )
            .unwrap();
        }
        t
    }

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
    fn v2_create_add_oom() {
        let t = fake_v2();
        let root = t.path();
        let layout = CgroupLayout::V2 { root: root.into() };
        let s = spec(
            layout,
            Limits {
                memory_bytes: Some(64 << 20),
                cpus: Some(1.5),
                pids: Some(100),
            },
        );
        // A pre-existing leaf with a swap knob (the kernel would provide it).
        fs::create_dir_all(root.join("quilt/c1")).unwrap();
        fs::write(root.join("quilt/c1/memory.swap.max"), "max\n").unwrap();

        create(&s).unwrap();
        assert_eq!(
            read(root.join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        // The intermediate level had no cgroup.controllers: it inherits what
        // the root enabled.
        assert_eq!(
            read(root.join("quilt/cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        let leaf = root.join("quilt/c1");
        assert_eq!(read(leaf.join("memory.max")), "67108864");
        assert_eq!(read(leaf.join("memory.swap.max")), "0");
        assert_eq!(read(leaf.join("cpu.max")), "150000 100000");
        assert_eq!(read(leaf.join("pids.max")), "100");
        assert!(!leaf.join("cgroup.subtree_control").exists());

        // Idempotent.
        create(&s).unwrap();
        assert_eq!(read(leaf.join("cpu.max")), "150000 100000");

        add_process(&s, 4242).unwrap();
        assert_eq!(read(leaf.join("cgroup.procs")), "4242");
        join_self(&s).unwrap();
        assert_eq!(read(leaf.join("cgroup.procs")), "0");
        assert!(open_v2_dir(&s).unwrap().is_some());

        assert_eq!(oom_kills(&s).unwrap(), 0);
        fs::write(
            leaf.join("memory.events"),
            "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(oom_kills(&s).unwrap(), 2);
    }

    #[test]
    fn v2_only_available_controllers_and_no_limits() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::write(root.join("cgroup.controllers"), "cpu io memory\n").unwrap();
        fs::write(root.join("cgroup.subtree_control"), "memory\n").unwrap();
        fs::create_dir(root.join("quilt")).unwrap();
        fs::write(root.join("quilt/cgroup.controllers"), "memory\n").unwrap();
        fs::write(root.join("quilt/cgroup.subtree_control"), "memory\n").unwrap();
        let s = spec(CgroupLayout::V2 { root: root.into() }, Limits::default());
        create(&s).unwrap();
        // memory already enabled at the root: only cpu added; pids unavailable.
        assert_eq!(read(root.join("cgroup.subtree_control")), "+cpu");
        // Nothing missing at the second level: untouched.
        assert_eq!(read(root.join("quilt/cgroup.subtree_control")), "memory\n");
        let leaf = root.join("quilt/c1");
        assert!(leaf.is_dir());
        for f in ["memory.max", "cpu.max", "pids.max", "memory.swap.max"] {
            assert!(!leaf.join(f).exists(), "{f}");
        }
    }

    #[test]
    fn v1_create_add_oom() {
        let t = fake_v1(true);
        let root = t.path();
        let s = spec(
            CgroupLayout::V1 { root: root.into() },
            Limits {
                memory_bytes: Some(32 << 20),
                cpus: Some(0.004),
                pids: Some(64),
            },
        );
        create(&s).unwrap();
        let mem = root.join("memory/quilt/c1");
        assert_eq!(read(mem.join("memory.limit_in_bytes")), "33554432");
        assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "33554432");
        let cpu = root.join("cpu/quilt/c1");
        assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
        assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "1000"); // clamped minimum
        assert_eq!(read(root.join("pids/quilt/c1/pids.max")), "64");
        // cpuset is not one of ours.
        assert!(!root.join("cpuset/quilt").exists());

        create(&s).unwrap();
        add_process(&s, 77).unwrap();
        for c in ["memory", "cpu", "pids"] {
            assert_eq!(
                read(root.join(c).join("quilt/c1/cgroup.procs")),
                "77",
                "{c}"
            );
        }

        assert_eq!(oom_kills(&s).unwrap(), 0);
        fs::write(
            mem.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
        )
        .unwrap();
        assert_eq!(oom_kills(&s).unwrap(), 5);
    }

    #[test]
    fn v1_cpu_rounding_and_no_memsw() {
        let t = fake_v1(false);
        let root = t.path();
        let s = spec(
            CgroupLayout::V1 { root: root.into() },
            Limits {
                memory_bytes: Some(1000),
                cpus: Some(0.33333),
                pids: None,
            },
        );
        create(&s).unwrap();
        assert_eq!(read(root.join("cpu/quilt/c1/cpu.cfs_quota_us")), "33333");
        assert_eq!(
            read(root.join("memory/quilt/c1/memory.limit_in_bytes")),
            "1000"
        );
        assert!(
            !root
                .join("memory/quilt/c1/memory.memsw.limit_in_bytes")
                .exists()
        );
        assert!(!root.join("pids/quilt/c1/pids.max").exists());
        assert!(root.join("pids/quilt/c1").is_dir());
    }

    #[test]
    fn v1_missing_controller() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("memory")).unwrap();
        let layout = CgroupLayout::V1 {
            root: t.path().into(),
        };
        // No limit needs cpu/pids: fine.
        create(&spec(
            layout.clone(),
            Limits {
                memory_bytes: Some(1 << 20),
                ..Default::default()
            },
        ))
        .unwrap();
        // A pids limit without the pids hierarchy is an error.
        assert!(
            create(&spec(
                layout,
                Limits {
                    pids: Some(5),
                    ..Default::default()
                }
            ))
            .is_err()
        );
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

    /// Against the real kernel hierarchy (needs root: fails without it).
    #[test]
    fn real_kernel_create_remove() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (it creates real cgroups)"
        );
        let layout = detect_layout().expect("a cgroup hierarchy");
        let path = format!("quilt-rt-unit/{}-{}", std::process::id(), line!());
        let s = CgroupSpec {
            layout,
            path,
            limits: Limits {
                memory_bytes: Some(64 << 20),
                cpus: Some(0.5),
                pids: Some(50),
            },
        };
        create(&s).unwrap();
        create(&s).unwrap();
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        add_process(&s, child.id() as i32).unwrap();
        assert_eq!(oom_kills(&s).unwrap(), 0);
        let t0 = Instant::now();
        remove(&s).unwrap();
        assert!(t0.elapsed() < Duration::from_secs(2));
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        for d in dirs(&s).unwrap() {
            assert!(!d.exists(), "{}", d.display());
        }
        remove(&s).unwrap();
        // Best effort: the shared parent may be in use by a concurrent test.
        for d in dirs(&s).unwrap() {
            let _ = fs::remove_dir(d.parent().unwrap());
        }
    }
}
