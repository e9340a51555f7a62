//! `stats` and `top`: resource usage read from a container's cgroup (CPU
//! percentage from the change of its CPU time over a sample), network
//! counters from its network namespace, and the processes in its cgroup.
//! Every read runs on the blocking pool; a stream is paced by a tokio
//! interval and ends when its client goes away.
use crate::engine::{Engine, Shared};
use crate::error::{EngineError, Result};
use crate::model::{Container, ContainerStats, ListFilter, Network, State, now_ns};
use quilt_runtime::cgroup;
use quilt_runtime::procinfo::{self, ProcessInfo};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The CPU sample of a one-shot `stats` when the request names none.
const SAMPLE_DEFAULT: Duration = Duration::from_millis(500);
const SAMPLE_MAX: Duration = Duration::from_secs(10);
/// Between two messages of a stream.
const INTERVAL_DEFAULT: Duration = Duration::from_millis(1000);
const INTERVAL_MIN: Duration = Duration::from_millis(100);
const INTERVAL_MAX: Duration = Duration::from_secs(60);
/// Containers one request may name.
const MAX_IDS: usize = 1000;

/// The samples of a `StreamStats`, one batch per interval.
pub type StatsStream = mpsc::Receiver<Result<Vec<ContainerStats>>>;

/// Which containers a request is about.
#[derive(Debug, Clone)]
enum Selection {
    /// These, resolved once (a removed one is reported removed).
    Named(Vec<Container>),
    /// Those running or paused at each sample (with `all`, every one).
    Live { all: bool },
}

/// One reading of a container: its row and its raw counters.
struct Reading {
    c: Container,
    at: Instant,
    usage: cgroup::Usage,
    net: Option<(u64, u64)>,
}

impl Engine {
    /// One sample of each container: counters now, CPU over `sample_ms`
    /// (0: 500 ms).
    pub async fn stats(
        &self,
        ids: &[String],
        all: bool,
        sample_ms: u32,
    ) -> Result<Vec<ContainerStats>> {
        let sample = match sample_ms {
            0 => SAMPLE_DEFAULT,
            ms => Duration::from_millis(ms.into()),
        };
        if sample > SAMPLE_MAX {
            return Err(EngineError::InvalidArgument(format!(
                "sample_ms {sample_ms} is too long (at most {} ms)",
                SAMPLE_MAX.as_millis()
            )));
        }
        let sel = select(&self.shared, ids, all).await?;
        let first = read_all(&self.shared, &sel).await?;
        tokio::time::sleep(sample).await;
        let now = read_all(&self.shared, &sel).await?;
        let host_mem = host_memory().await;
        let before: HashMap<&str, &Reading> = first.iter().map(|r| (r.c.id.as_str(), r)).collect();
        Ok(now
            .iter()
            .map(|r| figures(r, before.get(r.c.id.as_str()).copied(), host_mem))
            .collect())
    }

