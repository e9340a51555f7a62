//! Pause and unpause: the container's cgroup is frozen (v1 freezer, v2
//! `cgroup.freeze`) and the row moves running <-> paused. Stop, kill and a
//! forced removal of a paused container thaw it first ([`Shared::thaw_paused`]).
use crate::engine::{Engine, Shared};
use crate::error::{EngineError, Result};
use crate::model::{Container, State};
use quilt_runtime::cgroup;

impl Engine {
    /// Freezes every process of a running container.
    pub async fn pause(&self, reference: &str) -> Result<Container> {
        let shared = &self.shared;
        let c = shared.resolve_here(reference).await?;
        let live = shared.live(&c.id);
        let _lifecycle = live.lifecycle.lock().await;
        let c = reread(shared, &c).await?;
        if c.state.is_paused() {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is already paused",
                c.name
            )));
        }
        if !c.state.can_pause() {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not running (state: {})",
                c.name,
                c.state.as_str()
            )));
        }
        let spec = shared.cgroup_spec(&c);
        tokio::task::spawn_blocking(move || cgroup::freeze(&spec))
            .await?
            .map_err(|e| EngineError::internal("pause", e))?;
        if !shared.store().set_paused(&c.id, true).await? {
            // Exited (or is being removed) meanwhile: leave nothing frozen.
            let spec = shared.cgroup_spec(&c);
            let _ = tokio::task::spawn_blocking(move || cgroup::thaw(&spec)).await;
            let now = reread(shared, &c).await?;
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not running (state: {})",
                c.name,
                now.state.as_str()
            )));
        }
        let c = reread(shared, &c).await?;
        shared.emit(&c, State::Paused, "paused", None, None);
        Ok(c)
    }

    /// Thaws a paused container.
    pub async fn unpause(&self, reference: &str) -> Result<Container> {
        let shared = &self.shared;
        let c = shared.resolve_here(reference).await?;
        if !c.state.is_paused() {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not paused (state: {})",
                c.name,
                c.state.as_str()
            )));
        }
        // Unpausing is activity: an idle timeout counts from now.
        shared
            .live(&c.id)
            .last_activity_ns
            .fetch_max(crate::model::now_ns(), std::sync::atomic::Ordering::SeqCst);
        match shared.thaw_paused(c).await? {
            c if c.state.is_paused() => Err(EngineError::Internal(format!(
                "container {} is still paused",
                c.name
            ))),
            c => Ok(c),
        }
    }
}

impl Shared {
    /// Thaws the container if it is paused and records it running again
    /// (docker's stop and kill of a paused container do the same). Returns
    /// the row as it is now; one that is not paused is returned as it is.
    pub(crate) async fn thaw_paused(&self, c: Container) -> Result<Container> {
        let live = self.live(&c.id);
        let _lifecycle = live.lifecycle.lock().await;
        let c = reread(self, &c).await?;
        if !c.state.is_paused() {
            return Ok(c);
        }
        self.thaw_cgroup(&c).await?;
        if self.store().set_paused(&c.id, false).await? {
            let c = reread(self, &c).await?;
            self.emit(&c, State::Running, "unpaused", None, None);
            return Ok(c);
        }
        reread(self, &c).await
    }

    /// Thaws the container's cgroup, whatever its row says (a removal of a
    /// paused container: a frozen v1 task acts on SIGKILL only once thawed).
    pub(crate) async fn thaw_cgroup(&self, c: &Container) -> Result<()> {
        let spec = self.cgroup_spec(c);
        tokio::task::spawn_blocking(move || cgroup::thaw(&spec))
            .await?
            .map_err(|e| EngineError::internal("unpause", e))
    }
}

/// The row again (a lock was waited for); NOT_FOUND when it went meanwhile.
async fn reread(shared: &Shared, c: &Container) -> Result<Container> {
    shared
        .store()
        .get(&c.id)
        .await?
        .ok_or_else(|| EngineError::no_such_container(&c.name))
}
