//! POST /containers/{id}/pause|unpause and GET /containers/{id}/stats
//! (one sample or a stream), from the engine's freezer and cgroup figures.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::query::Query;
use crate::server::DockerApi;
use http::StatusCode;
use serde_json::json;

pub async fn pause(api: &DockerApi, id: &str, on: bool) -> Result<Reply> {
    if on {
        api.engine.pause(id).await?;
    } else {
        api.engine.unpause(id).await?;
    }
    Ok(body::status(StatusCode::NO_CONTENT))
}

/// How long the CPU figure is sampled over (docker's one-shot reads two
/// samples a second apart; a shorter one answers sooner).
const SAMPLE_MS: u32 = 500;

/// Samples of the streaming form, a second apart (docker's own pace).
const INTERVAL_MS: u32 = 1000;

/// GET /containers/{id}/stats: one sample (`stream=false` or `one-shot`),
/// or one per second as JSON lines until the client goes away or the
/// container is removed.
pub async fn stats(api: &DockerApi, id: &str, q: &Query) -> Result<Reply> {
    if !q.flag("stream", true) || q.flag("one-shot", false) {
        let mut all = api.engine.stats(&[id.to_owned()], false, SAMPLE_MS).await?;
        let s = all.pop().ok_or_else(|| {
            ApiError::NotFound(format!("No such container: {}", crate::inspect::cut(id)))
        })?;
        return Ok(body::json(&shape(&s, SAMPLE_MS)));
    }
    let mut samples = api
        .engine
        .stats_stream(&[id.to_owned()], false, INTERVAL_MS)
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(4);
    tokio::spawn(async move {
        while let Some(Ok(mut batch)) = samples.recv().await {
            let Some(s) = batch.pop() else { return };
            if s.state.is_none_or(|st| st.is_removing()) {
                return;
            }
            let mut line = shape(&s, INTERVAL_MS).to_string();
            line.push('\n');
            if tx.send(bytes::Bytes::from(line)).await.is_err() {
                return; // the client went away: dropping the receiver ends the samples
            }
        }
    });
    Ok(body::stream(rx, "application/json"))
}

/// One sample in docker's shape. docker computes CPU % as
/// (cpu delta / system delta) x online CPUs x 100: the system figures are
/// made so that this gives the engine's own percentage over `sample_ms`.
fn shape(s: &quilt_sync_engine::ContainerStats, sample_ms: u32) -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let sample_ns = u64::from(sample_ms) * 1_000_000;
    let used_ns = (s.cpu_percent / 100.0 * sample_ns as f64) as u64;
    let system = s.time_ns.max(0) as u64 * cpus;
    let read = crate::time::rfc3339(s.time_ns);
    let pre_read = crate::time::rfc3339(s.time_ns - i64::from(sample_ms) * 1_000_000);
    let mut v = json!({
        "id": s.id,
        "name": format!("/{}", s.name),
        "read": read,
        "preread": pre_read,
        "num_procs": 0,
        "pids_stats": {"current": s.pids, "limit": s.pids_limit},
        "cpu_stats": {
            "cpu_usage": {"total_usage": s.cpu_ns},
            "system_cpu_usage": system,
            "online_cpus": cpus,
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": s.cpu_ns.saturating_sub(used_ns)},
            "system_cpu_usage": system.saturating_sub(sample_ns * cpus),
            "online_cpus": cpus,
        },
        "memory_stats": {"usage": s.memory_bytes, "limit": s.memory_limit, "stats": {}},
        "blkio_stats": {"io_service_bytes_recursive": [
            {"major": 0, "minor": 0, "op": "read", "value": s.block_read},
            {"major": 0, "minor": 0, "op": "write", "value": s.block_write},
        ]},
    });
    if let Some((rx, tx)) = s.net {
        v["networks"] = json!({"eth0": {"rx_bytes": rx, "tx_bytes": tx}});
    }
    v
}
