//! PullImage: the registry crate fetches REFERENCE into a verified OCI
//! layout under DATA/pulls, the image store imports that layout, and the
//! image is named with the reference's short form (`python:3.12`). The
//! layout is removed once imported; a pull that failed keeps its partial
//! blobs for the next try.
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::model::ImageInfo;
use quilt_registry::{Credentials, DockerConfig, ImageRef, Platform, PullEvent, RegistryError};
use quilt_runtime::image::Progress;
use tokio::sync::mpsc;

/// What a pull reports: the registry's events, then the import's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullUpdate {
    Registry(PullEvent),
    Import(Progress),
}

fn engine_error(e: RegistryError) -> EngineError {
    match e {
        RegistryError::Invalid(m) => EngineError::InvalidArgument(m),
        RegistryError::NotFound(m) => EngineError::NotFound(m),
        RegistryError::Unauthorized(m) => EngineError::PermissionDenied(m),
        RegistryError::Unavailable(m) => EngineError::Unavailable(m),
        RegistryError::Verification(m) => EngineError::DataLoss(m),
        e @ RegistryError::Io { .. } => EngineError::Internal(e.to_string()),
    }
}

/// The daemon's own credentials for REGISTRY (its docker config.json).
async fn daemon_credentials(registry: &str) -> Result<Option<Credentials>> {
    let Some(path) = DockerConfig::default_path() else {
        return Ok(None);
    };
    let registry = registry.to_owned();
    tokio::task::spawn_blocking(move || DockerConfig::load(&path)?.lookup(&registry))
        .await?
        .map_err(engine_error)
}

impl Engine {
    /// Pulls REFERENCE for PLATFORM ("" for the host's) with CREDENTIALS
    /// (None: the daemon's docker config, else anonymous), imports and
    /// names it.
    pub async fn pull_image(
        &self,
        reference: &str,
        platform: &str,
        credentials: Option<Credentials>,
        updates: mpsc::Sender<PullUpdate>,
    ) -> Result<ImageInfo> {
        let reference = ImageRef::parse(reference).map_err(engine_error)?;
        let platform = match platform {
            "" => None,
            p => Some(Platform::parse(p).map_err(engine_error)?),
        };
        let credentials = match credentials {
            Some(c) => Some(c),
            None => daemon_credentials(reference.registry()).await?,
        };
        let req = quilt_registry::PullRequest {
            reference,
            platform,
            credentials,
        };
        let (tx, mut rx) = mpsc::channel(256);
        let fwd = updates.clone();
        let relay = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let _ = fwd.try_send(PullUpdate::Registry(ev));
            }
        });
        let pulled = self.shared.puller().pull(&req, tx).await;
        let _ = relay.await;
        let pulled = pulled.map_err(engine_error)?;
        let name = pulled.reference.familiar();
        let images = self.shared.images().clone();
        let imported = tokio::task::spawn_blocking(move || {
            let mut fwd = |p| {
                let _ = updates.try_send(PullUpdate::Import(p));
            };
            let imported = images.import(&pulled.layout, &mut fwd);
            // Imported or not (its blobs were verified: trying again
            // would not help), the layout is done with.
            if let Err(e) = pulled.remove() {
                tracing::warn!("pull: cannot remove the layout: {e}");
            }
            imported
        })
        .await?;
        self.record(imported.map_err(EngineError::from)?, Some(&name))
            .await
    }
}
