//! Sizing the warm pools and showing them.
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::pool::{PoolSpec, PoolStatus};

impl Engine {
    /// Keeps `spec.size` containers of its shape prepared (0 removes the
    /// pool). Returns at once; the pool fills in the background. Its image
    /// is checked as a create's is: a reference that can never name an
    /// image, or a host directory that may not be a root, is refused here.
    /// An image not stored yet is not: the pool says so until it is pulled.
    /// (Pools given to quiltd at its start get `PoolSpec::check` only; a
    /// path of theirs is checked as the filler makes their containers,
    /// and its error is in `pool ls`.)
    pub async fn set_warm_pool(&self, spec: PoolSpec) -> Result<()> {
        spec.check()?;
        if spec.size > 0 {
            let checked = async {
                let image = super::images::resolve_for_create(&self.shared, &spec.image).await?;
                super::containers::check_image(&self.shared, &image).await
            };
            match checked.await {
                // Not stored (or there) yet: its pool fills once it is
                // pulled or imported (`check` refused names no image may
                // have).
                Ok(()) | Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.shared.pool().set(&self.shared, spec).await
    }

    pub fn warm_pools(&self) -> Vec<PoolStatus> {
        self.shared.pool().status()
    }
}
