//! Operations the issue sets figures for: pause/unpause latency of a small
//! container, and the start queue's fairness (an interactive client's time
//! to running while another client bursts batch creates, against the same
//! client's time to running on an idle daemon).

use crate::client::{self, Client, code_name, create_request, with_timeout};
use crate::events::Hub;
use crate::report::{Fairness, PauseTimes};
use crate::stats::Samples;
use anyhow::{Context, Result};
use quilt_proto::v1::{
    ContainerState, CreateContainerRequest, GetContainerRequest, PauseContainerRequest,
    StartPriority, UnpauseContainerRequest,
};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const CALL: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(60);

fn as_client<T>(client: &str, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Ok(v) = client.parse() {
        r.metadata_mut().insert("x-quilt-client", v);
    }
    r
}

fn request(command: &[&str], priority: StartPriority) -> CreateContainerRequest {
    CreateContainerRequest {
        priority: priority as i32,
        ..create_request(command, true, false)
    }
}

/// `quilt-bench pause`: N pause + unpause round trips on one running
/// `sleep` container.
pub async fn pause(socket: &Path, n: usize) -> Result<PauseTimes> {
    let mut c = client::connect(socket).await?;
    let req = create_request(&["sleep", "3600"], false, false);
    let id = with_timeout(CALL, c.create_container(req)).await?.id;
    let deadline = Instant::now() + WAIT;
    loop {
        let got = with_timeout(
            CALL,
            c.get_container(GetContainerRequest { id: id.clone() }),
        )
        .await?
        .container
        .context("no container")?;
        if got.state == ContainerState::Running as i32 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the container never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut p, mut u) = (Samples::default(), Samples::default());
    for _ in 0..n {
        let t = Instant::now();
        match with_timeout(
            CALL,
            c.pause_container(PauseContainerRequest { id: id.clone() }),
        )
        .await
        {
            Ok(_) => p.ok(t.elapsed()),
            Err(st) => p.err(&code_name(st.code()), st.message()),
        }
        let t = Instant::now();
        match with_timeout(
            CALL,
            c.unpause_container(UnpauseContainerRequest { id: id.clone() }),
        )
        .await
        {
            Ok(_) => u.ok(t.elapsed()),
            Err(st) => u.err(&code_name(st.code()), st.message()),
        }
    }
    let _ = c
        .remove_container(quilt_proto::v1::RemoveContainerRequest {
            id: id.clone(),
            force: true,
        })
        .await;
    Ok(PauseTimes {
        description: "PauseContainer / UnpauseContainer round trips on a running `sleep`".into(),
        pause: p.report(),
        unpause: u.report(),
    })
}

/// One interactive start by client "probe": create sent -> RUNNING event.
async fn probe(c: &mut Client, hub: &Hub, s: &mut Samples) {
    let t = Instant::now();
    let req = as_client("probe", request(&["true"], StartPriority::Interactive));
    let id = match with_timeout(CALL, c.create_container(req)).await {
        Ok(r) => r.id,
        Err(st) => return s.err(&code_name(st.code()), st.message()),
    };
    match hub.wait(&id, &["running", "failed"], WAIT).await {
        Some(seen) if seen.action == "running" => s.ok(seen.at.duration_since(t)),
        Some(_) => s.err("FAILED", "the probe failed to start"),
        None => s.err("TIMEOUT", "no running event"),
    }
}

/// `quilt-bench fairness`: `probes` interactive starts on an idle daemon,
/// then the same while client "bulk" sends `burst` batch creates as fast
/// as the queue takes them (retrying after the hint it is given).
pub async fn fairness(socket: &Path, burst: usize, probes: usize) -> Result<Fairness> {
    let hub = Hub::start(socket).await?;
    let mut c = client::connect(socket).await?;
    let mut idle = Samples::default();
    for _ in 0..probes {
        probe(&mut c, &hub, &mut idle).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let bulk = {
        let (socket, stop, accepted, refused) = (
            socket.to_owned(),
            stop.clone(),
            accepted.clone(),
            refused.clone(),
        );
        tokio::spawn(async move {
            let mut c = client::connect(&socket).await?;
            let mut sent = 0;
            while sent < burst && !stop.load(Ordering::Relaxed) {
                let req = as_client("bulk", request(&["true"], StartPriority::Batch));
                match with_timeout(CALL, c.create_container(req)).await {
                    Ok(_) => {
                        sent += 1;
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(st) if st.code() == tonic::Code::ResourceExhausted => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        let ms = st
                            .metadata()
                            .get("retry-after-ms")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(100)
                            .clamp(5, 1000);
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    Err(st) => anyhow::bail!("bulk create: {st:?}"),
                }
            }
            anyhow::Ok(())
        })
    };
    // Let the queue fill first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut busy = Samples::default();
    for _ in 0..probes {
        probe(&mut c, &hub, &mut busy).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let burst_running = !bulk.is_finished();
    stop.store(true, Ordering::Relaxed);
    bulk.await??;
    // What the burst queued drains before the next measurement begins.
    let drain = Instant::now() + Duration::from_secs(300);
    while Instant::now() < drain {
        let req = quilt_proto::v1::ListContainersRequest {
            states: vec![
                ContainerState::Created as i32,
                ContainerState::Starting as i32,
            ],
            ..Default::default()
        };
        match with_timeout(CALL, c.list_containers(req)).await {
            Ok(page) if page.containers.is_empty() => break,
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let (i, b) = (idle.report(), busy.report());
    let ratio = if i.stats.p95_ms > 0.0 {
        (b.stats.p95_ms / i.stats.p95_ms * 100.0).round() / 100.0
    } else {
        0.0
    };
    Ok(Fairness {
        description: format!(
            "interactive time to running of one client, idle and while another bursts up to {burst} batch creates"
        ),
        idle: i,
        under_burst: b,
        p95_ratio: ratio,
        burst_accepted: accepted.load(Ordering::Relaxed),
        burst_refused: refused.load(Ordering::Relaxed),
        burst_still_running_at_end: burst_running,
    })
}
