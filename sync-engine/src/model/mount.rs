//! A container's mounts, as stored in its row (JSON) and checked by
//! `validate::mounts`.
use serde::{Deserialize, Serialize};

/// One mount of a container, as stored in its row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute, normalised path inside the container.
    pub target: String,
    pub read_only: bool,
    pub source: MountSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountSource {
    /// A named volume.
    Volume(String),
    /// A canonical host path.
    Bind(String),
    /// A fresh tmpfs; 0 = the kernel's default size.
    Tmpfs { size_bytes: u64 },
}
