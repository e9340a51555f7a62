//! Quilt against OCI runtimes (crun, runc) on the same machine, same run and
//! same busybox rootfs. Iterations are interleaved (the order rotates) so
//! that noise on the shared machine hits every engine alike.

use crate::client::{self, code_name, with_timeout};
use crate::events::Hub;
use crate::proc_timer::{argv, first_line, record, run, run_detached};
use crate::report::{PeerOp, PeerOps, PeerRates, Peers, PerOp, Ratio, finite};
use crate::stats::Samples;
use crate::ttr::start_one;
use anyhow::{Context, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Untimed rounds before each operation.
const WARMUP: usize = 2;

pub struct PeerOpts {
    pub socket: PathBuf,
    pub quilt: PathBuf,
    /// name -> binary, e.g. crun -> /usr/bin/crun
    pub runtimes: Vec<(String, PathBuf)>,
    /// Holds <name>-true/ and <name>-sleep/ OCI bundles.
    pub bundles: PathBuf,
    /// State roots: <state_root>/<name>.
    pub state_root: PathBuf,
    pub iterations: usize,
    pub states: usize,
    pub id_prefix: String,
}

/// An OCI runtime as the benchmark calls it: its binary, its state root
/// (`<state_root>/<name>`) and a file for the stderr of detached commands.
pub(crate) struct Runtime {
    pub name: String,
    bin: String,
    root: String,
    pub errfile: PathBuf,
}

impl Runtime {
    pub(crate) fn new(name: &str, bin: &Path, state_root: &Path) -> Runtime {
        Runtime {
            name: name.to_string(),
            bin: bin.display().to_string(),
            root: state_root.join(name).display().to_string(),
            errfile: state_root.join(format!("{name}.stderr")),
        }
    }

    /// `bin --root ROOT rest...`
    pub(crate) fn cmd(&self, rest: &[&str]) -> Vec<String> {
        let mut v = argv([self.bin.as_str(), "--root", self.root.as_str()]);
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    }
    fn bundle(&self, o: &PeerOpts, kind: &str) -> String {
        o.bundles
            .join(format!("{}-{kind}", self.name))
            .display()
            .to_string()
    }
    /// Best effort: the container must not outlive the measurement.
    pub(crate) fn delete(&self, id: &str) -> crate::proc_timer::Timed {
        run_detached(&self.cmd(&["delete", "-f", id]), &self.errfile)
    }
}

#[derive(Default)]
struct Op {
    by_engine: BTreeMap<String, Samples>,
}

impl Op {
    fn get(&mut self, engine: &str) -> &mut Samples {
        self.by_engine.entry(engine.to_string()).or_default()
    }
}

pub async fn peers(o: &PeerOpts) -> Result<Peers> {
    std::fs::create_dir_all(&o.state_root).context("create the state root")?;
    let rts: Vec<Runtime> = o
        .runtimes
        .iter()
        .map(|(name, bin)| Runtime::new(name, bin, &o.state_root))
        .collect();
    let sock = o.socket.display().to_string();
    let quilt = o.quilt.display().to_string();
    let mut c = client::connect(&o.socket).await?;
    let hub = Hub::start(&o.socket).await?;

    let mut run_true = Op::default();
    let mut create_start = Op::default();
    let mut delete = Op::default();
    let mut state = Op::default();
    let mut seq = 0usize;
    let mut next_id = |rt: &str, what: &str| {
        seq += 1;
        format!("{}-{rt}-{what}-{seq}", o.id_prefix)
    };

    let engines: Vec<String> = std::iter::once("quilt".to_string())
        .chain(rts.iter().map(|r| r.name.clone()))
        .collect();
    let order = |i: usize| -> Vec<String> {
        let mut e = engines.clone();
        let k = i % e.len();
        e.rotate_left(k);
        e
    };

    // Untimed warm-up rounds first (page cache, first-use paths), like
    // hyperfine's --warmup; their samples go to `warm`.
    let mut warm = Op::default();

    // 1. run /bin/true to completion.
    for i in 0..o.iterations + WARMUP {
        let run_true = if i < WARMUP { &mut warm } else { &mut run_true };
        for e in order(i) {
            if e == "quilt" {
                let a = argv([
                    quilt.as_str(),
                    "--socket",
                    &sock,
                    "run",
                    "--rm",
                    "default",
                    "/bin/true",
                ]);
                let t = tokio::task::spawn_blocking(move || run(&a)).await?;
                record(
                    run_true.get("quilt"),
                    &t,
                    "quilt run --rm default /bin/true",
                );
            } else {
                let rt = rts.iter().find(|r| r.name == e).expect("runtime");
                let id = next_id(&rt.name, "run");
                let a = rt.cmd(&["run", "--bundle", &rt.bundle(o, "true"), &id]);
                let t = tokio::task::spawn_blocking(move || run(&a)).await?;
                record(run_true.get(&rt.name), &t, &format!("{} run", rt.name));
                if !t.ok {
                    rt.delete(&id);
                }
            }
        }
    }
    eprintln!("peers: run /bin/true done");

    // 2. create + start (the workload has been released to exec) against
    //    Quilt's time to running; then delete, timed on its own.
    for i in 0..o.iterations + WARMUP {
        let (create_start, delete) = if i < WARMUP {
            (&mut warm, &mut Op::default())
        } else {
            (&mut create_start, &mut delete)
        };
        for e in order(i) {
            if e == "quilt" {
                let s = start_one(&mut c, &hub, &["/bin/true"], true).await;
                s.record(create_start.get("quilt"));
                if !s.id.is_empty() {
                    hub.wait(&s.id, &["removed", "failed"], Duration::from_secs(30))
                        .await;
                    hub.forget(&s.id);
                }
            } else {
                let rt = rts.iter().find(|r| r.name == e).expect("runtime");
                let id = next_id(&rt.name, "cs");
                let create = rt.cmd(&["create", "--bundle", &rt.bundle(o, "true"), &id]);
                let start = rt.cmd(&["start", &id]);
                let errfile = rt.errfile.clone();
                let (tc, ts) = tokio::task::spawn_blocking(move || {
                    let tc = run_detached(&create, &errfile);
                    let ts = if tc.ok {
                        Some(run_detached(&start, &errfile))
                    } else {
                        None
                    };
                    (tc, ts)
                })
                .await?;
                let s = create_start.get(&rt.name);
                match ts {
                    Some(ts) if ts.ok => s.ok(tc.elapsed + ts.elapsed),
                    Some(ts) => s.err(
                        "exit",
                        format!("{} start: {}", rt.name, first_line(&ts.stderr)),
                    ),
                    None => s.err(
                        "exit",
                        format!("{} create: {}", rt.name, first_line(&tc.stderr)),
                    ),
                }
                let td = rt.delete(&id);
                record(delete.get(&rt.name), &td, &format!("{} delete -f", rt.name));
            }
        }
    }
    eprintln!("peers: create+start done");

    // 3. state of a running container vs `quilt status` of a running one.
    let mut quilt_id = String::new();
    let s = start_one(&mut c, &hub, &["sleep", "3600"], false).await;
    if s.running.is_some() {
        quilt_id = s.id.clone();
    } else if let Some((k, m)) = s.error {
        state.get("quilt").err(&k, m);
    }
    let mut peer_ids: BTreeMap<String, String> = BTreeMap::new();
    for rt in &rts {
        let id = next_id(&rt.name, "state");
        let tc = run_detached(
            &rt.cmd(&["create", "--bundle", &rt.bundle(o, "sleep"), &id]),
            &rt.errfile,
        );
        let ts = if tc.ok {
            run_detached(&rt.cmd(&["start", &id]), &rt.errfile)
        } else {
            tc
        };
        if ts.ok {
            peer_ids.insert(rt.name.clone(), id);
        } else {
            state.get(&rt.name).err(
                "exit",
                format!("{} create/start: {}", rt.name, first_line(&ts.stderr)),
            );
            rt.delete(&id);
        }
    }
    for i in 0..o.states + WARMUP {
        let state = if i < WARMUP { &mut warm } else { &mut state };
        for e in order(i) {
            if e == "quilt" {
                if quilt_id.is_empty() {
                    continue;
                }
                let a = argv([quilt.as_str(), "--socket", &sock, "status", &quilt_id]);
                let t = tokio::task::spawn_blocking(move || run(&a)).await?;
                record(state.get("quilt"), &t, "quilt status");
            } else if let Some(id) = peer_ids.get(&e) {
                let rt = rts.iter().find(|r| r.name == e).expect("runtime");
                let a = rt.cmd(&["state", id]);
                let t = tokio::task::spawn_blocking(move || run(&a)).await?;
                record(state.get(&e), &t, &format!("{e} state"));
            }
        }
    }
    for rt in &rts {
        if let Some(id) = peer_ids.get(&rt.name) {
            let t = rt.delete(id);
            if !t.ok {
                eprintln!(
                    "peers: {} delete -f {id}: {}",
                    rt.name,
                    first_line(&t.stderr)
                );
            }
        }
    }
    if !quilt_id.is_empty() {
        let r = with_timeout(
            Duration::from_secs(30),
            c.remove_container(quilt_proto::v1::RemoveContainerRequest {
                id: quilt_id.clone(),
                force: true,
            }),
        )
        .await;
        if let Err(st) = r {
            eprintln!(
                "peers: remove {quilt_id}: {} {}",
                code_name(st.code()),
                st.message()
            );
        }
    }
    hub.stop();
    eprintln!("peers: state/status done");

    // Results and Quilt/peer ratios.
    let op = |samples: &Op, description: &str, quilt_command: &str, peer_command: &str| PeerOp {
        description: description.into(),
        quilt_command: quilt_command.into(),
        peer_command: peer_command.into(),
        engines: samples
            .by_engine
            .iter()
            .map(|(e, s)| (e.clone(), s.report()))
            .collect(),
    };
    let timed = PerOp {
        run_true: op(
            &run_true,
            "run /bin/true to completion",
            "quilt run --rm default /bin/true",
            "RT run",
        ),
        create_start: op(
            &create_start,
            "create + start of /bin/true vs Quilt's time to running",
            "CreateContainer -> RUNNING event (API)",
            "RT create + RT start",
        ),
        state: op(
            &state,
            "state of a running container",
            "quilt status ID",
            "RT state ID",
        ),
    };
    let ratios_of = |op: &Op| -> BTreeMap<String, Ratio> {
        let mut r = BTreeMap::new();
        if let Some(qs) = op.by_engine.get("quilt").map(Samples::stats) {
            for rt in &rts {
                if let Some(ps) = op.by_engine.get(&rt.name).map(Samples::stats)
                    && ps.n > 0
                    && qs.n > 0
                {
                    r.insert(
                        rt.name.clone(),
                        Ratio {
                            p50: ratio(qs.p50_ms, ps.p50_ms),
                            p95: ratio(qs.p95_ms, ps.p95_ms),
                            avg: ratio(qs.avg_ms, ps.avg_ms),
                        },
                    );
                }
            }
        }
        r
    };
    let ratios = PerOp {
        run_true: ratios_of(&run_true),
        create_start: ratios_of(&create_start),
        state: ratios_of(&state),
    };
    let mut del = BTreeMap::new();
    let mut rates = BTreeMap::new();
    for rt in &rts {
        if let Some(s) = delete.by_engine.get(&rt.name) {
            del.insert(rt.name.clone(), s.report());
        }
        if let Some(s) = create_start.by_engine.get(&rt.name).map(Samples::stats)
            && s.n > 0
        {
            let total = s.avg_ms
                + delete
                    .by_engine
                    .get(&rt.name)
                    .map(|d| d.stats().avg_ms)
                    .unwrap_or(0.0);
            rates.insert(
                rt.name.clone(),
                PeerRates {
                    create_start_per_s: finite(round1(1000.0 / s.avg_ms)),
                    create_start_delete_per_s: finite(round1(1000.0 / total)),
                },
            );
        }
    }
    let mut by_key = ratios.iter();
    by_key.sort_by_key(|(key, _)| *key);
    for (key, r) in by_key {
        for (rt, v) in r {
            eprintln!("peers: {key}: quilt/{rt} p50 ratio {}", json!(v.p50));
        }
    }
    Ok(Peers {
        description: "interleaved iterations; times are spawn-to-exit of each process, except Quilt's time to running (in-process API)".into(),
        engines,
        iterations: o.iterations,
        state_iterations: o.states,
        versions: versions(&rts),
        ops: PeerOps { timed, delete: del },
        ratios_quilt_over_peer: ratios,
        peer_sequential_rates: rates,
        event_stream_resubscribes: hub.lost.load(std::sync::atomic::Ordering::SeqCst),
    })
}

fn ratio(a: f64, b: f64) -> f64 {
    if b <= 0.0 {
        0.0
    } else {
        (a / b * 100.0).round() / 100.0
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn versions(rts: &[Runtime]) -> BTreeMap<String, String> {
    rts.iter()
        .map(|rt| {
            let t = run(&argv([rt.bin.as_str(), "--version"]));
            (rt.name.clone(), first_line(&t.stdout))
        })
        .collect()
}
