//! Throughput under concurrency: N clients, each on its own connection,
//! create short containers (/bin/true, auto_remove) as fast as they are
//! answered for a fixed time. RESOURCE_EXHAUSTED (start queue full) is a
//! correct answer: counted apart, and the client backs off briefly. A call
//! unanswered for 10 s is a stall (an error). A separate client measures
//! GetContainer during the burst. Every level drains before the next.

use crate::client::{self, code_name, create_request, with_timeout};
use crate::events::Hub;
use crate::report::{Level, Throughput, finite};
use crate::stats::Samples;
use anyhow::Result;
use quilt_proto::v1::system_service_client::SystemServiceClient;
use quilt_proto::v1::{GetContainerRequest, GetInfoRequest};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CALL: Duration = Duration::from_secs(10);
const BACKOFF: Duration = Duration::from_millis(10);

#[derive(Default)]
struct ClientResult {
    ack: Samples,
    ids: Vec<String>,
    exhausted: u64,
    stalls: u64,
}

pub async fn throughput(
    socket: &Path,
    levels: &[usize],
    seconds: f64,
    drain_timeout: f64,
) -> Result<Throughput> {
    let hub = Hub::start(socket).await?;
    // The status probe reads a stored (never started) container.
    let mut probe_client = client::connect(socket).await?;
    let probe_id = with_timeout(
        CALL,
        probe_client.create_container(create_request(&["sleep", "1"], false, true)),
    )
    .await?
    .id;
    let mut out = Vec::new();
    for &n in levels {
        out.push(level(socket, &hub, n, seconds, drain_timeout, &probe_id).await?);
    }
    client::remove_all(socket, vec![probe_id], 1).await?;
    hub.stop();
    Ok(Throughput {
        description: "N clients creating /bin/true (auto_remove) containers back to back for a fixed time; RESOURCE_EXHAUSTED answers are correct (start queue full) and followed by a 10 ms back-off; a call unanswered for 10 s is a stall".into(),
        seconds_per_level: seconds,
        levels: out,
        event_stream_resubscribes: hub.lost.load(Ordering::SeqCst),
    })
}

