//! Reap gate: many short-lived auto-removed containers with bounded
//! concurrency; passes only with zero hangs, zero zombies and zero leftovers.
//! It also reports what the host's unreclaimable kernel memory grew by.

use crate::client::{self, code_name, create_request, with_timeout};
use crate::density::{DensityOpts, settle_leftovers};
use crate::events::Hub;
use crate::report::ReapGate;
use crate::stats::Samples;
use anyhow::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct ReapOpts {
    pub base: DensityOpts,
    pub concurrency: usize,
    pub timeout: Duration,
}

#[derive(Default)]
struct Counts {
    created: u64,
    running: u64,
    exited: u64,
    removed: u64,
    failed: u64,
    hung: Vec<String>,
    exhausted: u64,
    errors: Samples,
    lifetime: Samples,
}

pub async fn reap_gate(o: &ReapOpts) -> Result<ReapGate> {
    let n = o.base.n;
    let hub = Hub::start(&o.base.socket).await?;
    // One container made and removed first: the daemon's own cgroups
    // (its parent, the shared memory cgroup), made with its first
    // container and kept while it runs, are then in both readings.
    {
        let mut c = client::connect(&o.base.socket).await?;
        let req = create_request(&["/bin/true"], true, false);
        let id = with_timeout(Duration::from_secs(10), c.create_container(req))
            .await?
            .id;
        hub.wait(&id, &["removed", "failed"], o.timeout).await;
        hub.forget(&id);
    }
    let kmem_before = crate::kmem::before().await;
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency.max(1) {
        let (next, done, hub) = (next.clone(), done.clone(), hub.clone());
        let timeout = o.timeout;
        let mut c = client::connect(&o.base.socket).await?;
        tasks.push(tokio::spawn(async move {
            let mut k = Counts::default();
            while next.fetch_add(1, Ordering::SeqCst) < n {
                let t = Instant::now();
                let id = loop {
                    let req = create_request(&["/bin/true"], true, false);
                    match with_timeout(Duration::from_secs(10), c.create_container(req)).await {
                        Ok(r) => break Some(r.id),
                        Err(st) if st.code() == tonic::Code::ResourceExhausted => {
                            k.exhausted += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err(st) => {
                            k.errors
                                .err(&code_name(st.code()), st.message().to_string());
                            break None;
                        }
                    }
                };
                if let Some(id) = id {
                    k.created += 1;
                    match hub.wait(&id, &["removed", "failed"], timeout).await {
                        Some(s) if s.action == "failed" => {
                            k.failed += 1;
                            let reason = s.exit.map(|e| e.failure_reason).unwrap_or_default();
                            k.errors.err("FAILED", format!("{id}: {reason}"));
                            let _ = with_timeout(
                                Duration::from_secs(30),
                                c.remove_container(quilt_proto::v1::RemoveContainerRequest {
                                    id: id.clone(),
                                    force: true,
                                }),
                            )
                            .await;
                        }
                        Some(_) => {
                            k.removed += 1;
                            k.lifetime.ok(t.elapsed());
                        }
                        None => k.hung.push(id.clone()),
                    }
                    let evs = hub.events_of(&id);
                    if evs.iter().any(|e| e.action == "running") {
                        k.running += 1;
                    }
                    if evs.iter().any(|e| e.action == "exited") {
                        k.exited += 1;
                    }
                    hub.forget(&id);
                }
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                if d % 1000 == 0 {
                    eprintln!("reap-gate: {d}/{n} done");
                }
            }
            k
        }));
    }
    let mut all = Counts::default();
    for t in tasks {
        let k = t.await?;
        all.created += k.created;
        all.running += k.running;
        all.exited += k.exited;
        all.removed += k.removed;
        all.failed += k.failed;
        all.hung.extend(k.hung);
        all.exhausted += k.exhausted;
        all.errors.merge(k.errors);
        all.lifetime.merge(k.lifetime);
    }
    let total_s = t0.elapsed().as_secs_f64();
    hub.stop();
    let mut c = client::connect(&o.base.socket).await?;
    let (first, last, settle_s) =
        settle_leftovers(&mut c, &o.base, &[], Duration::from_secs(15)).await?;
    let kernel_memory = match kmem_before {
        Some(b) => crate::kmem::after(b, Duration::from_secs(10)).await,
        None => None,
    };
    let hangs = all.hung.len();
    let pass = hangs == 0
        && all.failed == 0
        && all.errors.errors == 0
        && all.created == n as u64
        && all.removed == n as u64
        && all.exited == n as u64
        && last.zombies.is_empty()
        && last.is_clean();
    eprintln!(
        "reap-gate: {n} requested, {} created, {} running, {} exited, {} removed, {} failed, {hangs} hung, {} errors, {} zombies, {} leftovers ({} rows, {} dirs, {} cgroups, {} shims) in {total_s:.1} s: {}",
        all.created,
        all.running,
        all.exited,
        all.removed,
        all.failed,
        all.errors.errors,
        last.zombies.len(),
        last.total(),
        last.rows.unwrap_or(0),
        last.container_dirs.len(),
        last.cgroup_dirs.len(),
        last.shim_pids.len(),
        if pass { "PASS" } else { "FAIL" }
    );
    if let Some(k) = &kernel_memory {
        eprintln!("reap-gate: {}", k.line());
    }
    Ok(ReapGate {
        description: "short-lived /bin/true containers with auto_remove, bounded concurrency; each must reach exited and removed within the timeout".into(),
        requested: n,
        concurrency: o.concurrency,
        timeout_s: o.timeout.as_secs_f64(),
        created: all.created,
        running_events: all.running,
        exited: all.exited,
        removed: all.removed,
        failed: all.failed,
        hangs,
        hung_examples: all.hung.iter().take(10).cloned().collect(),
        resource_exhausted_retries: all.exhausted,
        errors: all.errors.report(),
        create_to_removed: all.lifetime.report(),
        total_s,
        containers_per_s: (all.removed as f64 / total_s * 10.0).round() / 10.0,
        zombies: last.zombies.len(),
        leftovers_at_once: first,
        leftovers: last,
        settle_s,
        kernel_memory,
        pass,
    })
}
