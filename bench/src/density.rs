//! Density: many idle containers at once; daemon memory, host memory per
//! container, status latency with all of them running, then a full removal
//! checked from outside (rows, dirs, cgroups, shims, zombies).

use crate::client::{self, code_name, create_request, with_timeout};
use crate::events::Hub;
use crate::report::{Density, Leftovers};
use crate::stats::Samples;
use anyhow::Result;
use quilt_proto::v1::{GetContainerRequest, ListContainersRequest};
use quilt_testkit::host;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct DensityOpts {
    pub socket: PathBuf,
    pub n: usize,
    pub gets: usize,
    pub concurrency: usize,
    pub data_dir: PathBuf,
    pub cgroup_parent: String,
    pub quiltd_pid: i32,
    /// Sequential /bin/true starts timed while the n are running (0: none).
    pub probes: usize,
}

pub(crate) fn mib(kb: u64) -> f64 {
    (kb as f64 / 1024.0 * 100.0).round() / 100.0
}

/// The median of some readings (None: none).
pub(crate) fn median(mut readings: Vec<u64>) -> Option<u64> {
    readings.sort_unstable();
    readings.get(readings.len() / 2).copied()
}

/// Median of a few readings of MemAvailable (kB), to damp the noise.
pub(crate) fn mem_available() -> u64 {
    median((0..5).filter_map(|_| host::mem_available_kb()).collect()).unwrap_or(0)
}

/// Memory charged to the daemon's parent cgroup (all its containers), kB.
fn cgroup_memory_kb(parent: &str) -> Option<u64> {
    let file = match host::cgroup_version() {
        host::CgroupVersion::V1 => "memory.usage_in_bytes",
        host::CgroupVersion::V2 => "memory.current",
    };
    host::read_trimmed(&host::cgroup_dir("memory", parent).join(file))?
        .parse::<u64>()
        .ok()
        .map(|b| b / 1024)
}

/// Polls the host until nothing is left (removal steps may finish just after
/// the call answers), up to `timeout`. Returns the first and last scans.
pub async fn settle_leftovers(
    c: &mut client::Client,
    o: &DensityOpts,
    keep: &[String],
    timeout: Duration,
) -> Result<(Leftovers, Leftovers, f64)> {
    let t = Instant::now();
    let scan = |rows: usize| {
        Leftovers::scan(
            Some(rows),
            &o.data_dir,
            &o.cgroup_parent,
            Some(o.quiltd_pid),
        )
    };
    let rows = count_rows(c, keep).await?;
    let first = scan(rows);
    let mut last = scan(rows);
    while !last.is_clean() && t.elapsed() < timeout {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rows = count_rows(c, keep).await?;
        last = scan(rows);
    }
    Ok((first, last, t.elapsed().as_secs_f64()))
}

async fn count_rows(c: &mut client::Client, keep: &[String]) -> Result<usize> {
    Ok(client::list_ids(c)
        .await?
        .iter()
        .filter(|i| !keep.contains(i))
        .count())
}

