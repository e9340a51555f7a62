//! UpdateLifetime: an agent keeps a container alive while it uses it, by
//! moving its TTL deadline and counting as activity for its idle timeout.
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::model::lifetime::MAX_LIFETIME_NS;
use crate::model::{Container, now_ns};
use std::sync::atomic::Ordering;
use std::time::Duration;

impl Engine {
    /// With `ttl`, the TTL becomes `ttl` from now (zero: none); with
    /// `touch`, now counts as activity. Returns the container as stored.
    pub async fn update_lifetime(
        &self,
        reference: &str,
        ttl: Option<Duration>,
        touch: bool,
    ) -> Result<Container> {
        let shared = &self.shared;
        let c = shared.resolve_here(reference).await?;
        if c.state.is_removing() {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is being removed",
                c.name
            )));
        }
        let now = now_ns();
        if let Some(ttl) = ttl {
            let ns = i64::try_from(ttl.as_nanos())
                .ok()
                .filter(|n| *n <= MAX_LIFETIME_NS)
                .ok_or_else(|| {
                    EngineError::InvalidArgument("ttl is too long (at most a year)".into())
                })?;
            let at = (ns > 0).then_some(now + ns);
            shared.store().set_expiry(&c.id, ns, at).await?;
        }
        if touch {
            shared
                .live(&c.id)
                .last_activity_ns
                .fetch_max(now, Ordering::SeqCst);
            shared.store().set_last_activity(&c.id, now).await?;
        }
        shared.lifetimes_wake(&c.id);
        shared
            .store()
            .get(&c.id)
            .await?
            .ok_or_else(|| EngineError::no_such_container(reference))
    }
}
