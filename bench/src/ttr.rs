//! Time to running (CreateContainer sent -> RUNNING event received on an
//! already open WatchEvents stream), exit-to-event latency, per-phase times
//! from the server's event timestamps, and the sequential start rate.

use crate::client::{self, Client, code_name, create_request, with_timeout};
use crate::events::{Hub, Seen, wall_delta};
use crate::report::{Attached, Phases, Seqrate, Ttr};
use crate::stats::Samples;
use anyhow::Result;
use quilt_proto::v1::{GetLogsRequest, GetLogsResponse, StartContainerRequest, get_logs_response};
use std::path::Path;
use std::time::{Duration, Instant};

const CALL: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(30);
/// How long the host is left idle before each start of the "after idle"
/// figure. On a virtual machine an idle CPU halts, and waking a thread or
/// process on it costs far more than on a busy one; a start hands work
/// between many threads and processes. Starts in a loop keep the CPUs busy
/// and never see that cost; an agent's sporadic creates do.
pub const IDLE: Duration = Duration::from_millis(50);

/// The outcome of one create -> running.
pub struct Start {
    pub id: String,
    pub ack: Duration,
    /// Create sent -> RUNNING received; None if it failed or timed out.
    pub running: Option<Duration>,
    pub error: Option<(String, String)>,
}

impl Start {
    /// Its time to running into `s`, or why it has none.
    pub fn record(&self, s: &mut Samples) {
        match (&self.running, &self.error) {
            (Some(d), _) => s.ok(*d),
            (None, Some((k, m))) => s.err(k, m.clone()),
            (None, None) => s.err("UNKNOWN", "no running event"),
        }
    }
}

/// Creates one container and waits for its RUNNING (or FAILED) event.
pub async fn start_one(c: &mut Client, hub: &Hub, command: &[&str], auto_remove: bool) -> Start {
    start_one_with(c, hub, create_request(command, auto_remove, false)).await
}

/// `start_one` with a request of the caller's.
pub async fn start_one_with(
    c: &mut Client,
    hub: &Hub,
    req: quilt_proto::v1::CreateContainerRequest,
) -> Start {
    let t = Instant::now();
    let id = match with_timeout(CALL, c.create_container(req)).await {
        Ok(r) => r.id,
        Err(st) => {
            return Start {
                id: String::new(),
                ack: t.elapsed(),
                running: None,
                error: Some((code_name(st.code()), st.message().to_string())),
            };
        }
    };
    let ack = t.elapsed();
    running_since(hub, id, t, ack).await
}

/// Creates one container without starting it, then starts it (as `docker
/// run` and `quilt run` do), and waits for its RUNNING (or FAILED) event;
/// its time to running counts from the create.
pub async fn create_then_start(c: &mut Client, hub: &Hub, command: &[&str]) -> Start {
    let t = Instant::now();
    let failed = |id: String, st: tonic::Status| Start {
        id,
        ack: t.elapsed(),
        running: None,
        error: Some((code_name(st.code()), st.message().to_string())),
    };
    let id = match with_timeout(
        CALL,
        c.create_container(create_request(command, true, true)),
    )
    .await
    {
        Ok(r) => r.id,
        Err(st) => return failed(String::new(), st),
    };
    let ack = t.elapsed();
    let start = StartContainerRequest {
        id: id.clone(),
        ..Default::default()
    };
    match with_timeout(CALL, c.start_container(start)).await {
        // Already ended (and removed) by the time the answer came back.
        Err(st) if st.code() != tonic::Code::FailedPrecondition => failed(id, st),
        _ => running_since(hub, id, t, ack).await,
    }
}

/// Waits for `id`'s RUNNING (or FAILED) event: its time to running counts
/// from `t`.
async fn running_since(hub: &Hub, id: String, t: Instant, ack: Duration) -> Start {
    match hub.wait(&id, &["running", "failed"], WAIT).await {
        Some(s) if s.action == "running" => Start {
            running: Some(s.at.duration_since(t)),
            id,
            ack,
            error: None,
        },
        Some(s) => {
            let reason = s.exit.map(|e| e.failure_reason).unwrap_or_default();
            Start {
                id,
                ack,
                running: None,
                error: Some(("FAILED".into(), reason)),
            }
        }
        None => Start {
            id,
            ack,
            running: None,
            error: Some((
                "TIMEOUT".into(),
                format!("no running event within {WAIT:?}"),
            )),
        },
    }
}