pub async fn density(o: &DensityOpts) -> Result<Density> {
    let hub = Hub::start(&o.socket).await?;
    let mut c = client::connect(&o.socket).await?;
    let rss0 = host::rss_kb(o.quiltd_pid).unwrap_or(0);
    let avail0 = mem_available();
    let cg0 = cgroup_memory_kb(&o.cgroup_parent).unwrap_or(0);

    // Start n idle containers, `concurrency` creates in flight.
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrency.max(1) {
        let next = next.clone();
        let hub = hub.clone();
        let n = o.n;
        let mut c = client::connect(&o.socket).await?;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut ttr = Samples::default();
            let mut exhausted = 0u64;
            while next.fetch_add(1, Ordering::SeqCst) < n {
                loop {
                    let t = Instant::now();
                    let req = create_request(&["sleep", "3600"], false, false);
                    match with_timeout(Duration::from_secs(10), c.create_container(req)).await {
                        Ok(r) => {
                            match hub
                                .wait(&r.id, &["running", "failed"], Duration::from_secs(60))
                                .await
                            {
                                Some(s) if s.action == "running" => ttr.ok(s.at.duration_since(t)),
                                Some(_) => ttr.err("FAILED", format!("{} failed to start", r.id)),
                                None => {
                                    ttr.err("TIMEOUT", format!("{} not running after 60 s", r.id))
                                }
                            }
                            ids.push(r.id);
                            break;
                        }
                        Err(st) if st.code() == tonic::Code::ResourceExhausted => {
                            exhausted += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        Err(st) => {
                            ttr.err(&code_name(st.code()), st.message().to_string());
                            break;
                        }
                    }
                }
            }
            (ids, ttr, exhausted)
        }));
    }
    let mut ids = Vec::new();
    let mut ttr = Samples::default();
    let mut exhausted = 0;
    for t in tasks {
        let (i, s, e) = t.await?;
        ids.extend(i);
        ttr.merge(s);
        exhausted += e;
    }
    let start_s = t0.elapsed().as_secs_f64();
    let running = ttr.times.len();
    eprintln!(
        "density: {running}/{} containers running after {start_s:.1} s",
        o.n
    );

    // Memory with all of them running.
    let avail1 = mem_available();
    let rss1 = host::rss_kb(o.quiltd_pid).unwrap_or(0);
    let hwm1 = host::hwm_kb(o.quiltd_pid).unwrap_or(0);
    let cg1 = cgroup_memory_kb(&o.cgroup_parent);
    let shims = host::shims_of(&o.data_dir, Some(o.quiltd_pid));
    let mut workloads = Vec::new();
    for id in &ids {
        if let Ok(pid) = client::get_pid(&mut c, id).await
            && pid > 0
        {
            workloads.push(pid);
        }
    }
    let sum = |pids: &[i32], f: fn(i32) -> Option<u64>| -> u64 {
        pids.iter().filter_map(|p| f(*p)).sum()
    };
    let (shim_rss, shim_pss) = (sum(&shims, host::rss_kb), sum(&shims, host::pss_kb));
    let (wl_rss, wl_pss) = (sum(&workloads, host::rss_kb), sum(&workloads, host::pss_kb));
    let per = |kb: u64| {
        if running > 0 {
            mib(kb / running as u64)
        } else {
            0.0
        }
    };
    let avail_delta = avail0.saturating_sub(avail1);

    // Status latency with all of them running.
    let mut get = Samples::default();
    if !ids.is_empty() {
        for i in 0..o.gets {
            let id = ids[i % ids.len()].clone();
            let t = Instant::now();
            match with_timeout(
                Duration::from_secs(10),
                c.get_container(GetContainerRequest { id }),
            )
            .await
            {
                Ok(_) => get.ok(t.elapsed()),
                Err(st) => get.err(&code_name(st.code()), st.message().to_string()),
            }
        }
    }
    let mut list = Samples::default();
    for _ in 0..10 {
        let t = Instant::now();
        match with_timeout(
            Duration::from_secs(10),
            c.list_containers(ListContainersRequest::default()),
        )
        .await
        {
            Ok(_) => list.ok(t.elapsed()),
            Err(st) => list.err(&code_name(st.code()), st.message().to_string()),
        }
    }

    // Time to running of one more container with all of them running.
    let mut at_n = Samples::default();
    for _ in 0..o.probes {
        let st = crate::ttr::start_one(&mut c, &hub, &["/bin/true"], true).await;
        st.record(&mut at_n);
        if !st.id.is_empty() {
            hub.wait(&st.id, &["removed", "failed"], Duration::from_secs(30))
                .await;
            hub.forget(&st.id);
        }
    }

    // Remove them all and check that nothing is left.
    let t1 = Instant::now();
    let removal = client::remove_all(&o.socket, ids.clone(), o.concurrency.max(1)).await?;
    let remove_s = t1.elapsed().as_secs_f64();
    for id in &ids {
        hub.forget(id);
    }
    hub.stop();
    let (first, last, settle_s) = settle_leftovers(&mut c, o, &[], Duration::from_secs(15)).await?;
    // What came back once they were gone: a second view of the same cost
    // (MemAvailable moves with everything else on a shared machine).
    let avail2 = mem_available();
    let release_delta = avail2.saturating_sub(avail1);
    let g = get.stats();
    eprintln!(
        "density: quiltd RSS {:.1} MiB with {running} running; {:.3} MiB/container (MemAvailable), {:.3} MiB (RSS shim+workload), {:.3} MiB (PSS); status p99 {:.3} ms; left after removal: {}",
        mib(rss1),
        per(avail_delta),
        per(shim_rss + wl_rss),
        per(shim_pss + wl_pss),
        g.p99_ms,
        last.total()
    );
    Ok(Density {
        description:
            "idle `sleep 3600` containers started with bounded concurrency; memory read from /proc"
                .into(),
        requested: o.n,
        running,
        start_s,
        start_resource_exhausted_retries: exhausted,
        time_to_running_under_load: ttr.report(),
        time_to_running_with_all_running: at_n.report(),
        quiltd_rss_mib_before: mib(rss0),
        quiltd_rss_mib: mib(rss1),
        quiltd_hwm_mib: mib(hwm1),
        mem_available_delta_mib: mib(avail_delta),
        per_container_mib_mem_available: per(avail_delta),
        mem_available_released_mib: mib(release_delta),
        per_container_mib_mem_available_released: per(release_delta),
        cgroup_memory_mib: cg1.map(|k| mib(k.saturating_sub(cg0))),
        per_container_mib_cgroup: cg1.map(|k| per(k.saturating_sub(cg0))),
        shims: shims.len(),
        workload_pids: workloads.len(),
        shim_rss_mib_total: mib(shim_rss),
        workload_rss_mib_total: mib(wl_rss),
        per_container_mib_rss: per(shim_rss + wl_rss),
        per_container_mib_pss: per(shim_pss + wl_pss),
        get_container_all_running: get.report(),
        list_containers_all_running: list.report(),
        remove_all: removal.report(),
        remove_all_s: remove_s,
        clean: last.is_clean(),
        leftovers_at_once: first,
        leftovers: last,
        settle_s,
    })
}

