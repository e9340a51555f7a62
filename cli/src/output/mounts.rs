//! JSON view of a container's mounts.

use quilt_proto::v1::{Mount, mount::Source};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct MountView {
    /// "volume", "bind" or "tmpfs".
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Volume name or host path (empty for tmpfs).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    pub target: String,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

impl From<&Mount> for MountView {
    fn from(m: &Mount) -> Self {
        let (kind, source, size_bytes) = match &m.source {
            Some(Source::Volume(n)) => ("volume", n.clone(), None),
            Some(Source::HostPath(p)) => ("bind", p.clone(), None),
            Some(Source::Tmpfs(t)) => ("tmpfs", String::new(), Some(t.size_bytes)),
            None => ("unknown", String::new(), None),
        };
        MountView {
            kind,
            source,
            target: m.target.clone(),
            read_only: m.read_only,
            size_bytes,
        }
    }
}
