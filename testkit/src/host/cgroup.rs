//! Cgroups, on v1 (one hierarchy per controller) and v2 (one hierarchy).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::proc::{kill_all, wait_pid_gone};
use crate::retry;

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
    if let Ok(entries) = fs::read_dir(CGROUP_ROOT) {
        for e in entries.flatten() {
            let Ok(canon) = fs::canonicalize(e.path()) else {
                continue;
            };
            if canon.is_dir() && canon.join("cgroup.procs").exists() {
                seen.insert(canon);
            }
        }
    }
    seen.into_iter().collect()
}

/// The directory holding the given controller's files for a cgroup path
/// relative to the hierarchy root (`<parent>/<id>`).
pub fn cgroup_dir(controller: &str, rel: &str) -> PathBuf {
    match cgroup_version() {
        CgroupVersion::V2 => {
            // A container without a memory cgroup of its own is below the
            // parent's shared group.
            let own = Path::new(CGROUP_ROOT).join(rel);
            match rel.rsplit_once('/') {
                Some((parent, id)) if !own.is_dir() => {
                    let shared = Path::new(CGROUP_ROOT)
                        .join(parent)
                        .join(SHARED_MEMORY_GROUP)
                        .join(id);
                    if shared.is_dir() { shared } else { own }
                }
                _ => own,
            }
        }
        CgroupVersion::V1 => Path::new(CGROUP_ROOT).join(controller).join(rel),
    }
}

/// Cgroup v2: the group below quiltd's parent cgroup that holds the
/// containers without a memory cgroup of their own (the daemon's, as the
/// parent is; the runtime's `cgroup::v2::SHARED`).
pub const SHARED_MEMORY_GROUP: &str = "shared-memory";

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

/// Every directory below `dir`, recursively.
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
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
    dirs.iter().flat_map(|d| procs_of(d)).collect()
}

/// The PIDs in one cgroup's `cgroup.procs` (none if it cannot be read).
fn procs_of(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Reads a cgroup file and trims it; None if it cannot be read.
pub fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Removes a daemon's cgroups: kills what is still in them, then rmdirs the
/// leaves first and the parent last, in every hierarchy. Never recursive
/// removal: cgroupfs only supports rmdir. Returns what could not be removed.
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
        // v1 memory: the charges go first (as quiltd does), or the removed
        // cgroup stays behind as a dying one, pinned by page cache its
        // processes charged. The parent holds those of every container
        // without a memory limit.
        let force_empty = d.join("memory.force_empty");
        if force_empty.exists() {
            let _ = fs::write(&force_empty, "0");
        }
        // rmdir fails with EBUSY while a dying task is still accounted.
        let ok = retry(Duration::from_secs(5), || match fs::remove_dir(&d) {
            Ok(()) => Some(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(()),
            Err(_) => {
                kill_all(procs_of(&d));
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
mod tests {
    use super::*;

    #[test]
    fn every_hierarchy_has_cgroup_procs() {
        let hs = cgroup_hierarchies();
        assert!(!hs.is_empty());
        for h in &hs {
            assert!(h.join("cgroup.procs").exists(), "{}", h.display());
        }
        // Canonical and listed once.
        let unique: BTreeSet<_> = hs.iter().collect();
        assert_eq!(unique.len(), hs.len());
    }

    #[test]
    fn a_missing_parent_is_empty() {
        let parent = "quilt-testkit-no-such-parent";
        assert!(cgroups_below(parent).is_empty());
        assert!(cgroup_parents(parent).is_empty());
        assert!(pids_in_cgroups(parent).is_empty());
        assert!(remove_cgroups(parent).is_empty());
    }
}
