//! `container prune`: removes every stopped container (created and never
//! queued, exited, failed), optionally only those with given labels or
//! created before a time, and reports what it freed.
use crate::engine::Engine;
use crate::error::Result;
use crate::model::{ListFilter, State};
use crate::services::cleanup;
use std::collections::BTreeMap;
use std::path::Path;

/// What a prune removed.
#[derive(Debug, Clone, Default)]
pub struct ContainersPruned {
    pub ids: Vec<String>,
    /// Bytes of their directories (their layer and logs).
    pub reclaimed_bytes: u64,
}

impl Engine {
    pub async fn prune(
        &self,
        labels: BTreeMap<String, String>,
        created_before_ns: Option<i64>,
    ) -> Result<ContainersPruned> {
        let shared = &self.shared;
        let rows = shared
            .store()
            .list(&ListFilter {
                states: vec![State::Created, State::Exited, State::Failed],
                labels,
                // In a cluster, each node prunes its own.
                node: shared.node().map(str::to_owned),
                ..Default::default()
            })
            .await?;
        let mut out = ContainersPruned::default();
        for c in rows {
            // A queued start is on its way: not stopped.
            if c.is_queued() || created_before_ns.is_some_and(|t| c.created_at_ns >= t) {
                continue;
            }
            let dir = shared.cfg().container_dir(&c.id);
            let size = tokio::task::spawn_blocking(move || dir_size(&dir, 0)).await?;
            // Refused (it started meanwhile) or gone already: skipped.
            match cleanup::remove_by_id(shared, &c.id, false).await {
                Ok(()) => {
                    out.ids.push(c.id);
                    out.reclaimed_bytes = out.reclaimed_bytes.saturating_add(size);
                }
                Err(e) => tracing::debug!(container = %c.id, error = %e, "not pruned"),
            }
        }
        Ok(out)
    }
}

/// Directories deeper than this are not counted (a bound on a hostile tree).
const MAX_DEPTH: usize = 64;

/// Bytes of the regular files under `dir` (symlinks not followed).
fn dir_size(dir: &Path, depth: usize) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0u64;
    for e in entries.flatten() {
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() && depth < MAX_DEPTH {
            total = total.saturating_add(dir_size(&e.path(), depth + 1));
        } else if meta.is_file() {
            total = total.saturating_add(meta.len());
        }
    }
    total
}
