//! A start that adopts the pooled container its create claimed (whose
//! namespace slot its change to `starting` recorded under its row): the
//! container's own network files are written into the pooled directory
//! (the same inodes its mounts show), and the config checked against the
//! pooled one (same shape) before the shim hands it to the waiting PID 1.
use super::Member;
use crate::engine::Shared;
use crate::model::Container;
use crate::services::starter::{Launched, launched};
use quilt_runtime::exitfile;
use quilt_runtime::launch::Adoption;
use quilt_runtime::spec::{ContainerConfig, EXIT_SETUP};
use std::sync::Arc;

/// What a cold start leaves, or why the container did not start.
type Started = std::result::Result<Launched, (i32, String)>;

/// Adopts `member` for `c` (`config`: what a cold start would run, before
/// its network). Ok: the config was handed over and this is how the start
/// ended (never to be tried again: the workload may have run). Err: why it
/// was not handed over; the pooled container is gone and the caller starts
/// `c` cold.
pub(crate) async fn adopt(
    shared: &Arc<Shared>,
    c: &Container,
    member: Member,
    mut config: ContainerConfig,
) -> Result<Started, String> {
    let prepared = async {
        config.netns = shared.net().netns_path(&c.id);
        if config.netns.is_none() {
            return Err("its network namespace is gone".to_string());
        }
        // Its files say its name and hostname: written again only when the
        // creating call chose others than the pooled container's (its own
        // short id, as the defaults are).
        let same_names = c.name == member.name && c.hostname == member.hostname;
        let files = async {
            match same_names {
                true => Ok(member.net_files.clone()),
                false => crate::network::hosts_files(shared, c).await,
            }
        };
        config
            .mounts
            .extend(files.await.map_err(|e| e.to_string())?);
        Ok(())
    }
    .await;
    if let Err(e) = prepared {
        // Its namespace stays the container's (the cold start reuses it).
        member.end().await;
        return Err(e);
    }
    let images = shared.images().clone();
    let image = c.image.clone();
    tokio::task::spawn_blocking(move || {
        let discard = |member: Member, why: String| {
            member.prepared.discard();
            Err(why)
        };
        config.image_rootfs = match images.prepare(&image) {
            Ok(p) => p,
            Err(e) => return discard(member, e.to_string()),
        };
        if !member.prepared.config.adoptable_by(&config) {
            return discard(member, "not of the pooled shape".into());
        }
        if let Err(e) = exitfile::clear(&config.dir) {
            return discard(member, e.to_string());
        }
        match member.prepared.adopt(&config) {
            Adoption::NotSent(e) => Err(e.to_string()),
            Adoption::Sent(Ok(report)) => Ok(launched(report, &config)),
            Adoption::Sent(Err(e)) => Ok(Err((EXIT_SETUP, e.to_string()))),
        }
    })
    .await
    .map_err(|e| e.to_string())?
}