async fn level(
    socket: &Path,
    hub: &Arc<Hub>,
    n: usize,
    seconds: f64,
    drain_timeout: f64,
    probe: &str,
) -> Result<Level> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(client::connect(socket).await?);
    }
    let mut probe_client = client::connect(socket).await?;
    let mut sys = SystemServiceClient::new(client::channel(socket).await?);
    let writer0 = writer(&mut sys).await;
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for mut c in clients {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = ClientResult::default();
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match with_timeout(
                    CALL,
                    c.create_container(create_request(&["/bin/true"], true, false)),
                )
                .await
                {
                    Ok(resp) => {
                        r.ack.ok(t.elapsed());
                        r.ids.push(resp.id);
                    }
                    Err(st) if st.code() == tonic::Code::ResourceExhausted => {
                        r.exhausted += 1;
                        tokio::time::sleep(BACKOFF).await;
                    }
                    Err(st) => {
                        if st.code() == tonic::Code::DeadlineExceeded {
                            r.stalls += 1;
                        }
                        r.ack.err(&code_name(st.code()), st.message().to_string());
                    }
                }
            }
            r
        }));
    }
    let probe_id = probe.to_string();
    let status = tokio::spawn(async move {
        let mut s = Samples::default();
        while Instant::now() < deadline {
            let t = Instant::now();
            match with_timeout(
                CALL,
                probe_client.get_container(GetContainerRequest {
                    id: probe_id.clone(),
                }),
            )
            .await
            {
                Ok(_) => s.ok(t.elapsed()),
                Err(st) => s.err(&code_name(st.code()), st.message().to_string()),
            }
            // About 1000 probes a second: a reader, not a load of its own.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        s
    });
    let mut ack = Samples::default();
    let mut ids = Vec::new();
    let (mut exhausted, mut stalls) = (0u64, 0u64);
    for t in tasks {
        let r = t.await?;
        ack.merge(r.ack);
        ids.extend(r.ids);
        exhausted += r.exhausted;
        stalls += r.stalls;
    }
    let window_end = Instant::now();
    let window = window_end.duration_since(t0).as_secs_f64();
    let writer1 = writer(&mut sys).await;
    let (db_writes, db_writer_busy) = match (writer0, writer1) {
        (Some((n0, b0)), Some((n1, b1))) if window > 0.0 => (
            usize::try_from(n1.saturating_sub(n0)).unwrap_or(usize::MAX),
            finite(((b1 - b0) / window * 100.0).round() / 100.0),
        ),
        _ => (0, None),
    };
    let status = status.await?;
    let started_in_window = hub.count_between("running", t0, window_end);

    // Drain: every created container must reach "removed" (or "failed").
    let drain_deadline = Duration::from_secs_f64(drain_timeout);
    let mut running_seen = 0;
    let mut failed = 0;
    let mut hung = Vec::new();
    for id in &ids {
        let left = drain_deadline.saturating_sub(window_end.elapsed());
        match hub
            .wait(
                id,
                &["removed", "failed"],
                left.max(Duration::from_millis(1)),
            )
            .await
        {
            Some(s) if s.action == "failed" => failed += 1,
            Some(_) => {}
            None => hung.push(id.clone()),
        }
        if hub.events_of(id).iter().any(|s| s.action == "running") {
            running_seen += 1;
        }
    }
    let last_running = hub.last_of("running").filter(|t| *t >= t0);
    let drain_s = window_end.elapsed().as_secs_f64();
    for id in &ids {
        hub.forget(id);
    }
    // Failed containers are not auto-removed by every engine: remove what remains.
    let mut c = client::connect(socket).await?;
    let rest: Vec<String> = client::list_ids(&mut c)
        .await?
        .into_iter()
        .filter(|i| i != probe)
        .collect();
    let leftover_after_drain = rest.len();
    if !rest.is_empty() {
        client::remove_all(socket, rest, 4).await?;
    }
    let total_started_span = last_running.map(|t| t.duration_since(t0).as_secs_f64());
    let created = ack.times.len();
    let attempts = created as u64 + ack.errors + exhausted;
    let mut by_code: BTreeMap<String, u64> = ack.error_kinds.clone();
    if exhausted > 0 {
        by_code.insert("RESOURCE_EXHAUSTED".into(), exhausted);
    }
    let st = status.stats();
    eprintln!(
        "throughput: {n:>3} clients: {:.0} creates/s acked, {:.0} started/s, {exhausted} RESOURCE_EXHAUSTED, {} errors, status p99 {:.2} ms, drained in {drain_s:.1} s, store writer busy {}",
        created as f64 / window,
        started_in_window as f64 / window,
        ack.errors,
        st.p99_ms,
        db_writer_busy.map_or("?".to_string(), |b| format!("{:.0}%", b * 100.0))
    );
    Ok(Level {
        clients: n,
        window_s: window,
        attempts,
        creates_acked: created,
        creates_per_s: (created as f64 / window * 10.0).round() / 10.0,
        started_in_window,
        started_per_s: (started_in_window as f64 / window * 10.0).round() / 10.0,
        started_total: running_seen,
        started_per_s_until_last: total_started_span
            .and_then(|s| finite((running_seen as f64 / s * 10.0).round() / 10.0)),
        failed,
        resource_exhausted: exhausted,
        stalls,
        errors: ack.errors,
        error_rate: if attempts > 0 {
            ack.errors as f64 / attempts as f64
        } else {
            0.0
        },
        answers_by_code: by_code,
        create_ack: ack.report(),
        status_during_burst: status.report(),
        hung: hung.len(),
        hung_examples: hung.iter().take(5).cloned().collect(),
        leftover_after_drain,
        drain_s,
        db_writes,
        db_writer_busy,
    })
}

/// (writes committed, seconds the writer was held) since quiltd started;
/// None from a quiltd that does not say (another engine, an older one).
async fn writer(sys: &mut SystemServiceClient<tonic::transport::Channel>) -> Option<(u64, f64)> {
    let i = with_timeout(CALL, sys.get_info(GetInfoRequest {}))
        .await
        .ok()?;
    (i.db_writes > 0).then_some((i.db_writes, i.db_write_busy_seconds))
}
