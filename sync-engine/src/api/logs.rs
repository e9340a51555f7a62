//! GetLogs: a container's captured output, from the files its shim writes,
//! optionally followed until it exits (`logs::follow`).
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::logs::LogItem;
use crate::logs::follow::{Filter, stream};
use tokio::sync::mpsc;

impl Engine {
    /// The receiver yields the lines, then (follow mode) the exit. The
    /// follower is registered before this returns, so a container removed
    /// on exit (`--rm`) keeps its files until the follower has read them.
    /// `tail` counts the last records across all files; `since_ns` then
    /// drops records older than that time.
    pub async fn logs(
        &self,
        reference: &str,
        follow: bool,
        tail: Option<u64>,
        since_ns: Option<i64>,
    ) -> Result<mpsc::Receiver<Result<LogItem>>> {
        let shared = self.shared.clone();
        let watch = shared.watch();
        let c = shared.resolve_here(reference).await?;
        if c.state.is_removing() {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is being removed",
                c.name
            )));
        }
        let guard = shared.live(&c.id).followers.clone().read_owned().await;
        // Following (attach, logs -f) is activity for idle timeouts.
        let activity = follow.then(|| shared.activity(&c.id));
        let (tx, rx) = mpsc::channel(256);
        let filter = Filter { since_ns };
        tokio::spawn(async move {
            let res = stream(&shared, c, follow, tail, filter, watch, &tx).await;
            if let Err(e) = res {
                let _ = tx.send(Err(e)).await;
            }
            drop(guard);
            drop(activity);
        });
        Ok(rx)
    }
}