fn server_delta(events: &[Seen], from: &str, to: &str) -> Option<Duration> {
    let a = events.iter().find(|s| s.action == from)?.time?;
    let b = events.iter().find(|s| s.action == to)?.time?;
    Some(wall_delta(a, b).0)
}

/// The attached path of `quilt run`: create (no_start, auto_remove), open
/// GetLogs(follow), StartContainer, read until the stream's exit item.
/// Returns (create sent -> exit item, EXITED event -> exit item).
async fn attached_one(
    c: &mut Client,
    hub: &Hub,
) -> Result<(Duration, Option<Duration>), (String, String)> {
    let st = |s: tonic::Status| (code_name(s.code()), s.message().to_string());
    let t = Instant::now();
    let id = with_timeout(
        CALL,
        c.create_container(create_request(&["/bin/true"], true, true)),
    )
    .await
    .map_err(st)?
    .id;
    let mut logs = with_timeout(
        CALL,
        c.get_logs(GetLogsRequest {
            id: id.clone(),
            follow: true,
            ..Default::default()
        }),
    )
    .await
    .map_err(st)?;
    if let Err(s) = with_timeout(
        WAIT,
        c.start_container(StartContainerRequest {
            id: id.clone(),
            ..Default::default()
        }),
    )
    .await
        && s.code() != tonic::Code::FailedPrecondition
    {
        return Err(st(s));
    }
    let got_exit = loop {
        match tokio::time::timeout(WAIT, logs.message()).await {
            Ok(Ok(Some(GetLogsResponse {
                item: Some(get_logs_response::Item::Exit(_)),
            }))) => break Some(Instant::now()),
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break None,
        }
    };
    let Some(at) = got_exit else {
        return Err((
            "NO_EXIT_ITEM".into(),
            format!("{id}: the log stream ended without its exit item"),
        ));
    };
    let lag = hub
        .wait(&id, &["exited"], Duration::from_secs(5))
        .await
        .map(|e| at.saturating_duration_since(e.at));
    hub.wait(&id, &["removed"], WAIT).await;
    hub.forget(&id);
    Ok((at.duration_since(t), lag))
}

