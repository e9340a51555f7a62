//! Looking at the host from the outside: cgroups, mounts and processes.
//!
//! Everything here reads /proc and /sys directly so that the tests check what
//! the kernel sees, not what the daemon believes.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Which cgroup hierarchy the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Pure cgroup v2 has `cgroup.controllers` at the root of /sys/fs/cgroup;
/// anything else (v1 controllers, possibly with a v2 `unified` mount beside
/// them) is treated as v1.
pub fn cgroup_version() -> CgroupVersion {
    if Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    }
}

/// Every mounted cgroup hierarchy: on v2 the root itself, on v1 each
/// controller directory (memory, cpu, pids, ..., and `unified`/`systemd` when
/// present). Symlinked aliases (cpu,cpuacct) are listed once.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    if cgroup_version() == CgroupVersion::V2 {
        return vec![PathBuf::from(CGROUP_ROOT)];
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(CGROUP_ROOT) {
        for e in entries.flatten() {
            let p = e.path();
            let Ok(canon) = fs::canonicalize(&p) else {
                continue;
            };
            if !canon.is_dir() || !canon.join("cgroup.procs").exists() {
                continue;
            }
            if seen.insert(canon.clone()) {
                out.push(canon);
            }
        }
    }
    out.sort();
    out
}

/// The directory holding the given controller's files for a cgroup path
/// relative to the hierarchy root (`<parent>/<id>`).
pub fn cgroup_dir(controller: &str, rel: &str) -> PathBuf {
    match cgroup_version() {
        CgroupVersion::V2 => Path::new(CGROUP_ROOT).join(rel),
        CgroupVersion::V1 => Path::new(CGROUP_ROOT).join(controller).join(rel),
    }
}

/// All cgroup directories strictly below `parent` in every hierarchy,
/// deepest first (the order in which they can be removed).
pub fn cgroups_below(parent: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for h in cgroup_hierarchies() {
        collect_dirs(&h.join(parent), &mut out);
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

/// The parent cgroup directories themselves (where they exist).
pub fn cgroup_parents(parent: &str) -> Vec<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join(parent))
        .filter(|p| p.is_dir())
        .collect()
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            let p = e.path();
            collect_dirs(&p, out);
            out.push(p);
        }
    }
}

/// PIDs listed in `cgroup.procs` of `parent` and every cgroup below it, in
/// every hierarchy.
pub fn pids_in_cgroups(parent: &str) -> BTreeSet<i32> {
    let mut dirs = cgroups_below(parent);
    dirs.extend(cgroup_parents(parent));
    let mut pids = BTreeSet::new();
    for d in dirs {
        if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
    }
    pids
}

/// Reads a cgroup file and trims it; None if it cannot be read.
pub fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Decodes the octal escapes (`\040` etc.) the kernel uses in mountinfo.
fn unescape_mount_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points in our mount namespace at or below `root`, deepest (latest)
/// first.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mount_path(m)))
        .filter(|m| m.starts_with(root))
        .collect();
    out.reverse();
    out
}

/// Lazily unmounts everything at or below `root`; returns what it tried.
pub fn umount_all_under(root: &Path) -> Vec<PathBuf> {
    let mut done = Vec::new();
    // Each pass unmounts what is visible; stacked mounts need several passes.
    for _ in 0..10 {
        let m = mounts_under(root);
        if m.is_empty() {
            break;
        }
        for p in m {
            if let Err(e) = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
                eprintln!("quilt-tests: umount -l {}: {e}", p.display());
            }
            done.push(p);
        }
    }
    done
}

/// All numeric entries of /proc.
pub fn all_pids() -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .collect()
}

/// Fields of /proc/PID/stat after the command name: index 0 is the state,
/// 1 the parent PID, and so on.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = s.rfind(')')?;
    Some(
        s[close + 1..]
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    )
}

/// The process state letter (R, S, Z, ...), None if the process is gone.
pub fn proc_state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

pub fn parent_pid(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// True if the process exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    matches!(proc_state(pid), Some(s) if s != 'Z' && s != 'X')
}

pub fn proc_comm(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

pub fn proc_cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Zombie children of `ppid`.
pub fn zombie_children(ppid: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|p| parent_pid(*p) == Some(ppid) && proc_state(*p) == Some('Z'))
        .collect()
}

/// True if the process refers to `root` in its command line, working
/// directory, root directory or open files.
pub fn proc_refers_to(pid: i32, root: &Path) -> bool {
    let needle = root.to_string_lossy();
    if proc_cmdline(pid)
        .iter()
        .any(|a| a.contains(needle.as_ref()))
    {
        return true;
    }
    for link in ["cwd", "root"] {
        if let Ok(t) = fs::read_link(format!("/proc/{pid}/{link}"))
            && t.starts_with(root)
        {
            return true;
        }
    }
    if let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(t) = fs::read_link(fd.path())
                && t.starts_with(root)
            {
                return true;
            }
        }
    }
    false
}

/// Live `quilt-shim` processes that belong to the daemon rooted at `root`
/// (they mention the directory in their arguments, cwd or open files).
pub fn shims_of(root: &Path) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|p| proc_comm(*p).as_deref() == Some("quilt-shim"))
        .filter(|p| pid_alive(*p))
        .filter(|p| proc_refers_to(*p, root))
        .collect()
}

/// SIGKILLs the given processes (errors ignored: they may be gone).
pub fn kill_all(pids: impl IntoIterator<Item = i32>) {
    for p in pids {
        if p > 1 && p != std::process::id() as i32 {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
    }
}

/// Polls `f` with a growing back-off until it returns Some or `timeout`
/// passes.
pub fn retry<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Waits (bounded) until the process has gone away or become a zombie.
pub fn wait_pid_gone(pid: i32, timeout: Duration) -> bool {
    retry(timeout, || (!pid_alive(pid)).then_some(())).is_some()
}

/// Removes the test's cgroups: kills what is still in them, then rmdirs the
/// leaves first and the parent last, in every hierarchy. Never recursive
/// removal: cgroupfs only supports rmdir.
pub fn remove_cgroups(parent: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let pids = pids_in_cgroups(parent);
    if !pids.is_empty() {
        kill_all(pids.iter().copied());
        for p in &pids {
            wait_pid_gone(*p, Duration::from_secs(5));
        }
    }
    let mut dirs = cgroups_below(parent);
    dirs.extend(cgroup_parents(parent));
    for d in dirs {
        // rmdir fails with EBUSY while a dying task is still accounted.
        let ok = retry(Duration::from_secs(5), || match fs::remove_dir(&d) {
            Ok(()) => Some(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(()),
            Err(_) => {
                if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
                    kill_all(s.lines().filter_map(|l| l.trim().parse().ok()));
                }
                None
            }
        });
        if ok.is_none() {
            problems.push(format!("cannot rmdir {}", d.display()));
        }
    }
    problems
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mount_path("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert_eq!(unescape_mount_path("/x\\134y"), "/x\\y");
    }

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id() as i32;
        assert!(pid_alive(me));
        assert!(parent_pid(me).is_some());
    }
}
