//! `quiltd --metrics-listen`: Prometheus text parsed by the Prometheus
//! client library's own parser, counters that match what was done, and
//! `quilt system info`'s headline.
use quilt_tests::Daemon;
use quilt_tests::api::ContainerState;
use quilt_tests::cli::run_program;
use quilt_tests::python::clients;
use std::ffi::OsString;
use std::time::Duration;

struct Sample {
    name: String,
    labels: serde_json::Map<String, serde_json::Value>,
    value: f64,
}

fn scrape(port: u16) -> Vec<Sample> {
    let py = clients();
    let out = run_program(
        &py.python,
        &[
            OsString::from(py.script("metrics_scrape.py")),
            OsString::from(format!("http://127.0.0.1:{port}/metrics")),
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Sample {
                name: v["name"].as_str().unwrap().to_owned(),
                labels: v["labels"].as_object().unwrap().clone(),
                value: v["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).and_then(|x| x.as_str()) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

#[test]
fn metrics_match_what_was_done() {
    let port = quilt_tests::free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::builder()
        .args(&["--metrics-listen", &addr, "--start-queue", "64"])
        .start();
    // Two starts that run (one exits 3), one that fails (no such command).
    d.cli(["run", "--rm", "default", "true"]).expect_code(0);
    let sleeper = d.run_detached(&["default", "sleep", "600"]);
    d.wait_state(
        &sleeper,
        &[ContainerState::Running],
        Duration::from_secs(30),
    );
    let out = d.cli(["run", "--name", "bad", "default", "/no/such/command"]);
    assert_ne!(out.code, Some(0));
    d.cli(["create", "--no-start", "--name", "idle", "default", "true"])
        .expect_code(0);

    let s = scrape(port);
    assert_eq!(value(&s, "quilt_starts_total", &[("outcome", "ok")]), 2.0);
    assert_eq!(
        value(&s, "quilt_starts_total", &[("outcome", "failed")]),
        1.0
    );
    assert_eq!(value(&s, "quilt_exits_total", &[]), 1.0);
    assert_eq!(value(&s, "quilt_containers", &[("state", "running")]), 1.0);
    assert_eq!(value(&s, "quilt_containers", &[("state", "created")]), 1.0);
    assert_eq!(value(&s, "quilt_containers", &[("state", "failed")]), 1.0);
    assert_eq!(value(&s, "quilt_start_queue_capacity", &[]), 64.0);
    // Each start found the queue idle and a slot free: none waited there.
    assert_eq!(value(&s, "quilt_start_queue_arrivals_total", &[]), 0.0);
    assert_eq!(
        value(
            &s,
            "quilt_start_duration_seconds_count",
            &[("phase", "queue")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &s,
            "quilt_start_duration_seconds_count",
            &[("phase", "total")]
        ),
        3.0
    );
    let creates = value(
        &s,
        "quilt_rpc_duration_seconds_count",
        &[
            ("method", "/quilt.v1.ContainerService/CreateContainer"),
            ("code", "0"),
        ],
    );
    assert_eq!(creates, 4.0);
    assert!(value(&s, "quilt_db_write_duration_seconds_count", &[]) > 0.0);
    // A made-up method is counted under "unknown", never by its path.
    let st = d.block_on(async {
        let ch = quilt_tests::connect_uds(&d.socket).await.expect("connect");
        quilt_tests::raw_unary(ch, "/quilt.v1.ContainerService/NoSuchMethod", Vec::new()).await
    });
    assert_eq!(st.unwrap_err().code(), tonic::Code::Unimplemented);
    let s = scrape(port);
    assert!(!s.iter().any(|x| {
        x.labels
            .get("method")
            .is_some_and(|m| m.as_str().is_some_and(|m| m.contains("NoSuchMethod")))
    }));

    // The headline, with levels.
    let info = d.cli(["system", "info"]).ok();
    assert!(info.contains("start queue:      0/64 waiting"), "{info}");
    assert!(info.contains("healthy"), "{info}");
    assert!(info.contains("starts: 2 ok, 1 failed"), "{info}");
    let j = d.cli(["system", "info", "--format", "json"]).json();
    assert_eq!(j["start_queue"]["capacity"], 64);
    assert!(j["time_to_running_seconds"]["p50"].as_f64().unwrap() > 0.0);
    // The writer's totals agree with the histogram's.
    let writes = j["db_writes"].as_u64().unwrap();
    let s = scrape(port);
    let counted = value(&s, "quilt_db_write_duration_seconds_count", &[]);
    assert!(writes > 0 && writes as f64 <= counted, "{writes} {counted}");
    let busy = j["db_write_busy_seconds"].as_f64().unwrap();
    let summed = value(&s, "quilt_db_write_duration_seconds_sum", &[]);
    assert!(busy > 0.0 && busy <= summed + 1e-6, "{busy} {summed}");

    // Anything but /metrics is a 404; the daemon's socket is unaffected.
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(&addr).unwrap();
    c.write_all(b"GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 404"), "{resp}");
    d.cli(["rm", "-f", &sleeper, "bad", "idle"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn a_taken_metrics_port_fails_the_start() {
    // Uses a running daemon's cgroup parent, as the listener tests do.
    let d = Daemon::start();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let out = std::process::Command::new(quilt_tests::bin_dir().join("quiltd"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--socket")
        .arg(dir.path().join("q.sock"))
        .arg("--cgroup-parent")
        .arg(&d.cgroup_parent)
        .args(["--metrics-listen", &addr])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("spawn quiltd");
    assert!(
        !out.status.success(),
        "quiltd started with its metrics port taken"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--metrics-listen"), "{err}");
    assert!(!dir.path().join("q.sock").exists());
    let left = quilt_tests::host::mounts_under(dir.path());
    assert!(left.is_empty(), "a refused quiltd left {left:?}");
    drop(taken);
    d.assert_no_leftovers();
}
