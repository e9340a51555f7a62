//! The benchmark's JSON, typed. Each measurement fills one section and
//! writes it to DIR/<section>.json; `summary` merges those files into one
//! document (plus `targets`) and reads it back as a [`Report`], and so does
//! `chart`. Field names are the JSON keys that other tools read: renaming
//! one changes the file format.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::stats::OpStats;

/// The merged document: one optional section per measurement file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classic: Option<Classic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttr: Option<Ttr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seqrate: Option<Seqrate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Peers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<Density>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reap_gate: Option<ReapGate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseTimes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<Fairness>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkCost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<WarmPoolBench>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterBench>,
    /// Filled by `summary`.
    #[serde(default)]
    pub targets: Vec<TargetResult>,
}

impl Report {
    /// Reads a merged document section by section. A section that is
    /// missing, or is not that measurement's JSON (an unreadable file is
    /// merged as `{"error": ...}`), is None; it stays in the document as it
    /// was.
    pub fn from_document(v: &Value) -> Report {
        fn section<T: DeserializeOwned>(v: &Value, key: &str) -> Option<T> {
            serde_json::from_value(v.get(key)?.clone()).ok()
        }
        Report {
            meta: section(v, "meta"),
            classic: section(v, "classic"),
            api: section(v, "api"),
            ttr: section(v, "ttr"),
            seqrate: section(v, "seqrate"),
            peers: section(v, "peers"),
            throughput: section(v, "throughput"),
            density: section(v, "density"),
            reap_gate: section(v, "reap_gate"),
            pause: section(v, "pause"),
            fairness: section(v, "fairness"),
            network: section(v, "network"),
            scale: section(v, "scale"),
            pool: section(v, "pool"),
            cluster: section(v, "cluster"),
            targets: section(v, "targets").unwrap_or_default(),
        }
    }
}

/// meta.json, written by benchmark_sync_engine.sh (possibly `{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    /// "quick", "full" or "reap-gate N".
    pub mode: Option<String>,
    pub date: Option<String>,
    /// Cores, memory, kernel and CPU model.
    pub host: Option<String>,
    pub git_rev: Option<String>,
    pub quiltd_args: Option<String>,
    /// The peers left out and why; empty when none.
    pub peers_skipped: Option<String>,
    pub peers_private_mount_ns_without_cgroup2: Option<bool>,
}

/// `quilt-bench classic`: the historical CLI figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Classic {
    pub description: String,
    pub runs: usize,
    pub statuses_per_run: usize,
    pub cli_create: OpStats,
    pub cli_status: OpStats,
    pub per_run: Vec<ClassicRun>,
    pub historical: Historical,
    pub cleanup_errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassicRun {
    pub run: usize,
    pub create_ms: f64,
    pub create_ok: bool,
    pub status_avg_ms: f64,
    pub status_p50_ms: f64,
    pub status_errors: u64,
}

/// The figures the classic benchmark used to report, in ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Historical {
    pub create_ms: f64,
    pub status_ms: f64,
}

/// A figure left out of the document (older runs do not have it).
fn is_unmeasured(op: &OpStats) -> bool {
    *op == OpStats::default()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// `quilt-bench api`: server latency seen by an in-process client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Api {
    pub description: String,
    pub create_no_start: OpStats,
    pub create_start: OpStats,
    pub create_start_not_removed_within_30s: u64,
    pub get_container: OpStats,
    pub stored_containers: usize,
    pub list_containers: OpStats,
    pub listed: usize,
    pub remove_no_start: OpStats,
    pub remove_no_start_total_s: f64,
    /// ListContainers, summary view, every one of `stored_containers` in
    /// one call (page_size 0).
    #[serde(default, skip_serializing_if = "is_unmeasured")]
    pub list_all_summary: OpStats,
    /// Containers stored (no_start) for the page figures below.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub list_page_stored: usize,
    /// ListContainers pages of 100, walking through `list_page_stored`.
    #[serde(default, skip_serializing_if = "is_unmeasured")]
    pub list_page_summary: OpStats,
    #[serde(default, skip_serializing_if = "is_unmeasured")]
    pub list_page_full: OpStats,
    /// GetContainer with `list_page_stored` stored, for comparison.
    #[serde(default, skip_serializing_if = "is_unmeasured")]
    pub get_container_at_list_page_stored: OpStats,
}

