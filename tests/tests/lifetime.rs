//! Lifetimes: a TTL stops (and with --rm removes) a container at its
//! deadline, also across a daemon restart; an idle timeout stops or pauses
//! one that nothing used for that long; UpdateLifetime moves the deadline.

use std::time::{Duration, Instant};

use quilt_tests::api::{ContainerState, ExecStart};
use quilt_tests::{Daemon, exec_collect, retry};

fn state(d: &Daemon, name: &str) -> String {
    d.status_json(name)["state"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Waits until `name` is in `want`; returns how long that took.
fn until_state(d: &Daemon, name: &str, want: &str, timeout: Duration) -> Duration {
    let t0 = Instant::now();
    retry(timeout, || (state(d, name) == want).then_some(())).unwrap_or_else(|| {
        panic!(
            "{name} not {want} after {timeout:?}: {}",
            d.status_json(name)
        )
    });
    t0.elapsed()
}

#[test]
fn a_ttl_stops_at_its_deadline_and_removes_with_rm() {
    let d = Daemon::start();
    let t0 = Instant::now();
    d.cli([
        "run", "-d", "--name", "short", "--ttl", "2s", "default", "sleep", "1000",
    ])
    .expect_code(0);
    let st = d.status_json("short");
    assert_eq!(st["lifetime"]["ttl_ms"], 2000, "{st}");
    assert!(st["lifetime"]["expires_at"].is_string(), "{st}");
    assert_eq!(state(&d, "short"), "running");
    until_state(&d, "short", "exited", Duration::from_secs(10));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(4000),
        "stopped after {took:?}"
    );

    // With --rm the container goes with its TTL.
    d.cli([
        "run", "-d", "--rm", "--name", "gone", "--ttl", "1s", "default", "sleep", "1000",
    ])
    .expect_code(0);
    let gone = retry(Duration::from_secs(10), || {
        d.get("gone")
            .err()
            .filter(|e| e.code() == tonic::Code::NotFound)
    });
    assert!(gone.is_some(), "still there: {}", d.status_json("gone"));

    // Bad lifetimes are refused.
    let long = d.cli(["run", "-d", "--ttl", "400d", "default", "true"]);
    long.expect_engine_error();
    assert!(
        long.stderr.contains("at most a year") || long.stderr.contains("a year"),
        "{long:?}"
    );
    d.cli(["run", "-d", "--ttl", "soon", "default", "true"])
        .expect_code(125);
    d.cli(["rm", "short"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn a_ttl_survives_a_daemon_restart_and_can_be_extended() {
    let mut d = Daemon::start();
    d.cli([
        "run", "-d", "--name", "kept", "--ttl", "3s", "default", "sleep", "1000",
    ])
    .expect_code(0);
    let t0 = Instant::now();
    d.restart();
    until_state(&d, "kept", "exited", Duration::from_secs(10));
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(5000), "stopped after {took:?}");

    // Extended through the API: alive past its first deadline.
    d.cli([
        "run", "-d", "--name", "ext", "--ttl", "1s", "default", "sleep", "1000",
    ])
    .expect_code(0);
    let out = d.cli(["lifetime", "--ttl", "4s", "ext"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ttl_ms"], 4000, "{v}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(state(&d, "ext"), "running");
    // And dropped: no TTL any more.
    let out = d.cli(["lifetime", "--ttl", "0", "ext"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["expires_at"].is_null(), "{v}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(state(&d, "ext"), "running");
    d.cli(["lifetime", "ext"]).expect_engine_error();
    d.cli(["lifetime", "--touch", "nosuch"])
        .expect_engine_error();
    d.cli(["rm", "-f", "kept", "ext"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn an_idle_timeout_stops_or_pauses_what_nothing_uses() {
    let d = Daemon::start();
    d.cli([
        "run",
        "-d",
        "--name",
        "idler",
        "--idle-timeout",
        "1500ms",
        "default",
        "sleep",
        "1000",
    ])
    .expect_code(0);
    let id = d.get("idler").unwrap().id;
    // Execs every 500 ms keep it alive past its timeout.
    for _ in 0..6 {
        d.block_on(async {
            let mut c = d.client().await;
            let r = exec_collect(
                &mut c,
                ExecStart {
                    container_id: id.clone(),
                    command: vec!["true".into()],
                    ..Default::default()
                },
            )
            .await
            .expect("exec");
            assert_eq!(r.exit_code, 0);
        });
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(state(&d, "idler"), "running");
    // Left alone, it stops about 1.5 s after the last exec.
    let took = until_state(&d, "idler", "exited", Duration::from_secs(10));
    assert!(took < Duration::from_secs(3), "stopped after {took:?}");

    // The pause action; unpausing counts as activity, and it pauses again.
    d.cli([
        "run",
        "-d",
        "--name",
        "napper",
        "--idle-timeout",
        "1s",
        "--idle-action",
        "pause",
        "default",
        "sleep",
        "1000",
    ])
    .expect_code(0);
    let c = d.wait_state(
        &d.get("napper").unwrap().id,
        &[ContainerState::Paused],
        Duration::from_secs(10),
    );
    assert_eq!(c.lifetime.unwrap().idle_action, "pause");
    d.cli(["unpause", "napper"]).expect_code(0);
    assert_eq!(state(&d, "napper"), "running");
    until_state(&d, "napper", "paused", Duration::from_secs(10));
    d.cli(["--", "run", "--idle-action", "pause", "default", "true"])
        .expect_code(125);
    d.cli(["rm", "-f", "idler", "napper"]).expect_code(0);
    d.assert_no_leftovers();
}