    /// A sample of each container every `interval_ms` (0: 1000 ms), until
    /// the receiver is dropped.
    pub async fn stats_stream(
        &self,
        ids: &[String],
        all: bool,
        interval_ms: u32,
    ) -> Result<StatsStream> {
        let interval = match interval_ms {
            0 => INTERVAL_DEFAULT,
            ms => Duration::from_millis(ms.into()),
        };
        if !(INTERVAL_MIN..=INTERVAL_MAX).contains(&interval) {
            return Err(EngineError::InvalidArgument(format!(
                "interval_ms {interval_ms} is out of range ({} to {})",
                INTERVAL_MIN.as_millis(),
                INTERVAL_MAX.as_millis()
            )));
        }
        let sel = select(&self.shared, ids, all).await?;
        let shared = self.shared.clone();
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            let host_mem = host_memory().await;
            let mut prev: HashMap<String, Reading> = HashMap::new();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first reading only gives the CPU a starting point.
            let mut first = true;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tx.closed() => return,
                }
                let batch = match read_all(&shared, &sel).await {
                    Ok(now) => {
                        let out = now
                            .iter()
                            .map(|r| figures(r, prev.get(&r.c.id), host_mem))
                            .collect();
                        prev = now.into_iter().map(|r| (r.c.id.clone(), r)).collect();
                        out
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                if std::mem::take(&mut first) {
                    continue;
                }
                if tx.send(Ok(batch)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    /// The processes in a running or paused container's cgroup, by host pid.
    pub async fn top(&self, reference: &str) -> Result<Vec<ProcessInfo>> {
        let c = self.shared.resolve_here(reference).await?;
        if !has_workload(c.state) {
            return Err(EngineError::FailedPrecondition(format!(
                "container {} is not running (state: {})",
                c.name,
                c.state.as_str()
            )));
        }
        let spec = self.shared.cgroup_spec(&c);
        tokio::task::spawn_blocking(move || -> Result<Vec<ProcessInfo>> {
            let pids = cgroup::members(&spec).map_err(|e| EngineError::internal("top", e))?;
            // A process that left between the listing and the read is skipped.
            Ok(pids.into_iter().filter_map(procinfo::process).collect())
        })
        .await?
    }
}

/// Running or paused: there is a cgroup with processes to read.
fn has_workload(s: State) -> bool {
    s == State::Running || s.is_paused()
}

async fn select(shared: &Arc<Shared>, ids: &[String], all: bool) -> Result<Selection> {
    if ids.is_empty() {
        return Ok(Selection::Live { all });
    }
    if ids.len() > MAX_IDS {
        return Err(EngineError::InvalidArgument(format!(
            "too many containers in one request (at most {MAX_IDS})"
        )));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(shared.resolve_here(id).await?);
    }
    Ok(Selection::Named(out))
}

/// Reads every selected container (rows again, then counters).
async fn read_all(shared: &Arc<Shared>, sel: &Selection) -> Result<Vec<Reading>> {
    let rows = match sel {
        Selection::Named(named) => {
            let mut rows = Vec::with_capacity(named.len());
            for c in named {
                // Removed meanwhile: reported with its last row, as removed.
                rows.push(
                    shared
                        .store()
                        .get(&c.id)
                        .await?
                        .unwrap_or_else(|| Container {
                            state: State::Removing,
                            ..c.clone()
                        }),
                );
            }
            rows
        }
        Selection::Live { all } => {
            let states = if *all {
                Vec::new()
            } else {
                vec![State::Running, State::Paused]
            };
            shared
                .store()
                .list(&ListFilter {
                    states,
                    node: shared.node().map(str::to_owned),
                    ..Default::default()
                })
                .await?
        }
    };
    let specs: Vec<_> = rows.iter().map(|c| shared.cgroup_spec(c)).collect();
    tokio::task::spawn_blocking(move || {
        rows.into_iter()
            .zip(specs)
            .map(|(c, spec)| {
                let live = has_workload(c.state);
                let usage = if live {
                    cgroup::usage(&spec).unwrap_or_default()
                } else {
                    cgroup::Usage::default()
                };
                let net = match (live, c.network, c.pid) {
                    (true, Network::None, Some(pid)) => procinfo::net_bytes(pid),
                    _ => None,
                };
                Reading {
                    at: Instant::now(),
                    c,
                    usage,
                    net,
                }
            })
            .collect()
    })
    .await
    .map_err(EngineError::from)
}

/// The figures of a reading; the CPU percentage from the previous reading
/// of the same container (0 without one).
fn figures(r: &Reading, prev: Option<&Reading>, host_mem: u64) -> ContainerStats {
    let u = &r.usage;
    let cpu_ns = u.cpu_ns.unwrap_or(0);
    let cpu_percent = match prev {
        Some(p) if r.at > p.at => {
            let used = cpu_ns.saturating_sub(p.usage.cpu_ns.unwrap_or(0)) as f64;
            used / (r.at - p.at).as_nanos() as f64 * 100.0
        }
        _ => 0.0,
    };
    let memory_bytes = u.memory_bytes.unwrap_or(0);
    let memory_limit = u.memory_limit.unwrap_or(host_mem);
    ContainerStats {
        id: r.c.id.clone(),
        name: r.c.name.clone(),
        state: Some(r.c.state),
        time_ns: now_ns(),
        cpu_percent,
        cpu_ns,
        memory_bytes,
        memory_limit,
        memory_percent: if memory_limit > 0 {
            memory_bytes as f64 / memory_limit as f64 * 100.0
        } else {
            0.0
        },
        pids: u.pids.unwrap_or(0),
        pids_limit: u.pids_limit.unwrap_or(0),
        block_read: u.block_read.unwrap_or(0),
        block_write: u.block_write.unwrap_or(0),
        net: r.net,
    }
}

/// The host's memory (MemTotal), 0 when unknown.
async fn host_memory() -> u64 {
    tokio::fs::read_to_string("/proc/meminfo")
        .await
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib.saturating_mul(1024))
}
