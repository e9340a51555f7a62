//! Engine configuration, set by quiltd's flags.
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// DATA_DIR: quilt.db, containers/<id>/, images/.
    pub data_dir: PathBuf,
    /// The `quilt-shim` binary.
    pub shim_path: PathBuf,
    /// Cgroups are created at <hierarchy>/<cgroup_parent>/<id>.
    pub cgroup_parent: String,
    /// How many containers may be in the middle of starting at once.
    pub max_concurrent_starts: usize,
    /// Accepted start requests not yet picked up; beyond this CreateContainer
    /// answers RESOURCE_EXHAUSTED.
    pub start_queue_capacity: usize,
}

impl EngineConfig {
    pub fn new(data_dir: PathBuf, shim_path: PathBuf) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineConfig {
            data_dir,
            shim_path,
            cgroup_parent: "quilt".into(),
            max_concurrent_starts: (cpus * 4).max(8),
            start_queue_capacity: 4096,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("quilt.db")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.data_dir.join("containers")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
}
