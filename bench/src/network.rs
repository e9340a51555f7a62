//! What a network costs at start: time to running with `--network bridge`
//! against `none` (interleaved, same daemon, same run), and `quilt run --rm
//! --network bridge default /bin/true` against the peers' `run` of a bundle
//! with a network namespace. quiltd must run in a network namespace the
//! benchmark made (its bridges and rules are made there, never in the
//! host's namespace).

use crate::client::{self, create_request};
use crate::events::Hub;
use crate::proc_timer::{argv, record, run};
use crate::report::NetworkCost;
use crate::stats::Samples;
use crate::ttr::start_one_with;
use anyhow::Result;
use quilt_proto::v1::NetworkMode;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WARMUP: usize = 3;

pub struct NetOpts {
    pub socket: PathBuf,
    pub quilt: PathBuf,
    pub n: usize,
    /// (name, binary, bundle of /bin/true with a network namespace).
    pub peers: Vec<(String, PathBuf, PathBuf)>,
    pub state_root: PathBuf,
    pub id_prefix: String,
}

pub async fn network(o: &NetOpts) -> Result<NetworkCost> {
    let mut c = client::connect(&o.socket).await?;
    let hub = Hub::start(&o.socket).await?;
    let mut none = Samples::default();
    let mut bridge = Samples::default();
    for i in 0..o.n + WARMUP {
        // Alternate which goes first, so neither always follows a removal.
        let order = if i % 2 == 0 {
            [NetworkMode::None, NetworkMode::Bridge]
        } else {
            [NetworkMode::Bridge, NetworkMode::None]
        };
        for mode in order {
            let mut req = create_request(&["/bin/true"], true, false);
            req.network = mode as i32;
            let s = start_one_with(&mut c, &hub, req).await;
            if i >= WARMUP {
                let samples = if mode == NetworkMode::Bridge {
                    &mut bridge
                } else {
                    &mut none
                };
                s.record(samples);
            }
            if !s.id.is_empty() {
                hub.wait(&s.id, &["removed", "failed"], Duration::from_secs(30))
                    .await;
                hub.forget(&s.id);
            }
        }
    }
    eprintln!("network: time to running none/bridge done");

    let sock = o.socket.display().to_string();
    let quilt = o.quilt.display().to_string();
    let mut run_bridge = Samples::default();
    let mut peer_runs: Vec<(String, Samples)> = o
        .peers
        .iter()
        .map(|(n, _, _)| (n.clone(), Samples::default()))
        .collect();
    for i in 0..o.n + WARMUP {
        let a = argv([
            quilt.as_str(),
            "--socket",
            &sock,
            "run",
            "--rm",
            "--network",
            "bridge",
            "default",
            "/bin/true",
        ]);
        let t = tokio::task::spawn_blocking(move || run(&a)).await?;
        if i >= WARMUP {
            record(&mut run_bridge, &t, "quilt run --rm --network bridge");
        }
        for (k, (name, bin, bundle)) in o.peers.iter().enumerate() {
            let id = format!("{}-{name}-net-{i}", o.id_prefix);
            let root = o.state_root.join(name);
            let a = argv([
                bin.display().to_string(),
                "--root".into(),
                root.display().to_string(),
                "run".into(),
                "--bundle".into(),
                bundle.display().to_string(),
                id.clone(),
            ]);
            let t = tokio::task::spawn_blocking(move || run(&a)).await?;
            if i >= WARMUP {
                record(&mut peer_runs[k].1, &t, &format!("{name} run"));
            }
            if !t.ok {
                let d = argv([
                    bin.display().to_string(),
                    "--root".into(),
                    root.display().to_string(),
                    "delete".into(),
                    "-f".into(),
                    id,
                ]);
                let _ = tokio::task::spawn_blocking(move || run(&d)).await;
            }
        }
    }
    eprintln!("network: run --network bridge against the peers done");
    let none = none.report();
    let bridge = bridge.report();
    let run_bridge = run_bridge.report();
    let peer_runs: Vec<(String, crate::stats::OpStats)> = peer_runs
        .into_iter()
        .map(|(n, s)| (n, s.report()))
        .collect();
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            (a / b * 100.0).round() / 100.0
        } else {
            0.0
        }
    };
    Ok(NetworkCost {
        description: format!(
            "{} starts each of /bin/true with --network none and bridge, interleaved \
             (create -> RUNNING event); then `quilt run --rm --network bridge default \
             /bin/true` against the peers' `run` of a bundle with a network namespace",
            o.n
        ),
        bridge_minus_none_p50_ms: ((bridge.stats.p50_ms - none.stats.p50_ms) * 1000.0).round()
            / 1000.0,
        run_bridge_vs_peer_p50: peer_runs
            .iter()
            .map(|(n, s)| (n.clone(), ratio(run_bridge.stats.p50_ms, s.stats.p50_ms)))
            .collect(),
        none,
        bridge,
        run_bridge,
        peer_run: peer_runs.into_iter().collect(),
    })
}

/// The path of a runtime's `true` bundle under the benchmark's bundles.
pub fn true_bundle(bundles: &Path, name: &str) -> PathBuf {
    bundles.join(format!("{name}-true"))
}