/// `quilt-bench ttr`: time to running, exit to event, phases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ttr {
    pub description: String,
    pub create_ack: OpStats,
    pub time_to_running: OpStats,
    /// The same, each start after the host was left idle for a while (see
    /// `ttr::IDLE`): an agent's sporadic creates rather than a loop.
    #[serde(default, skip_serializing_if = "is_unmeasured")]
    pub time_to_running_after_idle: OpStats,
    pub exit_to_event: OpStats,
    pub exit_to_event_negative: u64,
    pub phases: Phases,
    pub attached: Attached,
    pub event_stream_resubscribes: u64,
}

/// Warm pools: adopted against cold, same daemon, same run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WarmPoolBench {
    pub description: String,
    pub size: u32,
    /// The daemon's own count over the adopting creates.
    pub hits: u64,
    pub misses: u64,
    pub hit: OpStats,
    /// Created without a start, then started (as `docker run`): from the
    /// create sent.
    #[serde(default)]
    pub hit_create_then_start: OpStats,
    pub cold: OpStats,
    pub ratio_hit_over_cold_p50: Option<f64>,
    /// From one create to the pool being full again.
    pub wait_for_full_pool: OpStats,
}

/// Nodes sharing PostgreSQL (`quilt-bench cluster`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterBench {
    pub description: String,
    pub nodes: Vec<String>,
    /// CreateContainer through the first node.
    pub create_ack: OpStats,
    /// GetContainer through the second node.
    pub status_other_node: OpStats,
    /// (node, containers) after the acknowledged creates.
    pub placed_per_node: Vec<(String, usize)>,
    pub starts: Vec<ClusterStarts>,
    /// Starts/s with every node over starts/s with one.
    pub starts_ratio_all_over_one: Option<f64>,
    pub store_writes: StoreWrites,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterStarts {
    pub nodes: usize,
    pub containers: usize,
    pub failed: usize,
    pub create_errors: usize,
    pub seconds: f64,
    pub per_s: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreWrites {
    pub description: String,
    pub postgres_p99_ms_per_node: Vec<Option<f64>>,
    pub sqlite_p99_ms: Option<f64>,
}

/// Per-phase times from the server's event timestamps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    pub description: String,
    pub queue: OpStats,
    pub launch: OpStats,
    pub notify: OpStats,
    pub workload: OpStats,
    pub remove: OpStats,
}

/// The path of `quilt run --rm`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attached {
    pub description: String,
    pub create_to_exit_item: OpStats,
    pub exited_event_to_exit_item: OpStats,
}

/// `quilt-bench seqrate`: sequential start rate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seqrate {
    pub description: String,
    pub n: usize,
    pub started: usize,
    pub total_s: f64,
    pub starts_per_s: f64,
    pub per_start: OpStats,
    pub not_removed_within_30s: u64,
    pub removal_drain_s: f64,
}

/// `quilt-bench pause`: pause and unpause of a running container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PauseTimes {
    pub description: String,
    pub pause: OpStats,
    pub unpause: OpStats,
}

/// `quilt-bench fairness`: an interactive client's time to running, idle
/// and while another client bursts batch creates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    pub description: String,
    pub idle: OpStats,
    pub under_burst: OpStats,
    /// under_burst p95 / idle p95.
    pub p95_ratio: f64,
    pub burst_accepted: u64,
    pub burst_refused: u64,
    /// Whether the burst was still being sent when the last probe ended
    /// (the probes then all ran under it).
    pub burst_still_running_at_end: bool,
}

/// A figure older documents do not have (kept out when absent).
fn unmeasured(o: &OpStats) -> bool {
    *o == OpStats::default()
}

/// `quilt-bench scale`: density at several counts of live containers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    pub description: String,
    pub levels: Vec<Density>,
    /// Time to running p50 at the last level over the first.
    pub ttr_p50_last_over_first: Option<f64>,
    /// The peers at the same counts, each level after Quilt's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerScaleLevel>,
}

