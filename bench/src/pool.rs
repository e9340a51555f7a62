//! Warm pools: time to running of creates that adopt a pooled container
//! (with autostart, and created then started) against cold starts of the
//! same command, in one run on one daemon.
use crate::client::{self, with_timeout};
use crate::events::Hub;
use crate::report::WarmPoolBench;
use crate::stats::Samples;
use crate::ttr::{create_then_start, start_one};
use anyhow::{Context, Result, bail};
use quilt_proto::v1::system_service_client::SystemServiceClient;
use quilt_proto::v1::{ListWarmPoolsRequest, SetWarmPoolRequest, WarmPoolSpec};
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

const CALL: Duration = Duration::from_secs(30);
const REFILL: Duration = Duration::from_secs(30);

fn spec(size: u32) -> WarmPoolSpec {
    WarmPoolSpec {
        image: "default".into(),
        size,
        init: false,
        read_only: false,
    }
}

/// (ready, hits, misses) of the default image's plain pool.
async fn pool_state(sys: &mut SystemServiceClient<Channel>) -> Result<(u32, u64, u64)> {
    let pools = with_timeout(CALL, sys.list_warm_pools(ListWarmPoolsRequest {}))
        .await?
        .pools;
    let p = pools
        .into_iter()
        .find(|p| {
            p.spec
                .as_ref()
                .is_some_and(|s| s.image == "default" && !s.init && !s.read_only)
        })
        .context("the pool is not listed")?;
    Ok((p.ready, p.hits, p.misses))
}

/// Waits for the pool to be full again; how long that took.
async fn wait_full(sys: &mut SystemServiceClient<Channel>, size: u32) -> Result<Duration> {
    let t = Instant::now();
    loop {
        let (ready, ..) = pool_state(sys).await?;
        if ready >= size {
            return Ok(t.elapsed());
        }
        if t.elapsed() > REFILL {
            bail!("the warm pool did not fill within {REFILL:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `n` creates adopting a pooled container (each once the pool of `size`
/// is full again: an agent's pace, not a burst), `n` creates without a
/// start each followed by a start that adopts (the same pace), then `n`
/// cold ones. The hits and misses count both kinds of adoption.
pub async fn warm_pool(socket: &Path, n: usize, size: u32) -> Result<WarmPoolBench> {
    let mut c = client::connect(socket).await?;
    let mut sys = SystemServiceClient::new(client::channel(socket).await?);
    let hub = Hub::start(socket).await?;
    with_timeout(
        CALL,
        sys.set_warm_pool(SetWarmPoolRequest {
            spec: Some(spec(size)),
        }),
    )
    .await?;
    let mut hit = Samples::default();
    let mut cold = Samples::default();
    let mut refill = Samples::default();
    let (_, hits0, misses0) = pool_state(&mut sys).await?;
    for _ in 0..n {
        refill.ok(wait_full(&mut sys, size).await?);
        start_one(&mut c, &hub, &["/bin/true"], true)
            .await
            .record(&mut hit);
    }
    // As `docker run` and `quilt run` do: a create that claims one, then a
    // start that adopts it.
    let mut hit_start = Samples::default();
    for _ in 0..n {
        wait_full(&mut sys, size).await?;
        create_then_start(&mut c, &hub, &["/bin/true"])
            .await
            .record(&mut hit_start);
    }
    let (_, hits1, misses1) = pool_state(&mut sys).await?;
    with_timeout(
        CALL,
        sys.set_warm_pool(SetWarmPoolRequest {
            spec: Some(spec(0)),
        }),
    )
    .await?;
    for _ in 0..n {
        start_one(&mut c, &hub, &["/bin/true"], true)
            .await
            .record(&mut cold);
    }
    let (h, k) = (hit.stats(), cold.stats());
    Ok(WarmPoolBench {
        description: format!(
            "time to running (create -> RUNNING event) of /bin/true: {n} creates adopting a container of a warm pool of {size} (each once the pool is full again), {n} creates without a start each followed by a start that adopts (as `docker run` and `quilt run`), then {n} cold starts with no pool, same daemon"
        ),
        size,
        hits: hits1 - hits0,
        misses: misses1 - misses0,
        ratio_hit_over_cold_p50: (k.p50_ms > 0.0)
            .then(|| (h.p50_ms / k.p50_ms * 100.0).round() / 100.0),
        hit: hit.report(),
        hit_create_then_start: hit_start.report(),
        cold: cold.report(),
        wait_for_full_pool: refill.report(),
    })
}
