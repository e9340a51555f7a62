//! Reading the host from outside: /proc, /sys/fs/cgroup, the data dir.

use serde::Serialize;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
}

/// Parses /proc/PID/stat (the comm may contain spaces and parentheses).
pub fn proc_info(pid: i32) -> Option<ProcInfo> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let mut rest = s[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        comm,
        state,
        ppid,
    })
}

pub fn all_pids() -> Vec<i32> {
    let Ok(rd) = fs::read_dir("/proc") else {
        return vec![];
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

pub fn all_procs() -> Vec<ProcInfo> {
    all_pids().into_iter().filter_map(proc_info).collect()
}

/// A field of /proc/PID/status in kB (VmRSS, VmHWM, ...).
pub fn status_kb(pid: i32, field: &str) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kb_field(&s, field)
}

/// Pss of the process in kB (/proc/PID/smaps_rollup).
pub fn pss_kb(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    kb_field(&s, "Pss")
}

pub fn meminfo_kb(field: &str) -> Option<u64> {
    let s = fs::read_to_string("/proc/meminfo").ok()?;
    kb_field(&s, field)
}

fn kb_field(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim() != field {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

/// True when the process has an open file (or cwd) inside `dir`.
fn uses_dir(pid: i32, dir: &Path) -> bool {
    if fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|p| p.starts_with(dir)) {
        return true;
    }
    let Ok(rd) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    rd.filter_map(|e| e.ok())
        .any(|e| fs::read_link(e.path()).is_ok_and(|p| p.starts_with(dir)))
}

/// quilt-shim processes belonging to this daemon: children of quiltd, or
/// (if quiltd is gone) shims holding files of its data dir.
pub fn shim_pids(quiltd: Option<i32>, data_dir: &Path) -> Vec<i32> {
    all_procs()
        .into_iter()
        .filter(|p| p.comm == "quilt-shim")
        .filter(|p| Some(p.ppid) == quiltd || uses_dir(p.pid, data_dir))
        .map(|p| p.pid)
        .collect()
}

/// Zombie (Z state) children of any of the given parents.
pub fn zombies_of(parents: &[i32]) -> Vec<i32> {
    all_procs()
        .into_iter()
        .filter(|p| p.state == 'Z' && parents.contains(&p.ppid))
        .map(|p| p.pid)
        .collect()
}

/// Every cgroup hierarchy's copy of `parent`, whether it exists or not:
/// /sys/fs/cgroup/<controller>/<parent> on v1, /sys/fs/cgroup/<parent> on v2.
pub fn cgroup_parent_dirs(parent: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut out = vec![root.join(parent)];
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.file_type().is_ok_and(|t| t.is_dir()) && e.path().join("cgroup.procs").exists() {
                out.push(e.path().join(parent));
            }
        }
    }
    out.retain(|p| p.is_dir());
    out.sort();
    out.dedup();
    out
}

/// Child cgroups (recursively) under this daemon's parent cgroups.
pub fn cgroup_children(parent: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in cgroup_parent_dirs(parent) {
        walk_dirs(&dir, &mut out);
    }
    out
}

fn walk_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.filter_map(|e| e.ok()) {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.path());
            walk_dirs(&e.path(), out);
        }
    }
}

/// Processes inside any cgroup at or under the parent.
pub fn cgroup_pids(parent: &str) -> Vec<i32> {
    let mut dirs = cgroup_parent_dirs(parent);
    let mut kids = Vec::new();
    for d in &dirs {
        walk_dirs(d, &mut kids);
    }
    dirs.extend(kids);
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

pub fn container_dirs(data_dir: &Path) -> Vec<String> {
    let Ok(rd) = fs::read_dir(data_dir.join("containers")) else {
        return vec![];
    };
    rd.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// Mount points at or under `dir` (from this process's mount namespace).
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let Ok(s) = fs::read_to_string("/proc/self/mountinfo") else {
        return vec![];
    };
    s.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(unescape_mount)
        .filter(|m| Path::new(m).starts_with(dir))
        .collect()
}

fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

pub fn pid_alive(pid: i32) -> bool {
    proc_info(pid).is_some_and(|p| p.state != 'Z')
}

pub fn kill(pid: i32, sig: i32) -> bool {
    let Ok(sig) = nix::sys::signal::Signal::try_from(sig) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).is_ok()
}

/// What remains of a daemon's containers on the host.
#[derive(Debug, Default, Serialize)]
pub struct Leftovers {
    pub rows: Option<usize>,
    pub container_dirs: Vec<String>,
    pub cgroup_dirs: Vec<String>,
    pub cgroup_pids: Vec<i32>,
    pub shim_pids: Vec<i32>,
    pub zombies: Vec<i32>,
    pub mounts: Vec<String>,
}

impl Leftovers {
    pub fn scan(
        rows: Option<usize>,
        data_dir: &Path,
        parent: &str,
        quiltd: Option<i32>,
    ) -> Leftovers {
        let shims = shim_pids(quiltd, data_dir);
        let mut parents: Vec<i32> = shims.clone();
        parents.extend(quiltd);
        Leftovers {
            rows,
            container_dirs: container_dirs(data_dir),
            cgroup_dirs: cgroup_children(parent)
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            cgroup_pids: cgroup_pids(parent),
            shim_pids: shims,
            zombies: zombies_of(&parents),
            mounts: mounts_under(&data_dir.join("containers")),
        }
    }

    pub fn total(&self) -> usize {
        self.rows.unwrap_or(0)
            + self.container_dirs.len()
            + self.cgroup_dirs.len()
            + self.cgroup_pids.len()
            + self.shim_pids.len()
            + self.zombies.len()
            + self.mounts.len()
    }

    pub fn is_clean(&self) -> bool {
        self.total() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_fields() {
        let t = "MemTotal:       24000000 kB\nMemAvailable:   1234 kB\n";
        assert_eq!(kb_field(t, "MemAvailable"), Some(1234));
        assert_eq!(kb_field(t, "Mem"), None);
        let me = proc_info(std::process::id() as i32).expect("own stat");
        assert!(me.ppid > 0 && !me.comm.is_empty(), "{me:?}");
        assert!(status_kb(me.pid, "VmRSS").is_some());
    }
}