pub async fn ttr(socket: &Path, n: usize) -> Result<Ttr> {
    let mut c = client::connect(socket).await?;
    let hub = Hub::start(socket).await?;
    let mut ack = Samples::default();
    let mut running = Samples::default();
    let mut exit_to_event = Samples::default();
    let mut phase_queue = Samples::default();
    let mut phase_launch = Samples::default();
    let mut phase_notify = Samples::default();
    let mut phase_run = Samples::default();
    let mut phase_remove = Samples::default();
    let mut negative_exit_deltas = 0;
    for _ in 0..n {
        let s = start_one(&mut c, &hub, &["/bin/true"], true).await;
        if s.id.is_empty() {
            let (k, m) = s.error.unwrap_or_default();
            ack.err(&k, m.clone());
            running.err(&k, m);
            continue;
        }
        ack.ok(s.ack);
        s.record(&mut running);
        // The exit event: EXITED's exit.finished_at (when the shim saw the
        // workload exit) -> received here.
        match hub.wait(&s.id, &["exited", "failed"], WAIT).await {
            Some(e) if e.action == "exited" => {
                match e.exit.as_ref().and_then(|x| x.finished_at.as_ref()) {
                    Some(f) => {
                        let (d, ok) = wall_delta(crate::events::to_system_time(f), e.wall);
                        if !ok {
                            negative_exit_deltas += 1;
                        }
                        exit_to_event.ok(d);
                    }
                    None => {
                        exit_to_event.err("NO_FINISHED_AT", "exited event without exit.finished_at")
                    }
                }
            }
            Some(_) => exit_to_event.err("FAILED", "container failed"),
            None => exit_to_event.err("TIMEOUT", "no exited event"),
        }
        if hub.wait(&s.id, &["removed"], WAIT).await.is_none() {
            phase_remove.err("TIMEOUT", format!("{} not removed", s.id));
        }
        let evs = hub.events_of(&s.id);
        if let Some(d) = server_delta(&evs, "created", "starting") {
            phase_queue.ok(d);
        }
        if let Some(d) = server_delta(&evs, "starting", "running") {
            phase_launch.ok(d);
        }
        if let Some(d) = server_delta(&evs, "running", "exited") {
            phase_run.ok(d);
        }
        if let Some(d) = server_delta(&evs, "exited", "removed") {
            phase_remove.ok(d);
        }
        if let Some(r) = evs.iter().find(|e| e.action == "running")
            && let Some(t) = r.time
        {
            phase_notify.ok(wall_delta(t, r.wall).0);
        }
        hub.forget(&s.id);
    }
    // After idle: each start once the last one is removed and the host has
    // had nothing to do for `IDLE`, fewer rounds.
    let mut after_idle = Samples::default();
    for _ in 0..n.div_ceil(2) {
        tokio::time::sleep(IDLE).await;
        let s = start_one(&mut c, &hub, &["/bin/true"], true).await;
        s.record(&mut after_idle);
        if !s.id.is_empty() {
            if hub
                .wait(&s.id, &["removed", "failed"], WAIT)
                .await
                .is_none()
            {
                after_idle.err("TIMEOUT", format!("{} not removed", s.id));
            }
            hub.forget(&s.id);
        }
    }
    // The attached path (what `quilt run` does), fewer rounds.
    let mut attached = Samples::default();
    let mut attached_lag = Samples::default();
    for _ in 0..n.div_ceil(2) {
        match attached_one(&mut c, &hub).await {
            Ok((total, lag)) => {
                attached.ok(total);
                match lag {
                    Some(l) => attached_lag.ok(l),
                    None => attached_lag.err("NO_EXITED_EVENT", "no exited event"),
                }
            }
            Err((k, m)) => attached.err(&k, m),
        }
    }
    hub.stop();
    let (a, r, x) = (ack.stats(), running.stats(), exit_to_event.stats());
    let i = after_idle.stats();
    eprintln!(
        "ttr: ack p50 {:.3} ms; time to running p50 {:.2} p95 {:.2} p99 {:.2} ms ({} errors), after {} ms idle p50 {:.2}; exit->event p50 {:.3} ms",
        a.p50_ms,
        r.p50_ms,
        r.p95_ms,
        r.p99_ms,
        r.errors,
        IDLE.as_millis(),
        i.p50_ms,
        x.p50_ms
    );
    Ok(Ttr {
        description: "CreateContainer(/bin/true, auto_remove) sent -> RUNNING event received on an open WatchEvents stream; sequential".into(),
        create_ack: ack.report(),
        time_to_running: running.report(),
        time_to_running_after_idle: after_idle.report(),
        exit_to_event: exit_to_event.report(),
        exit_to_event_negative: negative_exit_deltas,
        phases: Phases {
            description: "from the server's event times: created->starting (queue), starting->running (launch), running event time->received (notify), running->exited (workload), exited->removed (cleanup)".into(),
            queue: phase_queue.report(),
            launch: phase_launch.report(),
            notify: phase_notify.report(),
            workload: phase_run.report(),
            remove: phase_remove.report(),
        },
        attached: Attached {
            description: "the path of `quilt run --rm`: CreateContainer(no_start, auto_remove), GetLogs(follow), StartContainer, until the log stream's exit item".into(),
            create_to_exit_item: attached.report(),
            exited_event_to_exit_item: attached_lag.report(),
        },
        event_stream_resubscribes: hub.lost.load(std::sync::atomic::Ordering::SeqCst),
    })
}

/// Containers started per second in sequence: create -> RUNNING -> next.
pub async fn seqrate(socket: &Path, n: usize) -> Result<Seqrate> {
    let mut c = client::connect(socket).await?;
    let hub = Hub::start(socket).await?;
    let mut each = Samples::default();
    let mut ids = Vec::new();
    let t0 = Instant::now();
    for _ in 0..n {
        let s = start_one(&mut c, &hub, &["/bin/true"], true).await;
        s.record(&mut each);
        if !s.id.is_empty() {
            ids.push(s.id);
        }
    }
    let total = t0.elapsed();
    let started = each.times.len();
    let rate = started as f64 / total.as_secs_f64();
    // Let the auto-removals finish before the next measurement.
    let mut not_removed = 0;
    for id in &ids {
        if hub.wait(id, &["removed", "failed"], WAIT).await.is_none() {
            not_removed += 1;
        }
    }
    let drain = t0.elapsed() - total;
    hub.stop();
    let leftover = client::list_ids(&mut c).await?;
    if !leftover.is_empty() {
        client::remove_all(socket, leftover, 4).await?;
    }
    eprintln!(
        "seqrate: {started} started in {:.2} s = {rate:.1}/s",
        total.as_secs_f64()
    );
    Ok(Seqrate {
        description: "sequential create(/bin/true, auto_remove) -> RUNNING event -> next".into(),
        n,
        started,
        total_s: total.as_secs_f64(),
        starts_per_s: (rate * 10.0).round() / 10.0,
        per_start: each.report(),
        not_removed_within_30s: not_removed,
        removal_drain_s: drain.as_secs_f64(),
    })
}
