//! Sizing the warm pools and showing them.
use crate::engine::Engine;
use crate::error::Result;
use crate::pool::{PoolSpec, PoolStatus};

impl Engine {
    /// Keeps `spec.size` containers of its shape prepared (0 removes the
    /// pool). Returns at once; the pool fills in the background.
    pub async fn set_warm_pool(&self, spec: PoolSpec) -> Result<()> {
        self.shared.pool().set(&self.shared, spec).await
    }

    pub fn warm_pools(&self) -> Vec<PoolStatus> {
        self.shared.pool().status()
    }
}
