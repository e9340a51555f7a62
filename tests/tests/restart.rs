//! Restart policies: on-failure:N restarts exactly N times with a growing
//! back-off, always restarts clean exits, a user's stop is never undone, the
//! policy is honoured across a daemon restart; `quilt restart`.

use std::time::{Duration, Instant};

use quilt_tests::api::{ContainerState, WatchEventsRequest};
use quilt_tests::{Daemon, RPC_TIMEOUT, collect_events, retry, within};

/// Waits until `status` of `name` satisfies `ok`; panics with the last one.
fn wait_status(
    d: &Daemon,
    name: &str,
    timeout: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    retry(timeout, || {
        last = d.status_json(name);
        ok(&last).then(|| last.clone())
    })
    .unwrap_or_else(|| panic!("{name} never got there: {last}\n{}", d.log_tail(30)))
}

#[test]
fn on_failure_restarts_exactly_n_times_with_a_growing_back_off() {
    let d = Daemon::start();
    d.block_on(async {
        let mut c = d.client().await;
        let mut events = within(
            RPC_TIMEOUT,
            "WatchEvents",
            c.watch_events(WatchEventsRequest::default()),
        )
        .await
        .expect("WatchEvents")
        .into_inner();
        d.cli([
            "create",
            "--name",
            "flaky",
            "--restart",
            "on-failure:3",
            "default",
            "sh",
            "-c",
            "exit 3",
        ])
        .expect_code(0);
        // The first run and three restarts: four exits.
        let mut exits = 0;
        let (seen, ok) = collect_events(&mut events, Duration::from_secs(30), |e| {
            if e.name == "flaky" && e.action == "exited" {
                exits += 1;
            }
            exits == 4
        })
        .await;
        assert!(ok, "{seen:?}");
        // Nothing more comes (the next back-off would be 800 ms).
        let (more, _) = collect_events(&mut events, Duration::from_millis(1500), |_| false).await;
        assert!(
            more.iter().all(|e| e.action != "restarting"),
            "restarted a fourth time: {more:?}"
        );
        let at = |e: &quilt_tests::api::Event| {
            let t = e.time.as_ref().unwrap();
            Duration::new(t.seconds as u64, t.nanos as u32)
        };
        let mut last_exit = None;
        let mut waits = Vec::new();
        for e in &seen {
            match e.action.as_str() {
                "exited" => last_exit = Some(at(e)),
                "restarting" => waits.push(at(e) - last_exit.expect("an exit first")),
                _ => {}
            }
        }
        assert_eq!(waits.len(), 3, "{seen:?}");
        for (w, min) in waits.iter().zip([100u64, 200, 400]) {
            assert!(
                *w >= Duration::from_millis(min - 5),
                "waited {w:?}, back-off {min} ms: {waits:?}"
            );
        }
    });
    let st = d.status_json("flaky");
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(st["restart_policy"], "on-failure:3", "{st}");
    assert_eq!(st["restart_count"], 3, "{st}");
    assert_eq!(st["exit"]["exit_code"], 3, "{st}");

    // A clean exit is not a failure.
    d.cli([
        "run",
        "-d",
        "--name",
        "clean",
        "--restart",
        "on-failure",
        "default",
        "true",
    ])
    .expect_code(0);
    wait_status(&d, "clean", Duration::from_secs(10), |s| {
        s["state"] == "exited"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(d.status_json("clean")["restart_count"], 0);

    d.cli(["rm", "flaky", "clean"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn always_restarts_and_a_stop_is_never_undone() {
    let d = Daemon::start();
    d.cli([
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "default",
        "sh",
        "-c",
        "sleep 0.2",
    ])
    .expect_code(0);
    wait_status(&d, "loop", Duration::from_secs(20), |s| {
        s["restart_count"].as_u64().unwrap_or(0) >= 2
    });
    d.cli(["stop", "-t", "0", "loop"]).expect_code(0);
    // Whether the stop caught it running or waiting out a back-off, it stays
    // stopped.
    let st = wait_status(&d, "loop", Duration::from_secs(5), |s| {
        s["state"] == "exited"
    });
    std::thread::sleep(Duration::from_secs(2));
    let later = d.status_json("loop");
    assert_eq!(later["state"], "exited", "{later}");
    assert_eq!(later["restart_count"], st["restart_count"], "{later}");
    // The user's start counts from zero again, and the policy goes on.
    d.cli(["start", "loop"]).expect_code(0);
    assert_eq!(d.status_json("loop")["restart_count"], 0);
    wait_status(&d, "loop", Duration::from_secs(20), |s| {
        s["restart_count"].as_u64().unwrap_or(0) >= 1
    });
    // A kill by the user counts as a stop.
    let running = wait_status(&d, "loop", Duration::from_secs(10), |s| {
        s["state"] == "running"
    });
    d.cli(["kill", "loop"]).expect_code(0);
    let killed = wait_status(&d, "loop", Duration::from_secs(5), |s| {
        s["state"] == "exited"
    });
    std::thread::sleep(Duration::from_secs(1));
    let later = d.status_json("loop");
    assert_eq!(later["state"], "exited", "{later} (was {running})");
    assert_eq!(later["restart_count"], killed["restart_count"], "{later}");

    // --rm and a policy conflict; a bad policy is refused by the CLI.
    let both = d.cli([
        "run",
        "-d",
        "--rm",
        "--restart",
        "always",
        "default",
        "true",
    ]);
    both.expect_engine_error();
    assert!(both.stderr.contains("--rm"), "{both:?}");
    let bad = d.cli(["run", "-d", "--restart", "sometimes", "default", "true"]);
    bad.expect_code(125);
    assert!(
        bad.stderr
            .contains("expected no, on-failure[:N], always or unless-stopped"),
        "{bad:?}"
    );
    d.cli(["rm", "loop"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn the_policy_is_honoured_across_a_daemon_restart() {
    let mut d = Daemon::start();
    d.cli([
        "run",
        "-d",
        "--name",
        "durable",
        "--restart",
        "on-failure:3",
        "default",
        "sh",
        "-c",
        "sleep 1; exit 1",
    ])
    .expect_code(0);
    wait_status(&d, "durable", Duration::from_secs(20), |s| {
        s["restart_count"] == 1 && s["state"] == "running"
    });
    // Down while the workload exits: the next quiltd records the exit and
    // restarts it.
    d.stop();
    std::thread::sleep(Duration::from_millis(1500));
    d.restart();
    let t0 = Instant::now();
    let st = wait_status(&d, "durable", Duration::from_secs(30), |s| {
        s["restart_count"] == 3 && s["state"] == "exited"
    });
    std::thread::sleep(Duration::from_millis(1500));
    let later = d.status_json("durable");
    assert_eq!(
        later["restart_count"],
        3,
        "{later} after {:?}",
        t0.elapsed()
    );
    assert_eq!(later["state"], "exited", "{later}");
    assert_eq!(st["exit"]["exit_code"], 1, "{st}");
    d.cli(["rm", "durable"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn restart_stops_then_starts() {
    let d = Daemon::start();
    let id = d.run_detached(&["--name", "again", "default", "sleep", "1000"]);
    let first = d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    d.cli(["restart", "-t", "0", "again"]).expect_code(0);
    let now = d.get(&id).unwrap();
    assert_eq!(now.state(), ContainerState::Running);
    assert_ne!(now.pid, first.pid, "same process after a restart");
    assert_eq!(now.restart_count, 0);
    d.cli(["restart", "nosuch"]).expect_engine_error();
    d.cli(["rm", "-f", "again"]).expect_code(0);
    d.assert_no_leftovers();
}
