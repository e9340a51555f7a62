//! An image of the local store, as the API sees it.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An image row with its names and the number of containers using it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// "sha256:<hex>".
    pub id: String,
    pub names: Vec<String>,
    pub size_bytes: u64,
    pub created_at_ns: i64,
    pub source: String,
    pub layers: Vec<String>,
    pub containers: u32,
    /// What the image asks its containers to run with.
    pub config: ImageConfig,
}

/// An image's configuration: the defaults of its containers, and what it
/// declares (ports, labels). Stored as JSON in the image row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    pub architecture: String,
    pub os: String,
}

impl ImageConfig {
    /// As an image configuration blob's fields (the layers are the
    /// writer's to fill in).
    pub fn to_runtime(&self) -> quilt_runtime::image::manifest::ImageConfig {
        use quilt_runtime::image::manifest::{self, RunConfig};
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        manifest::ImageConfig {
            architecture: some(&self.architecture),
            os: some(&self.os),
            config: Some(RunConfig {
                user: some(&self.user),
                exposed_ports: (!self.exposed_ports.is_empty()).then(|| {
                    self.exposed_ports
                        .iter()
                        .map(|p| (p.clone(), manifest::Empty {}))
                        .collect()
                }),
                env: list(&self.env),
                entrypoint: list(&self.entrypoint),
                cmd: list(&self.cmd),
                volumes: None,
                working_dir: some(&self.working_dir),
                labels: (!self.labels.is_empty()).then(|| self.labels.clone()),
                stop_signal: some(&self.stop_signal),
            }),
            ..manifest::ImageConfig::default()
        }
    }

    /// From the configuration an import read.
    pub fn from_runtime(c: &quilt_runtime::image::manifest::ImageConfig) -> ImageConfig {
        let run = c.config.clone().unwrap_or_default();
        ImageConfig {
            env: run.env.unwrap_or_default(),
            entrypoint: run.entrypoint.unwrap_or_default(),
            cmd: run.cmd.unwrap_or_default(),
            working_dir: run.working_dir.unwrap_or_default(),
            user: run.user.unwrap_or_default(),
            exposed_ports: run
                .exposed_ports
                .map(|p| p.into_keys().collect())
                .unwrap_or_default(),
            labels: run.labels.unwrap_or_default(),
            stop_signal: run.stop_signal.unwrap_or_default(),
            architecture: c.architecture.clone().unwrap_or_default(),
            os: c.os.clone().unwrap_or_default(),
        }
    }
}

/// Disk use of one kind of thing (`quilt system df`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// "images", "layers", "containers" or "volumes".
    pub kind: &'static str,
    pub count: u64,
    pub size_bytes: u64,
    /// Bytes not shared with another kind.
    pub unique_bytes: u64,
}

/// What `image prune` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub images: Vec<String>,
    pub layers: Vec<String>,
    pub reclaimed_bytes: u64,
}