/// A peer runtime at one scale level: `n` idle containers made with
/// `create` + `start`, measured as Quilt's level is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerScaleLevel {
    pub runtime: String,
    pub requested: usize,
    pub running: usize,
    pub start_all_s: f64,
    /// `create` + `start` of each idle container.
    pub create_start: OpStats,
    pub mem_available_delta_mib: f64,
    pub per_container_mib_mem_available: f64,
    /// `create` + `start` of one more /bin/true container with all of
    /// them running.
    pub create_start_one_more: OpStats,
    /// `state` of one of them.
    pub state: OpStats,
    /// `list` of them all.
    pub list: OpStats,
    /// `delete -f` of each.
    pub delete_all: OpStats,
    pub delete_all_s: f64,
    /// Successful `delete -f`s per second of the whole deletion.
    pub deleted_per_s: f64,
    /// Containers the runtime still listed after (None: `list` failed).
    pub left: Option<usize>,
    /// Quilt's time to running of one more at the same count over this
    /// peer's create + start of one more, p50.
    pub ttr_quilt_over_peer_p50: Option<f64>,
    /// Quilt's host memory per container at the same count over this
    /// peer's.
    pub memory_quilt_over_peer: Option<f64>,
}

/// `quilt-bench network`: what `--network bridge` adds at start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkCost {
    pub description: String,
    /// Time to running with `--network none`, and with `bridge`.
    pub none: OpStats,
    pub bridge: OpStats,
    pub bridge_minus_none_p50_ms: f64,
    /// `quilt run --rm --network bridge default /bin/true`, whole command.
    pub run_bridge: OpStats,
    /// The peers' `run` of a /bin/true bundle with a network namespace.
    pub peer_run: BTreeMap<String, OpStats>,
    /// run_bridge p50 / the peer's run p50.
    pub run_bridge_vs_peer_p50: BTreeMap<String, f64>,
}

/// `quilt-bench peers`: Quilt against crun and runc.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Peers {
    pub description: String,
    /// "quilt" then the peers measured.
    pub engines: Vec<String>,
    pub iterations: usize,
    pub state_iterations: usize,
    /// Peer -> the first line of its `--version`.
    pub versions: BTreeMap<String, String>,
    pub ops: PeerOps,
    /// Quilt's figure over each peer's, per operation, by peer.
    pub ratios_quilt_over_peer: PerOp<BTreeMap<String, Ratio>>,
    /// By peer.
    pub peer_sequential_rates: BTreeMap<String, PeerRates>,
    pub event_stream_resubscribes: u64,
}

/// The operations timed on every engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerOp<T> {
    pub run_true: T,
    pub create_start: T,
    pub state: T,
}

impl<T> PerOp<T> {
    /// (JSON key, operation) in report order.
    pub fn iter(&self) -> [(&'static str, &T); 3] {
        [
            ("run_true", &self.run_true),
            ("create_start", &self.create_start),
            ("state", &self.state),
        ]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerOps {
    #[serde(flatten)]
    pub timed: PerOp<PeerOp>,
    /// Peers only: `delete -f` after create+start, by peer.
    pub delete: BTreeMap<String, OpStats>,
}

/// One operation on every engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerOp {
    pub description: String,
    pub quilt_command: String,
    pub peer_command: String,
    /// By engine: "quilt", "crun", "runc".
    #[serde(flatten)]
    pub engines: BTreeMap<String, OpStats>,
}

/// Quilt over a peer (1.0 = as fast).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub p50: f64,
    pub p95: f64,
    pub avg: f64,
}

/// A peer's sequential rates from its average times (None: not finite).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerRates {
    pub create_start_per_s: Option<f64>,
    pub create_start_delete_per_s: Option<f64>,
}

/// `quilt-bench throughput`: concurrent creates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub description: String,
    pub seconds_per_level: f64,
    pub levels: Vec<Level>,
    pub event_stream_resubscribes: u64,
}

/// One client count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub clients: usize,
    pub window_s: f64,
    pub attempts: u64,
    pub creates_acked: usize,
    pub creates_per_s: f64,
    pub started_in_window: usize,
    pub started_per_s: f64,
    pub started_total: usize,
    /// None when no container started (or all at once).
    pub started_per_s_until_last: Option<f64>,
    pub failed: u64,
    pub resource_exhausted: u64,
    pub stalls: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub answers_by_code: BTreeMap<String, u64>,
    pub create_ack: OpStats,
    pub status_during_burst: OpStats,
    pub hung: usize,
    pub hung_examples: Vec<String>,
    pub leftover_after_drain: usize,
    pub drain_s: f64,
    /// Store writes committed during the window, and the share of it the
    /// (single) writer was held (GetInfo before and after): near 1, the
    /// writer is what bounds starts/s. Absent from a run that could not
    /// read them (another engine, an older quiltd, an older document).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub db_writes: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_writer_busy: Option<f64>,
}

