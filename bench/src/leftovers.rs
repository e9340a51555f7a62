//! What is left of a daemon's containers, as the benchmark reports it: the
//! testkit's one definition of a leak ([`host::Leftovers`]), plus the rows
//! the daemon still lists.

use quilt_testkit::host::{self, Footprint};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Default, Serialize)]
pub struct Leftovers {
    pub rows: Option<usize>,
    /// Names of the entries of DATA/containers.
    pub container_dirs: Vec<String>,
    pub cgroup_dirs: Vec<String>,
    pub cgroup_pids: Vec<i32>,
    pub shim_pids: Vec<i32>,
    pub zombies: Vec<i32>,
    pub mounts: Vec<String>,
}

impl Leftovers {
    /// Scans the host for what the daemon with this data dir, cgroup parent
    /// and (when it runs) PID left behind; `rows` is what it still lists.
    pub fn scan(
        rows: Option<usize>,
        data_dir: &Path,
        parent: &str,
        quiltd: Option<i32>,
    ) -> Leftovers {
        let found = host::Leftovers::scan(&Footprint {
            root: data_dir,
            data_dir,
            cgroup_parent: parent,
            quiltd,
        });
        let shown = |paths: &[std::path::PathBuf]| -> Vec<String> {
            paths.iter().map(|p| p.display().to_string()).collect()
        };
        Leftovers {
            rows,
            container_dirs: found
                .container_dirs
                .iter()
                .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
                .collect(),
            cgroup_dirs: shown(&found.cgroups),
            cgroup_pids: found.cgroup_pids,
            shim_pids: found.shims,
            zombies: found.zombies.iter().map(|z| z.pid).collect(),
            mounts: shown(&found.mounts),
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
