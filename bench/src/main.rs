//! quilt-bench: the load generator behind benchmark_sync_engine.sh. Each
//! subcommand measures one thing through a real gRPC client on quiltd's Unix
//! socket (or by timing real processes) and writes one JSON object.

mod api;
mod chart;
mod classic;
mod client;
mod cluster;
mod density;
mod events;
mod fairness;
mod kmem;
mod leftovers;
mod listing;
mod network;
mod peer_scale;
mod peers;
mod pool;
mod proc_timer;
mod reap;
mod report;
mod stats;
mod summary;
mod targets;
mod throughput;
mod ttr;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use quilt_testkit::host;
use report::Leftovers;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "quilt-bench",
    about = "Load generator and report tool for the Quilt benchmark"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Args)]
struct Common {
    /// quiltd's Unix socket.
    #[arg(long)]
    socket: PathBuf,
    /// Write the JSON result here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct Host {
    /// quiltd's data dir.
    #[arg(long)]
    data_dir: PathBuf,
    /// quiltd's --cgroup-parent.
    #[arg(long)]
    cgroup_parent: String,
    /// quiltd's PID.
    #[arg(long)]
    quiltd_pid: i32,
}

/// Peer OCI runtimes measured beside Quilt (run from a namespace where
/// they work), and their bundles.
#[derive(Debug, Args)]
struct PeerArgs {
    #[arg(long)]
    crun: Option<PathBuf>,
    #[arg(long)]
    runc: Option<PathBuf>,
    /// Directory with <runtime>-true bundles (with a network namespace),
    /// and <runtime>-sleep ones for scale.
    #[arg(long)]
    bundles: Option<PathBuf>,
    /// State roots are created here (<dir>/<runtime>).
    #[arg(long)]
    state_root: Option<PathBuf>,
}

