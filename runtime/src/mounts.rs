//! Mounts of a container as the shim receives them. (The shim resolves
//! their targets from a descriptor of the rootfs: `shim/mounts.rs`.)
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One mount made in the container's mount namespace before it becomes the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountConfig {
    /// Absolute, normalised path inside the container (checked by the daemon).
    pub target: String,
    pub read_only: bool,
    pub kind: MountKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// Bind mount of a host path (a volume's data directory or a bind source).
    Bind {
        source: PathBuf,
        /// The daemon creates `source` before the start (a volume's directory).
        #[serde(default)]
        create: bool,
    },
    /// A fresh tmpfs; 0 = the kernel's default size.
    Tmpfs { size_bytes: u64 },
}
