//! What quiltd counts and times, in one place, exported as Prometheus text
//! (`quiltd --metrics-listen`) and summarised by `quilt system info`.
//!
//! Label cardinality is bounded: states, outcomes, rejection reasons and
//! phases are fixed sets, RPC methods are those the server knows (an
//! unknown path is counted as "unknown"), and nothing is per container.
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Counts a hit or a miss in `family` (label `outcome`).
fn count_outcome(family: &Family<Labels, Counter>, hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    family.get_or_create(&labels(&[("outcome", outcome)])).inc();
}

/// Latency buckets from 50 us to about 100 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.0, 22))
}

/// Recent samples of one latency, for percentiles without a scrape.
#[derive(Debug, Default)]
struct Recent {
    samples: Mutex<VecDeque<f64>>,
}

/// How many samples `Recent` keeps.
const RECENT: usize = 2048;

impl Recent {
    fn push(&self, v: f64) {
        let mut s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() == RECENT {
            s.pop_front();
        }
        s.push_back(v);
    }

    /// p50, p95, p99 of the recent samples (None without any).
    fn percentiles(&self) -> Option<[f64; 3]> {
        let mut v: Vec<f64> = self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some([at(0.50), at(0.95), at(0.99)])
    }
}

/// Headline figures for `quilt system info` (seconds for latencies).
#[derive(Debug, Clone, Default)]
pub struct Headline {
    pub queue_depth: u64,
    pub queue_capacity: u64,
    pub starts_in_flight: u64,
    pub start_slots: u64,
    /// Time to running (queue wait + launch), p50/p95/p99.
    pub time_to_running: Option<[f64; 3]>,
    /// SQLite write transactions, p50/p95/p99.
    pub db_write: Option<[f64; 3]>,
    /// Writes committed since start-up, and the time the writer was held
    /// for them (seconds): over an interval, the writer's utilisation.
    pub db_writes: u64,
    pub db_write_busy_s: f64,
    pub rejections: u64,
    pub starts: u64,
    pub start_failures: u64,
}

