//! Exec: commands run inside a running container through `quilt-shim exec`,
//! and the in-memory registry of every exec the daemon started.
pub(crate) mod detached;
mod registry;
pub(crate) mod session;

pub(crate) use registry::Registry;
pub use registry::{ExecExit, ExecInfo};
pub use session::{ExecEvent, ExecInput, ExecSession, ExecSpec};

/// Registers an exec; the finished ones it pushes out of the bounded
/// registry lose their output files (and, detached, their rows) in the
/// background.
pub(crate) fn register(
    shared: &std::sync::Arc<crate::engine::Shared>,
    rec: std::sync::Arc<registry::ExecRecord>,
) {
    let forgotten = shared.execs().insert(rec);
    if forgotten.is_empty() {
        return;
    }
    let shared = shared.clone();
    tokio::spawn(async move {
        for r in forgotten {
            if r.detached
                && let Err(e) = shared.store().exec_delete(&r.id).await
            {
                tracing::warn!(exec = %r.id, error = %e, "cannot forget a detached exec");
            }
            let path = r.log_path.clone();
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await;
        }
    });
}
