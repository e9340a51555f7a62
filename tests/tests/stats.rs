//! `stats` and `top`: figures read from the container's cgroup against a
//! workload whose CPU, memory and process count are known.

use std::time::Duration;

use quilt_tests::api::{ContainerState, GetStatsRequest, StreamStatsRequest, TopContainerRequest};
use quilt_tests::{Daemon, RPC_TIMEOUT, within};
use tonic::Code;

/// One busy shell loop (held to half a CPU by --cpus 0.5), two sleeps (3
/// pids in all) and 20 MiB written to a tmpfs (charged to the cgroup as
/// memory).
const BUSY: &[&str] = &[
    "sh",
    "-c",
    "dd if=/dev/zero of=/scratch/fill bs=1M count=20 2>/dev/null; \
     sleep 1000 & sleep 1001 & while :; do :; done",
];

fn run_busy(d: &Daemon, name: &str) -> String {
    let mut args = vec![
        "--name", name, "--memory", "64", "--cpus", "0.5", "--tmpfs", "/scratch", "default",
    ];
    args.extend_from_slice(BUSY);
    let id = d.run_detached(&args);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    id
}

#[test]
fn stats_report_cpu_memory_and_pids_of_a_busy_container() {
    let d = Daemon::start();
    let id = run_busy(&d, "busy");
    // Let the fill and the two sleeps happen. The CPU figure is sampled
    // over 2 s: CFS hands the quota out per 100 ms period, so a window not
    // aligned with the periods may hold one more slice of it, at most 2.5%
    // more over 2 s (up to 10% over the default 0.5 s).
    let settled = quilt_tests::retry(Duration::from_secs(30), || {
        let out = d.cli([
            "stats",
            "--no-stream",
            "--interval",
            "2000",
            "--format",
            "json",
            "busy",
        ]);
        let v: serde_json::Value = serde_json::from_str(out.ok().trim()).expect("one JSON object");
        (v["pids"] == 3 && v["memory_usage_bytes"].as_u64().unwrap_or(0) >= 20 << 20).then_some(v)
    });
    let v = settled.unwrap_or_else(|| panic!("pids and memory never settled\n{}", d.log_tail(20)));
    assert_eq!(v["id"], id.as_str(), "{v}");
    assert_eq!(v["name"], "busy", "{v}");
    assert_eq!(v["state"], "running", "{v}");
    assert_eq!(v["memory_limit_bytes"], 64u64 << 20, "{v}");
    let mem = v["memory_usage_bytes"].as_u64().unwrap();
    assert!(mem < 64 << 20, "{v}");
    let pct = v["memory_percent"].as_f64().unwrap();
    assert!(
        (pct - mem as f64 / (64u64 << 20) as f64 * 100.0).abs() < 0.01,
        "{v}"
    );
    // A busy loop held to half a CPU: never more than 50% (a little slack
    // for the edges of the sample); the host may be shared, so the floor is
    // low.
    let cpu = v["cpu_percent"].as_f64().unwrap();
    assert!((5.0..=56.0).contains(&cpu), "cpu {cpu}: {v}");
    assert!(v["cpu_usage_ns"].as_u64().unwrap() > 0, "{v}");
    // A private network namespace with loopback only: zero bytes counted.
    assert_eq!(v["network_rx_bytes"], 0, "{v}");
    assert_eq!(v["network_tx_bytes"], 0, "{v}");

    // The table form names the columns and the container.
    let table = d.cli(["stats", "--no-stream"]).ok();
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS"] {
        assert!(header.contains(col), "{table}");
    }
    let row = lines
        .find(|l| l.contains("busy"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("/ 64MiB"), "{row}");

    d.cli(["rm", "-f", "busy"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn stream_stats_sends_a_sample_every_interval() {
    let d = Daemon::start();
    let id = run_busy(&d, "streamed");
    let idle = d.run_detached(&["--name", "idle", "default", "sleep", "1000"]);
    d.wait_state(&idle, &[ContainerState::Running], Duration::from_secs(30));
    d.block_on(async {
        let mut c = d.client().await;
        let mut s = within(
            RPC_TIMEOUT,
            "StreamStats",
            c.stream_stats(StreamStatsRequest {
                ids: vec![],
                all: false,
                interval_ms: 200,
            }),
        )
        .await
        .expect("StreamStats")
        .into_inner();
        let mut last_cpu = 0;
        let t0 = std::time::Instant::now();
        for _ in 0..4 {
            let batch = within(Duration::from_secs(5), "a sample", s.message())
                .await
                .expect("sample")
                .expect("stream ended");
            assert_eq!(batch.stats.len(), 2, "{batch:?}");
            let busy = batch.stats.iter().find(|x| x.id == id).expect("busy one");
            let quiet = batch.stats.iter().find(|x| x.id == idle).expect("idle one");
            assert!(busy.cpu_usage_ns > last_cpu, "{busy:?}");
            last_cpu = busy.cpu_usage_ns;
            assert!(quiet.cpu_percent < 5.0, "{quiet:?}");
            assert_eq!(quiet.pids_current, 1, "{quiet:?}");
        }
        // Four samples after a first reading: about a second, not faster.
        assert!(
            t0.elapsed() >= Duration::from_millis(700),
            "{:?}",
            t0.elapsed()
        );
        drop(s);

        // Bad input: a clear status.
        let err = c
            .stream_stats(StreamStatsRequest {
                ids: vec![],
                all: false,
                interval_ms: 5,
            })
            .await
            .expect_err("interval too short");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let err = c
            .get_stats(GetStatsRequest {
                ids: vec!["nosuch".into()],
                ..Default::default()
            })
            .await
            .expect_err("unknown container");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        let err = c
            .get_stats(GetStatsRequest {
                sample_ms: 60_000,
                ..Default::default()
            })
            .await
            .expect_err("sample too long");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    });
    // A stopped container reports zeros (and is listed with -a only).
    d.cli(["stop", "-t", "0", "idle"]).expect_code(0);
    let out = d
        .cli(["stats", "--no-stream", "--format", "json", "-a"])
        .ok();
    let idle_line = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["name"] == "idle")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(idle_line["state"], "exited", "{idle_line}");
    assert_eq!(idle_line["pids"], 0, "{idle_line}");
    assert_eq!(idle_line["cpu_percent"], 0.0, "{idle_line}");
    let out = d.cli(["stats", "--no-stream", "--format", "json"]).ok();
    assert!(!out.contains("\"idle\""), "{out}");
    d.cli(["stats", "--no-stream", "nosuch"])
        .expect_engine_error();
    d.cli(["rm", "-f", "streamed", "idle"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn top_lists_the_processes_of_the_container() {
    let d = Daemon::start();
    let id = d.run_detached(&[
        "--name",
        "tops",
        "default",
        "sh",
        "-c",
        "sleep 1000 & sleep 1001 & wait",
    ]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let procs = quilt_tests::retry(Duration::from_secs(10), || {
        let p = d.block_on(async {
            d.client()
                .await
                .top_container(TopContainerRequest { id: "tops".into() })
                .await
                .expect("TopContainer")
                .into_inner()
                .processes
        });
        // Forked children show the shell's command line until they exec,
        // and run (R) until they are asleep.
        let asleep = |cmd: &str| p.iter().any(|x| x.command == cmd && x.state == "S");
        (p.len() == 3 && asleep("sleep 1000") && asleep("sleep 1001")).then_some(p)
    })
    .expect("three processes");
    let init = procs.iter().find(|p| p.container_pid == 1).expect("pid 1");
    assert_eq!(init.command, "sh -c sleep 1000 & sleep 1001 & wait");
    assert_eq!(init.uid, 0);
    let c = d.get(&id).unwrap();
    assert_eq!(init.pid, c.pid, "host pid of PID 1");
    let mut sleeps: Vec<_> = procs.iter().filter(|p| p.container_pid != 1).collect();
    sleeps.sort_by_key(|p| p.command.clone());
    assert_eq!(sleeps[0].command, "sleep 1000");
    assert_eq!(sleeps[1].command, "sleep 1001");
    for s in &sleeps {
        assert_eq!(s.ppid, init.pid, "{s:?}");
        assert!(s.container_pid > 1 && s.pid != s.container_pid, "{s:?}");
        assert_eq!(s.state, "S", "{s:?}");
    }

    let out = d.cli(["top", "tops"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("PID"), "{out}");
    assert!(lines[0].contains("COMMAND"), "{out}");
    assert_eq!(lines.len(), 4, "{out}");
    assert!(out.contains("sleep 1001"), "{out}");

    d.cli(["stop", "-t", "0", "tops"]).expect_code(0);
    let err = d.cli(["top", "tops"]);
    err.expect_engine_error();
    assert!(err.stderr.contains("is not running"), "{err:?}");
    d.cli(["top", "nosuch"]).expect_engine_error();
    d.cli(["rm", "tops"]).expect_code(0);
    d.assert_no_leftovers();
}
