//! A start that adopts the pooled container its create claimed: the
//! container's own network files are written into the pooled directory
//! (the same inodes its mounts show), its namespace slot recorded under its
//! row, and the config checked against the pooled one (same shape) before
//! the shim hands it to the waiting PID 1.
use super::Member;
use crate::engine::Shared;
use crate::model::Container;
use crate::services::starter::{Launched, launched};
use quilt_runtime::exitfile;
use quilt_runtime::spec::ContainerConfig;
use std::sync::Arc;

/// Adopts `member` for `c` (`config`: what a cold start would run, before
/// its network). Err: why not; the pooled container is gone then and the
/// caller starts `c` cold.
pub(crate) async fn adopt(
    shared: &Arc<Shared>,
    c: &Container,
    member: Member,
    mut config: ContainerConfig,
) -> Result<Launched, String> {
    let prepared = async {
        config.netns = shared.net().netns_path(&c.id);
        if config.netns.is_none() {
            return Err("its network namespace is gone".to_string());
        }
        shared
            .store()
            .slot_set(&c.id, &member.slot)
            .await
            .map_err(|e| e.to_string())?;
        let mounts = crate::network::hosts_files(shared, c)
            .await
            .map_err(|e| e.to_string())?;
        config.mounts.extend(mounts);
        Ok(())
    }
    .await;
    if let Err(e) = prepared {
        // Its namespace stays the container's (the cold start reuses it).
        let _ = tokio::task::spawn_blocking(move || member.prepared.discard()).await;
        return Err(e);
    }
    let images = shared.images().clone();
    let image = c.image.clone();
    tokio::task::spawn_blocking(move || {
        config.image_rootfs = images.prepare(&image).map_err(|e| e.to_string())?;
        if !member.prepared.config.adoptable_by(&config) {
            member.prepared.discard();
            return Err("not of the pooled shape".to_string());
        }
        exitfile::clear(&config.dir).map_err(|e| e.to_string())?;
        let report = member.prepared.adopt(&config).map_err(|e| e.to_string())?;
        launched(report, &config).map_err(|(_, reason)| reason)
    })
    .await
    .map_err(|e| e.to_string())?
}