/// `quilt-bench density`: many idle containers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Density {
    pub description: String,
    pub requested: usize,
    pub running: usize,
    pub start_s: f64,
    pub start_resource_exhausted_retries: u64,
    pub time_to_running_under_load: OpStats,
    /// One more container's time to running with all of them running.
    #[serde(default, skip_serializing_if = "unmeasured")]
    pub time_to_running_with_all_running: OpStats,
    pub quiltd_rss_mib_before: f64,
    pub quiltd_rss_mib: f64,
    pub quiltd_hwm_mib: f64,
    pub mem_available_delta_mib: f64,
    pub per_container_mib_mem_available: f64,
    pub mem_available_released_mib: f64,
    pub per_container_mib_mem_available_released: f64,
    /// None when the memory cgroup could not be read.
    pub cgroup_memory_mib: Option<f64>,
    pub per_container_mib_cgroup: Option<f64>,
    pub shims: usize,
    pub workload_pids: usize,
    pub shim_rss_mib_total: f64,
    pub workload_rss_mib_total: f64,
    pub per_container_mib_rss: f64,
    pub per_container_mib_pss: f64,
    pub get_container_all_running: OpStats,
    pub list_containers_all_running: OpStats,
    pub remove_all: OpStats,
    pub remove_all_s: f64,
    pub leftovers_at_once: Leftovers,
    pub leftovers: Leftovers,
    pub settle_s: f64,
    pub clean: bool,
}

/// `quilt-bench reap-gate`: many short-lived containers, pass or fail.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReapGate {
    pub description: String,
    pub requested: usize,
    pub concurrency: usize,
    pub timeout_s: f64,
    pub created: u64,
    pub running_events: u64,
    pub exited: u64,
    pub removed: u64,
    pub failed: u64,
    pub hangs: usize,
    pub hung_examples: Vec<String>,
    pub resource_exhausted_retries: u64,
    pub errors: OpStats,
    pub create_to_removed: OpStats,
    pub total_s: f64,
    pub containers_per_s: f64,
    pub zombies: usize,
    pub leftovers_at_once: Leftovers,
    pub leftovers: Leftovers,
    pub settle_s: f64,
    /// The host's unreclaimable kernel memory before the first create and
    /// after the last removal (None where /proc did not tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_memory: Option<KernelMemory>,
    pub pass: bool,
}

/// Unreclaimable kernel memory and memory cgroups, before a run and after
/// everything it made was removed: what removed containers leave behind
/// (dying memory cgroups and their per-cgroup structures among it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelMemory {
    pub description: String,
    /// SUnreclaim of /proc/meminfo, kB.
    pub sunreclaim_before_kb: u64,
    pub sunreclaim_after_kb: u64,
    /// After minus before, MB (10^6 bytes); negative when it shrank.
    pub sunreclaim_growth_mb: f64,
    /// The memory controller's num_cgroups in /proc/cgroups (dying ones
    /// included), where the host has the controller.
    pub memory_cgroups_before: Option<u32>,
    pub memory_cgroups_after: Option<u32>,
}

/// What is left of a daemon's containers (see `leftovers.rs`); also the
/// output of `quilt-bench leftovers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Leftovers {
    /// Rows the daemon still lists (None: not asked).
    pub rows: Option<usize>,
    /// Names of the entries of DATA/containers.
    pub container_dirs: Vec<String>,
    pub cgroup_dirs: Vec<String>,
    pub cgroup_pids: Vec<i32>,
    pub shim_pids: Vec<i32>,
    pub zombies: Vec<i32>,
    pub mounts: Vec<String>,
}

impl Leftovers {
    pub fn total(&self) -> usize {
        self.rows.unwrap_or(0)
            + self.container_dirs.len()
            + self.cgroup_dirs.len()
            + self.cgroup_pids.len()
            + self.shim_pids.len()
            + self.zombies.len()
            + self.mounts.len()
    }

    pub fn is_clean(&self) -> bool {
        self.total() == 0
    }
}

/// One checked target, as `summary` writes it under `targets`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    pub target: String,
    pub goal: f64,
    pub unit: String,
    pub at_least: bool,
    pub value: Option<f64>,
    /// "met", "missed" or "n/a".
    pub verdict: String,
    pub margin: String,
    pub note: String,
}

/// `x` if it is a finite number (JSON has no infinity: it would be null).
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}