/// Every metric quiltd exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    containers: Family<Labels, Gauge>,
    starts: Family<Labels, Counter>,
    exits: Counter,
    oom_kills: Counter,
    rejections: Family<Labels, Counter>,
    rpc: Family<Labels, Histogram>,
    start_phases: Family<Labels, Histogram>,
    db_write: Histogram,
    queue_depth: Gauge,
    queue_capacity: Gauge,
    queue_arrivals: Counter,
    queue_completions: Counter,
    starts_in_flight: Gauge,
    start_slots: Gauge,
    utilization: Gauge<f64, AtomicU64>,
    pool_ready: Gauge,
    pool_claims: Family<Labels, Counter>,
    layers_ready: Gauge,
    layer_takes: Family<Labels, Counter>,
    recent_ttr: Recent,
    recent_db: Recent,
    /// Writes and the writer's busy time (ns) since start-up: the same as
    /// `db_write`'s count and sum, which prometheus-client reads back only
    /// with its test-util feature.
    db_writes: std::sync::atomic::AtomicU64,
    db_busy_ns: std::sync::atomic::AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("quilt");
        let containers = Family::<Labels, Gauge>::default();
        registry.register("containers", "Containers by state", containers.clone());
        let starts = Family::<Labels, Counter>::default();
        registry.register(
            "starts",
            "Container starts by outcome (ok, failed)",
            starts.clone(),
        );
        let exits = Counter::default();
        registry.register("exits", "Containers that exited", exits.clone());
        let oom_kills = Counter::default();
        registry.register(
            "oom_kills",
            "Containers whose workload the OOM killer ended",
            oom_kills.clone(),
        );
        let rejections = Family::<Labels, Counter>::default();
        registry.register(
            "rejections",
            "Requests refused for lack of room, by reason",
            rejections.clone(),
        );
        let rpc = Family::<Labels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "rpc_duration_seconds",
            "gRPC handling time until the response headers, by method and code",
            rpc.clone(),
        );
        let start_phases =
            Family::<Labels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        registry.register(
            "start_duration_seconds",
            "Time to running by phase: queue (waiting for the starter), launch (the starter's work), total",
            start_phases.clone(),
        );
        let db_write = latency();
        registry.register(
            "db_write_duration_seconds",
            "SQLite write transactions, from holding the writer to commit",
            db_write.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "start_queue_depth",
            "Starts waiting in the queue",
            queue_depth.clone(),
        );
        let queue_capacity = Gauge::default();
        registry.register(
            "start_queue_capacity",
            "Room in the start queue (K)",
            queue_capacity.clone(),
        );
        let queue_arrivals = Counter::default();
        registry.register(
            "start_queue_arrivals",
            "Starts accepted into the queue (lambda: its rate)",
            queue_arrivals.clone(),
        );
        let queue_completions = Counter::default();
        registry.register(
            "start_queue_completions",
            "Starts the starter finished, either way (mu: its rate per slot)",
            queue_completions.clone(),
        );
        let starts_in_flight = Gauge::default();
        registry.register(
            "starts_in_flight",
            "Starts being worked on now",
            starts_in_flight.clone(),
        );
        let start_slots = Gauge::default();
        registry.register(
            "start_slots",
            "Starts that may run at once (c)",
            start_slots.clone(),
        );
        let utilization = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "start_utilization",
            "Starter utilization rho: starts in flight over slots, at scrape time",
            utilization.clone(),
        );
        let pool_ready = Gauge::default();
        registry.register(
            "warm_pool_ready",
            "Containers of the warm pools prepared and waiting, at scrape time",
            pool_ready.clone(),
        );
        let pool_claims = Family::<Labels, Counter>::default();
        registry.register(
            "warm_pool_claims",
            "Creates of a warm pool's shape: hit (took a prepared container) or miss",
            pool_claims.clone(),
        );
        let layers_ready = Gauge::default();
        registry.register(
            "layer_pool_ready",
            "Writable layers made ahead for cold starts and waiting, at scrape time",
            layers_ready.clone(),
        );
        let layer_takes = Family::<Labels, Counter>::default();
        registry.register(
            "layer_pool_takes",
            "First starts that took a layer made ahead (hit) or mounted their own (miss)",
            layer_takes.clone(),
        );
        Metrics {
            registry,
            pool_ready,
            pool_claims,
            layers_ready,
            layer_takes,
            containers,
            starts,
            exits,
            oom_kills,
            rejections,
            rpc,
            start_phases,
            db_write,
            queue_depth,
            queue_capacity,
            queue_arrivals,
            queue_completions,
            starts_in_flight,
            start_slots,
            utilization,
            recent_ttr: Recent::default(),
            recent_db: Recent::default(),
            db_writes: Default::default(),
            db_busy_ns: Default::default(),
        }
    }

    /// Time the writer was held for no write of its own (a group's BEGIN
    /// and COMMIT): busy, but not a write.
    pub(crate) fn observe_db_busy(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.db_busy_ns
            .fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    }

    /// One SQLite write transaction, from holding the writer to its end.
    pub(crate) fn observe_db_write(&self, d: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.db_write.observe(d.as_secs_f64());
        self.recent_db.push(d.as_secs_f64());
        self.db_writes.fetch_add(1, Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.db_busy_ns.fetch_add(ns, Relaxed);
    }

    /// A start ended: `queued` is its wait in the start queue, None for a
    /// start that took no turn there (a claimed container's, see
    /// `starter::claimed_start`, or one that passed the queue, see
    /// `starter::direct_start`): it counts in neither the queue's
    /// completions nor its wait.
    pub(crate) fn start_finished(&self, ok: bool, queued: Option<Duration>, launch: Duration) {
        let outcome = if ok { "ok" } else { "failed" };
        self.starts
            .get_or_create(&labels(&[("outcome", outcome)]))
            .inc();
        if let Some(queued) = queued {
            self.queue_completions.inc();
            self.start_phases
                .get_or_create(&labels(&[("phase", "queue")]))
                .observe(queued.as_secs_f64());
        }
        let total = queued.unwrap_or_default() + launch;
        for (phase, d) in [("launch", launch), ("total", total)] {
            self.start_phases
                .get_or_create(&labels(&[("phase", phase)]))
                .observe(d.as_secs_f64());
        }
        if ok {
            self.recent_ttr.push(total.as_secs_f64());
        }
    }

    /// A create of a warm pool's shape took a prepared container (or none).
    pub(crate) fn pool_claim(&self, hit: bool) {
        count_outcome(&self.pool_claims, hit);
    }

    pub(crate) fn set_pool_ready(&self, n: usize) {
        self.pool_ready.set(n as i64);
    }

    /// A first start took a writable layer made ahead (or mounted its own).
    pub(crate) fn layer_take(&self, hit: bool) {
        count_outcome(&self.layer_takes, hit);
    }

    pub(crate) fn set_layers_ready(&self, n: usize) {
        self.layers_ready.set(n as i64);
    }

    pub(crate) fn queued(&self) {
        self.queue_arrivals.inc();
    }

    pub(crate) fn rejected(&self, reason: &str) {
        self.rejections
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    pub(crate) fn exited(&self, oom: bool) {
        self.exits.inc();
        if oom {
            self.oom_kills.inc();
        }
    }

    /// One handled RPC (`method` already reduced to a known name).
    pub fn observe_rpc(&self, method: &str, code: &str, d: Duration) {
        self.rpc
            .get_or_create(&labels(&[("method", method), ("code", code)]))
            .observe(d.as_secs_f64());
    }

    /// Sets the gauges read at scrape time.
    pub(crate) fn set_levels(
        &self,
        by_state: &[(&str, usize)],
        queue: (usize, usize),
        starts: (usize, usize),
    ) {
        for (state, n) in by_state {
            self.containers
                .get_or_create(&labels(&[("state", state)]))
                .set(*n as i64);
        }
        self.queue_depth.set(queue.0 as i64);
        self.queue_capacity.set(queue.1 as i64);
        self.starts_in_flight.set(starts.0 as i64);
        self.start_slots.set(starts.1 as i64);
        self.utilization
            .set(starts.0 as f64 / starts.1.max(1) as f64);
    }

    /// The registry as Prometheus text.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub(crate) fn headline(&self) -> Headline {
        let sum = |f: &Family<Labels, Counter>, key: Option<(&str, &str)>| -> u64 {
            match key {
                Some(kv) => f.get_or_create(&labels(&[kv])).get(),
                None => ["queue_full", "shutting_down", "disk_full"]
                    .iter()
                    .map(|r| f.get_or_create(&labels(&[("reason", r)])).get())
                    .sum(),
            }
        };
        Headline {
            queue_depth: self.queue_depth.get().max(0) as u64,
            queue_capacity: self.queue_capacity.get().max(0) as u64,
            starts_in_flight: self.starts_in_flight.get().max(0) as u64,
            start_slots: self.start_slots.get().max(0) as u64,
            time_to_running: self.recent_ttr.percentiles(),
            db_write: self.recent_db.percentiles(),
            db_writes: self.db_writes.load(std::sync::atomic::Ordering::Relaxed),
            db_write_busy_s: self.db_busy_ns.load(std::sync::atomic::Ordering::Relaxed) as f64
                / 1e9,
            rejections: sum(&self.rejections, None),
            starts: sum(&self.starts, Some(("outcome", "ok"))),
            start_failures: sum(&self.starts, Some(("outcome", "failed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_has_the_families_and_percentiles_are_ordered() {
        let m = Metrics::new();
        m.queued();
        m.start_finished(
            true,
            Some(Duration::from_millis(1)),
            Duration::from_millis(3),
        );
        m.rejected("queue_full");
        m.exited(true);
        m.observe_rpc(
            "/quilt.v1.ContainerService/GetContainer",
            "0",
            Duration::from_micros(200),
        );
        m.set_levels(&[("running", 2)], (3, 256), (1, 4));
        let text = m.encode();
        for want in [
            "quilt_containers{state=\"running\"} 2",
            "quilt_starts_total{outcome=\"ok\"} 1",
            "quilt_oom_kills_total 1",
            "quilt_rejections_total{reason=\"queue_full\"} 1",
            "quilt_start_queue_depth 3",
            "quilt_start_utilization 0.25",
            "quilt_start_duration_seconds_count{phase=\"total\"} 1",
            "quilt_rpc_duration_seconds_count{method=\"/quilt.v1.ContainerService/GetContainer\",code=\"0\"} 1",
        ] {
            assert!(text.contains(want), "{want} missing in\n{text}");
        }
        let h = m.headline();
        assert_eq!((h.starts, h.rejections, h.queue_depth), (1, 1, 3));
        let [p50, p95, p99] = h.time_to_running.unwrap();
        assert!(p50 <= p95 && p95 <= p99 && (p50 - 0.004).abs() < 1e-9);
    }
}
