//! Removing a container's cgroup: whatever still runs in it is killed, then
//! its directories are removed, leaves first, in every hierarchy.
use super::{CgroupError, dirs, io_err, read_file, write_file};
use crate::spec::CgroupSpec;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `remove` keeps retrying rmdir while killed processes leave. A
/// killed task keeps its cgroup populated until it has finished exiting,
/// which on a loaded host can take well over a second.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(10);

/// SIGKILLs whatever is still in the cgroup, then rmdirs it in every
/// controller (leaves first). Succeeds if it does not exist.
///
/// Mostly the workload has exited and nothing is below it: each directory
/// then goes with one rmdir. Once one is busy (processes, child cgroups),
/// it and the rest are thawed, killed and walked. v1's memory directory
/// comes last, its charges released only when the others went (nothing
/// runs in it then) or after the kill: never reclaiming a live workload's
/// memory.
pub fn remove(spec: &CgroupSpec) -> Result<(), CgroupError> {
    // One deadline for the whole removal, however many hierarchies (v1).
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let mut dirs = dirs(spec)?;
    dirs.sort_by_key(|d| is_v1_memory(spec, d));
    let mut busy = false;
    let mut first_err = None;
    for dir in dirs {
        if !busy {
            if is_v1_memory(spec, &dir) {
                release_charges(&dir);
            }
            match std::fs::remove_dir(&dir) {
                Ok(()) => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // A frozen (paused) v1 cgroup's tasks cannot act on
                    // SIGKILL until they are thawed: thaw first, or the
                    // removal would wait for nothing.
                    busy = true;
                    let _ = super::thaw(spec);
                }
                Err(e) => {
                    first_err.get_or_insert(io_err(&dir, e));
                    continue;
                }
            }
        }
        if let Err(e) = remove_tree(&dir, deadline) {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether `dir` is in v1's memory hierarchy (whose charges are released
/// before it goes).
fn is_v1_memory(spec: &CgroupSpec, dir: &Path) -> bool {
    match &spec.layout {
        crate::spec::CgroupLayout::V1 { root } => dir.starts_with(root.join("memory")),
        crate::spec::CgroupLayout::V2 { .. } => false,
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

/// Cgroup v1 memory: reclaims the page cache and kernel memory still charged
/// to the cgroup before it is removed (`memory.force_empty`). Without it a
/// removed memcg stays behind as a dying cgroup, pinned by the file pages its
/// processes charged (ext4 buffers of the overlay's upper and work
/// directories), and its unreclaimable per-cgroup memory (SUnreclaim) is not
/// freed until something else reclaims those pages. It reclaims whatever
/// the cgroup and its children hold, tasks or not (it never refuses): call
/// it only on a cgroup that is going. v2 has no such file (the kernel
/// reparents charges on removal).
pub(super) fn release_charges(dir: &Path) {
    let f = dir.join("memory.force_empty");
    if f.exists() {
        let _ = write_file(&f, "0");
    }
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
        release_charges(dir);
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
    use super::super::{add_process, create, detect_layout, dirs, oom_kills};
    use super::*;
    use crate::spec::Limits;
    use std::fs;

    /// The host's hierarchy (needs root: fails without it).
    fn real_layout() -> crate::spec::CgroupLayout {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (it creates real cgroups)"
        );
        detect_layout().expect("a cgroup hierarchy")
    }

    /// A `sleep` moved into the cgroup of `s`.
    fn sleeper_in(s: &CgroupSpec) -> std::process::Child {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        add_process(s, child.id() as i32).unwrap();
        child
    }

    /// Against the real kernel hierarchy (needs root: fails without it).
    #[test]
    fn real_kernel_create_remove() {
        let layout = real_layout();
        let path = format!("quilt-rt-unit/{}-{}", std::process::id(), line!());
        let s = CgroupSpec {
            layout,
            path,
            limits: Limits {
                memory_bytes: Some(64 << 20),
                cpus: Some(0.5),
                pids: Some(50),
            },
            own_memory: false,
        };
        create(&s).unwrap();
        create(&s).unwrap();
        let mut child = sleeper_in(&s);
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

    /// The slow path against the real kernel: a paused cgroup with a
    /// process in it and a child cgroup below it goes, its process killed;
    /// an empty one goes with the first rmdir.
    #[test]
    fn real_kernel_remove_paused_nested_and_empty() {
        let layout = real_layout();
        let spec = |n: u32| CgroupSpec {
            layout: layout.clone(),
            path: format!("quilt-rt-unit/{}-{n}", std::process::id()),
            limits: Limits {
                memory_bytes: Some(64 << 20),
                ..Default::default()
            },
            own_memory: false,
        };
        let s = spec(line!());
        create(&s).unwrap();
        let mut child = sleeper_in(&s);
        super::super::freeze(&s).unwrap();
        let nested = dirs(&s)
            .unwrap()
            .into_iter()
            .find(|d| d.is_dir())
            .unwrap()
            .join("nested");
        fs::create_dir(&nested).unwrap();
        remove(&s).unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(!nested.exists());
        for d in dirs(&s).unwrap() {
            assert!(!d.exists(), "{}", d.display());
        }
        let empty = spec(line!());
        create(&empty).unwrap();
        remove(&empty).unwrap();
        for d in dirs(&empty).unwrap() {
            assert!(!d.exists(), "{}", d.display());
            let _ = fs::remove_dir(d.parent().unwrap());
        }
    }
}