/// `quilt-bench scale`: the density measurement at several counts of live
/// containers, one after the other (each level starts from none); with
/// `peers`, each peer at the same count after Quilt. A count given twice is
/// measured once.
pub async fn scale(
    o: &DensityOpts,
    levels: &[usize],
    peers: Option<&crate::peer_scale::PeerScaleOpts>,
) -> Result<crate::report::Scale> {
    let runtimes: Vec<_> = peers
        .into_iter()
        .flat_map(|p| {
            p.runtimes
                .iter()
                .map(move |(name, bin)| (p, crate::peers::Runtime::new(name, bin, &p.state_root)))
        })
        .collect();
    if let Some(p) = peers {
        std::fs::create_dir_all(&p.state_root)?;
    }
    let mut out = Vec::new();
    let mut peer_levels = Vec::new();
    let mut measured: Vec<usize> = Vec::with_capacity(levels.len());
    for &n in levels {
        if measured.contains(&n) {
            continue;
        }
        measured.push(n);
        eprintln!("scale: {n} live containers");
        let level = density(&DensityOpts {
            socket: o.socket.clone(),
            n,
            gets: o.gets,
            concurrency: o.concurrency,
            data_dir: o.data_dir.clone(),
            cgroup_parent: o.cgroup_parent.clone(),
            quiltd_pid: o.quiltd_pid,
            probes: o.probes,
        })
        .await?;
        for (p, rt) in &runtimes {
            // A peer that cannot be measured costs its own figures only.
            let mut at_n = match tokio::task::block_in_place(|| crate::peer_scale::level(p, rt, n))
            {
                Ok(at_n) => at_n,
                Err(e) => {
                    eprintln!("scale: {} at {n} live not measured: {e:#}", rt.name);
                    continue;
                }
            };
            at_n.ttr_quilt_over_peer_p50 = crate::stats::ratio(
                level.time_to_running_with_all_running.stats.p50_ms,
                at_n.create_start_one_more.stats.p50_ms,
            );
            if level.running > 0 && at_n.running > 0 {
                at_n.memory_quilt_over_peer = crate::stats::ratio(
                    level.per_container_mib_mem_available,
                    at_n.per_container_mib_mem_available,
                );
            }
            peer_levels.push(at_n);
        }
        out.push(level);
    }
    let p50 = |d: &Density| d.time_to_running_with_all_running.stats.p50_ms;
    let ratio = match (out.first(), out.last()) {
        (Some(a), Some(b)) if out.len() > 1 => crate::stats::ratio(p50(b), p50(a)),
        _ => None,
    };
    Ok(crate::report::Scale {
        description: "the density measurement at each count of live containers; time to running \
                      is that of one more /bin/true container with all of them running"
            .into(),
        levels: out,
        ttr_p50_last_over_first: ratio,
        peers: peer_levels,
    })
}
