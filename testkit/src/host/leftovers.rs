//! What one daemon has left on the host: the single definition of a leak,
//! used by the end-to-end tests after every test and by the benchmark after
//! its removal phases.

use std::fs;
use std::path::{Path, PathBuf};

use super::cgroup::{SHARED_MEMORY_GROUP, cgroups_below, pids_in_cgroups};
use super::mounts::mounts_under;
use super::proc::{ProcInfo, shims_of, zombies_of};

/// Where one quiltd lives on the host.
#[derive(Debug, Clone, Copy)]
pub struct Footprint<'a> {
    /// The directory that holds everything of the daemon (its data dir, or
    /// a directory around it): mounts below it, and shims that refer to it,
    /// are the daemon's.
    pub root: &'a Path,
    /// quiltd's `--data-dir`.
    pub data_dir: &'a Path,
    /// quiltd's `--cgroup-parent`.
    pub cgroup_parent: &'a str,
    /// The running quiltd, if any.
    pub quiltd: Option<i32>,
}

/// What is left of a daemon's containers on the host. All empty = clean.
/// (Rows in the daemon's database are the caller's to count: they are read
/// through the API.)
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leftovers {
    /// Entries of `<data dir>/containers`, and of `<data dir>/trash`
    /// (removed directories not deleted yet).
    pub container_dirs: Vec<PathBuf>,
    /// Cgroups strictly below the parent, in every hierarchy, deepest first.
    pub cgroups: Vec<PathBuf>,
    /// Processes in the parent cgroup or below it.
    pub cgroup_pids: Vec<i32>,
    /// Live `quilt-shim` processes of the daemon.
    pub shims: Vec<i32>,
    /// Zombie children of quiltd or of its shims: exits nobody reaped.
    pub zombies: Vec<ProcInfo>,
    /// Mount points at or below the root, deepest first (the namespaces
    /// quiltd keeps ready are not counted while it runs: see `POOL_BOUND`).
    pub mounts: Vec<PathBuf>,
}

/// The most network namespaces a running quiltd keeps ready under
/// `<data dir>/netns` (twice its default `--netns-pool` plus
/// `--bridge-pool`: it keeps up to twice the target of those containers
/// give back): up to this many are its pool, not leftovers; more, or any
/// once quiltd is gone, are counted as leftover mounts.
pub const POOL_BOUND: usize = 32;

/// The daemon's shared memory group (v2), right below its parent cgroup:
/// not a container's, so not a leftover (its children are).
fn is_shared_memory_group(dir: &std::path::Path, parent: &str) -> bool {
    dir.file_name() == Some(std::ffi::OsStr::new(SHARED_MEMORY_GROUP))
        && dir
            .parent()
            .is_some_and(|p| p.ends_with(parent.trim_matches('/')))
}

impl Leftovers {
    /// Looks at the host once.
    pub fn scan(f: &Footprint<'_>) -> Leftovers {
        let shims = shims_of(f.root, f.quiltd);
        let mut parents = shims.clone();
        parents.extend(f.quiltd);
        Leftovers {
            container_dirs: ["containers", "trash"]
                .into_iter()
                .flat_map(|d| entries(&f.data_dir.join(d)))
                .collect(),
            cgroups: cgroups_below(f.cgroup_parent)
                .into_iter()
                .filter(|d| !is_shared_memory_group(d, f.cgroup_parent))
                .collect(),
            cgroup_pids: pids_in_cgroups(f.cgroup_parent).into_iter().collect(),
            zombies: zombies_of(&parents),
            shims,
            mounts: without_pool(mounts_under(f.root), f),
        }
    }

    /// How many things are left.
    pub fn total(&self) -> usize {
        self.container_dirs.len()
            + self.cgroups.len()
            + self.cgroup_pids.len()
            + self.shims.len()
            + self.zombies.len()
            + self.mounts.len()
    }

    pub fn is_clean(&self) -> bool {
        self.total() == 0
    }
}

/// `mounts` less the namespaces of quiltd's pool (while it runs, up to
/// `POOL_BOUND` of them).
fn without_pool(mounts: Vec<PathBuf>, f: &Footprint<'_>) -> Vec<PathBuf> {
    if f.quiltd.is_none() {
        return mounts;
    }
    let pool = f.data_dir.join("netns");
    let pooled = mounts.iter().filter(|m| m.parent() == Some(&pool)).count();
    if pooled > POOL_BOUND {
        return mounts;
    }
    // The directory itself is a private mount point while quiltd runs.
    mounts
        .into_iter()
        .filter(|m| m.parent() != Some(&pool) && *m != pool)
        .collect()
}

/// The entries of a directory (none if it does not exist).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unused_footprint_is_clean() {
        let dir = std::env::temp_dir().join(format!("quilt-testkit-{}", std::process::id()));
        fs::create_dir_all(dir.join("containers")).unwrap();
        let f = Footprint {
            root: &dir,
            data_dir: &dir,
            cgroup_parent: "quilt-testkit-no-such-parent",
            quiltd: None,
        };
        let clean = Leftovers::scan(&f);
        assert!(clean.is_clean(), "{clean:?}");

        fs::create_dir(dir.join("containers/abc")).unwrap();
        let left = Leftovers::scan(&f);
        assert_eq!(left.container_dirs, [dir.join("containers/abc")]);
        assert_eq!(left.total(), 1);
        fs::create_dir_all(dir.join("trash/abc.0")).unwrap();
        let left = Leftovers::scan(&f);
        assert_eq!(left.total(), 2, "{left:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
