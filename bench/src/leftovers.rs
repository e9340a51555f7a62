//! What is left of a daemon's containers, as the benchmark reports it: the
//! testkit's one definition of a leak ([`host::Leftovers`]), plus the rows
//! the daemon still lists.

use quilt_testkit::host::{self, Footprint};
use std::path::{Path, PathBuf};

use crate::report::Leftovers;

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
        let shown = |paths: &[PathBuf]| -> Vec<String> {
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
}