impl PeerArgs {
    /// (name, binary) of each peer given, crun first.
    fn runtimes(&self) -> Vec<(String, PathBuf)> {
        [("crun", &self.crun), ("runc", &self.runc)]
            .into_iter()
            .filter_map(|(name, bin)| Some((name.to_string(), bin.clone()?)))
            .collect()
    }
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Wait until quiltd answers grpc.health.v1 with SERVING.
    WaitReady {
        #[arg(long)]
        socket: PathBuf,
        /// Seconds.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        /// Give up at once if this process (quiltd) exits.
        #[arg(long)]
        pid: Option<i32>,
    },
    /// Wall time of `quilt create` and `quilt status` processes.
    Classic {
        #[command(flatten)]
        c: Common,
        /// The quilt CLI; by default the one next to quilt-bench.
        #[arg(long)]
        quilt: Option<PathBuf>,
        #[arg(long, default_value_t = 6)]
        runs: usize,
        #[arg(long, default_value_t = 100)]
        statuses: usize,
    },
    /// API latency: CreateContainer, GetContainer, ListContainers (whole
    /// lists and pages).
    Api {
        #[command(flatten)]
        c: Common,
        /// no_start containers stored for Get/List.
        #[arg(long, default_value_t = 1000)]
        containers: usize,
        #[arg(long, default_value_t = 5000)]
        gets: usize,
        #[arg(long, default_value_t = 50)]
        lists: usize,
        /// Creates of containers that start.
        #[arg(long, default_value_t = 100)]
        starts: usize,
        /// no_start containers stored for the ListContainers page figures
        /// (0: skip them).
        #[arg(long, default_value_t = 10000)]
        list_stored: usize,
        /// ListContainers pages of 100 timed per view.
        #[arg(long, default_value_t = 200)]
        pages: usize,
    },
    /// Time to running, exit-to-event latency and per-phase times.
    Ttr {
        #[command(flatten)]
        c: Common,
        #[arg(long, default_value_t = 200)]
        n: usize,
    },
    /// Warm pool: time to running adopted against cold.
    Pool {
        #[command(flatten)]
        c: Common,
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 4)]
        size: u32,
    },
    /// Nodes sharing PostgreSQL: create acknowledgement and status through
    /// different nodes, starts/s with 1..N nodes, store write p99s.
    Cluster {
        /// The nodes' sockets (two or more), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<PathBuf>,
        /// A single daemon on SQLite in the same run, for its write p99.
        #[arg(long)]
        sqlite_socket: Option<PathBuf>,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 200)]
        n: usize,
        #[arg(long, default_value_t = 300)]
        starts: usize,
    },
    /// Pause and unpause round trips on one running container.
    Pause {
        #[command(flatten)]
        c: Common,
        #[arg(long, default_value_t = 100)]
        n: usize,
    },
    /// The start queue's fairness: interactive time to running, idle and
    /// under another client's batch burst.
    Fairness {
        #[command(flatten)]
        c: Common,
        #[arg(long, default_value_t = 5000)]
        burst: usize,
        #[arg(long, default_value_t = 50)]
        probes: usize,
    },
    /// Sequential start rate.
    Seqrate {
        #[command(flatten)]
        c: Common,
        #[arg(long, default_value_t = 300)]
        n: usize,
    },
    /// Quilt against crun/runc (run from a namespace where they work).
    Peers {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        quilt: Option<PathBuf>,
        #[arg(long)]
        crun: Option<PathBuf>,
        #[arg(long)]
        runc: Option<PathBuf>,
        /// Directory with <runtime>-true and <runtime>-sleep bundles.
        #[arg(long)]
        bundles: PathBuf,
        /// State roots are created here (<dir>/<runtime>).
        #[arg(long)]
        state_root: PathBuf,
        #[arg(long, default_value_t = 100)]
        iterations: usize,
        #[arg(long, default_value_t = 100)]
        states: usize,
        /// Container ids are <prefix>-<runtime>-<op>-<n>.
        #[arg(long, default_value = "quilt-bench")]
        id_prefix: String,
    },
    /// What `--network bridge` adds at start: time to running against
    /// `none`, and `quilt run --network bridge` against the peers' `run`
    /// (quiltd must run in a network namespace made for the benchmark).
    Network {
        #[command(flatten)]
        c: Common,
        #[arg(long)]
        quilt: PathBuf,
        #[command(flatten)]
        peers: PeerArgs,
        #[arg(long, default_value_t = 50)]
        n: usize,
        #[arg(long, default_value = "quilt-bench")]
        id_prefix: String,
    },
    /// Concurrent create throughput at several client counts.
    Throughput {
        #[command(flatten)]
        c: Common,
        /// Comma-separated client counts.
        #[arg(long, default_value = "1,8,32,128", value_delimiter = ',')]
        clients: Vec<usize>,
        /// Seconds per level.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Seconds allowed for every container of a level to be gone.
        #[arg(long, default_value_t = 120.0)]
        drain_timeout: f64,
    },
    /// Many idle containers: memory, status latency, clean removal.
    Density {
        #[command(flatten)]
        c: Common,
        #[command(flatten)]
        h: Host,
        #[arg(long, default_value_t = 500)]
        n: usize,
        #[arg(long, default_value_t = 2000)]
        gets: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// The density measurement at several counts of live containers.
    Scale {
        #[command(flatten)]
        c: Common,
        #[command(flatten)]
        h: Host,
        /// Comma-separated counts of live containers.
        #[arg(long, default_value = "100,1000", value_delimiter = ',')]
        levels: Vec<usize>,
        #[arg(long, default_value_t = 1000)]
        gets: usize,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Starts timed at each level with all its containers running.
        #[arg(long, default_value_t = 20)]
        probes: usize,
        /// Peers measured at the same counts, each level after Quilt's.
        #[command(flatten)]
        peers: PeerArgs,
        /// `state` calls timed per peer level.
        #[arg(long, default_value_t = 100)]
        states: usize,
        /// Peer container ids are <prefix>-<runtime>-scale-<n>.
        #[arg(long, default_value = "quilt-bench")]
        id_prefix: String,
    },
    /// N short-lived containers: zero hangs, zombies and leftovers, or exit 1.
    ReapGate {
        #[command(flatten)]
        c: Common,
        #[command(flatten)]
        h: Host,
        #[arg(long, default_value_t = 10000)]
        n: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds for each container to be exited and removed.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Remove every container of the daemon through the API.
    Cleanup {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Report (and optionally kill) what is left of a daemon on the host.
    Leftovers {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        cgroup_parent: String,
        #[arg(long)]
        quiltd_pid: Option<i32>,
        /// SIGKILL leftover shims and processes in the cgroups.
        #[arg(long)]
        kill: bool,
        /// Exit 1 unless nothing is left.
        #[arg(long)]
        check: bool,
    },
    /// Draw the SVG chart from the final JSON.
    Chart {
        #[arg(long)]
        json: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Merge DIR/*.json into the final JSON; print the markdown summary.
    Summary {
        #[arg(long = "in")]
        input: PathBuf,
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write the markdown here.
        #[arg(long)]
        markdown: Option<PathBuf>,
    },
}

/// Writes `v` as pretty JSON (keys sorted, as in the merged document) to
/// `out`, or to stdout.
fn emit(out: &Option<PathBuf>, v: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(&serde_json::to_value(v)?)? + "\n";
    match out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("write {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .map(|p| p.with_file_name(name))
        .unwrap_or_else(|_| PathBuf::from(name))
}

async fn wait_ready(socket: &Path, timeout: f64, pid: Option<i32>) -> Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let t = Instant::now();
    let deadline = Duration::from_secs_f64(timeout);
    let mut last = String::from("not tried");
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(p) = pid
            && !host::pid_alive(p)
        {
            bail!("quiltd (pid {p}) exited before it was ready: {last}");
        }
        if socket.exists() {
            match client::channel(socket).await {
                Ok(ch) => match HealthClient::new(ch)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                {
                    Ok(r) if r.get_ref().status == ServingStatus::Serving as i32 => {
                        eprintln!(
                            "quiltd ready after {:.0} ms",
                            t.elapsed().as_secs_f64() * 1e3
                        );
                        return Ok(());
                    }
                    Ok(r) => last = format!("health status {}", r.get_ref().status),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = format!("{e:#}"),
            }
        } else {
            last = format!("{} does not exist yet", socket.display());
        }
        if t.elapsed() > deadline {
            bail!("quiltd not ready after {timeout} s: {last}");
        }
        // Back off gently while the daemon starts.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

fn leftovers(
    data_dir: &Path,
    parent: &str,
    quiltd: Option<i32>,
    kill: bool,
    check: bool,
) -> Result<()> {
    let mut l = Leftovers::scan(None, data_dir, parent, quiltd);
    if kill && (!l.shim_pids.is_empty() || !l.cgroup_pids.is_empty()) {
        host::kill_all(l.shim_pids.iter().chain(&l.cgroup_pids).copied());
        // Let the kernel finish the kills before scanning again.
        for _ in 0..100 {
            l = Leftovers::scan(None, data_dir, parent, quiltd);
            if l.shim_pids.is_empty() && l.cgroup_pids.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    emit(&None, &l)?;
    if check && !l.is_clean() {
        bail!("{} leftovers", l.total());
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .context("start the async runtime")?;
    rt.block_on(run(cli.cmd))
}

async fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::WaitReady {
            socket,
            timeout,
            pid,
        } => wait_ready(&socket, timeout, pid).await,
        Cmd::Classic {
            c,
            quilt,
            runs,
            statuses,
        } => {
            let quilt = quilt.unwrap_or_else(|| sibling("quilt"));
            emit(
                &c.out,
                &classic::classic(&c.socket, &quilt, runs, statuses).await?,
            )
        }
        Cmd::Api {
            c,
            containers,
            gets,
            lists,
            starts,
            list_stored,
            pages,
        } => {
            let o = api::ApiOpts {
                containers,
                gets,
                lists,
                starts,
                list_stored,
                pages,
            };
            emit(&c.out, &api::api(&c.socket, &o).await?)
        }
        Cmd::Ttr { c, n } => emit(&c.out, &ttr::ttr(&c.socket, n).await?),
        Cmd::Seqrate { c, n } => emit(&c.out, &ttr::seqrate(&c.socket, n).await?),
        Cmd::Network {
            c,
            quilt,
            peers: p,
            n,
            id_prefix,
        } => {
            let mut peers = Vec::new();
            if let (Some(b), Some(_)) = (&p.bundles, &p.state_root) {
                for (name, bin) in p.runtimes() {
                    let bundle = network::true_bundle(b, &name);
                    peers.push((name, bin, bundle));
                }
            }
            let o = network::NetOpts {
                socket: c.socket.clone(),
                quilt,
                n,
                peers,
                state_root: p.state_root.unwrap_or_default(),
                id_prefix,
            };
            emit(&c.out, &network::network(&o).await?)
        }
        Cmd::Pause { c, n } => emit(&c.out, &fairness::pause(&c.socket, n).await?),
        Cmd::Pool { c, n, size } => emit(&c.out, &pool::warm_pool(&c.socket, n, size).await?),
        Cmd::Cluster {
            nodes,
            sqlite_socket,
            out,
            n,
            starts,
        } => emit(
            &out,
            &cluster::cluster(&nodes, sqlite_socket.as_deref(), n, starts).await?,
        ),
        Cmd::Fairness { c, burst, probes } => {
            emit(&c.out, &fairness::fairness(&c.socket, burst, probes).await?)
        }
        Cmd::Peers {
            c,
            quilt,
            crun,
            runc,
            bundles,
            state_root,
            iterations,
            states,
            id_prefix,
        } => {
            let mut runtimes = Vec::new();
            if let Some(p) = crun {
                runtimes.push(("crun".to_string(), p));
            }
            if let Some(p) = runc {
                runtimes.push(("runc".to_string(), p));
            }
            let o = peers::PeerOpts {
                socket: c.socket.clone(),
                quilt: quilt.unwrap_or_else(|| sibling("quilt")),
                runtimes,
                bundles,
                state_root,
                iterations,
                states,
                id_prefix,
            };
            emit(&c.out, &peers::peers(&o).await?)
        }
        Cmd::Throughput {
            c,
            clients,
            seconds,
            drain_timeout,
        } => emit(
            &c.out,
            &throughput::throughput(&c.socket, &clients, seconds, drain_timeout).await?,
        ),
        Cmd::Scale {
            c,
            h,
            levels,
            gets,
            concurrency,
            probes,
            peers: p,
            states,
            id_prefix,
        } => {
            let runtimes = p.runtimes();
            let peers = match (runtimes.is_empty(), p.bundles, p.state_root) {
                (true, _, _) => None,
                (false, Some(bundles), Some(state_root)) => Some(peer_scale::PeerScaleOpts {
                    runtimes,
                    bundles,
                    state_root,
                    concurrency,
                    probes,
                    states,
                    id_prefix,
                }),
                (false, _, _) => bail!("--crun and --runc need --bundles and --state-root"),
            };
            let o = density::DensityOpts {
                socket: c.socket.clone(),
                n: 0,
                gets,
                concurrency,
                data_dir: h.data_dir,
                cgroup_parent: h.cgroup_parent,
                quiltd_pid: h.quiltd_pid,
                probes,
            };
            emit(&c.out, &density::scale(&o, &levels, peers.as_ref()).await?)
        }
        Cmd::Density {
            c,
            h,
            n,
            gets,
            concurrency,
        } => {
            let o = density::DensityOpts {
                socket: c.socket.clone(),
                n,
                gets,
                concurrency,
                data_dir: h.data_dir,
                cgroup_parent: h.cgroup_parent,
                quiltd_pid: h.quiltd_pid,
                probes: 20,
            };
            emit(&c.out, &density::density(&o).await?)
        }
        Cmd::ReapGate {
            c,
            h,
            n,
            concurrency,
            timeout,
        } => {
            let o = reap::ReapOpts {
                base: density::DensityOpts {
                    socket: c.socket.clone(),
                    n,
                    gets: 0,
                    concurrency,
                    data_dir: h.data_dir,
                    cgroup_parent: h.cgroup_parent,
                    quiltd_pid: h.quiltd_pid,
                    probes: 0,
                },
                concurrency,
                timeout: Duration::from_secs_f64(timeout),
            };
            let v = reap::reap_gate(&o).await?;
            emit(&c.out, &v)?;
            if !v.pass {
                bail!("reap gate failed");
            }
            Ok(())
        }
        Cmd::Cleanup { socket, timeout } => {
            let n = client::remove_everything(&socket, Duration::from_secs_f64(timeout)).await?;
            eprintln!("cleanup: removed {n} containers");
            Ok(())
        }
        Cmd::Leftovers {
            data_dir,
            cgroup_parent,
            quiltd_pid,
            kill,
            check,
        } => leftovers(&data_dir, &cgroup_parent, quiltd_pid, kill, check),
        Cmd::Chart { json, out } => chart::chart(&json, &out),
        Cmd::Summary {
            input,
            json,
            markdown,
        } => {
            let (v, md) = summary::summarize(&input)?;
            if let Some(p) = &json {
                emit(&Some(p.clone()), &v)?;
            }
            if let Some(p) = &markdown {
                std::fs::write(p, &md).with_context(|| format!("write {}", p.display()))?;
            }
            print!("{md}");
            Ok(())
        }
    }
}
