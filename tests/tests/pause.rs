//! pause and unpause: the cgroup is frozen (a counter stops advancing),
//! the `paused` state, what the other verbs do with a paused container,
//! and a pause that outlives a daemon restart.

use std::time::Duration;

use quilt_tests::api::{ContainerState, ExecStart, WatchEventsRequest};
use quilt_tests::host::{CgroupVersion, cgroup_version, read_trimmed};
use quilt_tests::{Daemon, RPC_TIMEOUT, collect_events, exec_collect, within};
use tonic::Code;

/// Prints a line every 20 ms.
const TICKER: &[&str] = &["sh", "-c", "while :; do echo tick; sleep 0.02; done"];

fn run_ticker(d: &Daemon, name: &str) -> String {
    let mut args = vec!["--name", name, "default"];
    args.extend_from_slice(TICKER);
    let id = d.run_detached(&args);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    id
}

fn ticks(d: &Daemon, name: &str) -> usize {
    d.cli(["logs", name]).ok().lines().count()
}

/// Whether the kernel says the container's cgroup is frozen.
fn frozen(d: &Daemon, id: &str) -> bool {
    match cgroup_version() {
        CgroupVersion::V1 => {
            read_trimmed(&d.cgroup_dir("freezer", id).join("freezer.state")).as_deref()
                == Some("FROZEN")
        }
        CgroupVersion::V2 => {
            read_trimmed(&d.cgroup_dir("", id).join("cgroup.freeze")).as_deref() == Some("1")
        }
    }
}

/// Asserts that the ticker has stopped: no new line in half a second.
fn assert_still(d: &Daemon, name: &str) {
    let before = ticks(d, name);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ticks(d, name), before, "{name} kept ticking while paused");
}

/// Asserts that the ticker moves: new lines within a few seconds.
fn assert_moving(d: &Daemon, name: &str) {
    let before = ticks(d, name);
    let moved = quilt_tests::retry(Duration::from_secs(5), || {
        (ticks(d, name) > before).then_some(())
    });
    assert!(moved.is_some(), "{name} did not tick");
}

#[test]
fn pause_freezes_and_unpause_resumes() {
    let d = Daemon::start();
    let id = run_ticker(&d, "tick");
    assert_moving(&d, "tick");
    d.block_on(async {
        let mut c = d.client().await;
        let mut events = within(
            RPC_TIMEOUT,
            "WatchEvents",
            c.watch_events(WatchEventsRequest {
                id: id.clone(),
                ..Default::default()
            }),
        )
        .await
        .expect("WatchEvents")
        .into_inner();

        let req = || quilt_tests::api::GetContainerRequest { id: id.clone() };
        assert_eq!(d.cli(["pause", "tick"]).ok(), "tick");
        assert!(frozen(&d, &id));
        let got = c.get_container(req()).await.expect("GetContainer");
        assert_eq!(
            got.into_inner().container.unwrap().state(),
            ContainerState::Paused
        );
        assert_eq!(d.status_json("tick")["state"], "paused");
        let ps = d.cli(["ps"]).ok();
        assert!(ps.contains("(Paused)"), "{ps}");
        assert_still(&d, "tick");

        assert_eq!(d.cli(["unpause", "tick"]).ok(), "tick");
        assert!(!frozen(&d, &id));
        let got = c.get_container(req()).await.expect("GetContainer");
        assert_eq!(
            got.into_inner().container.unwrap().state(),
            ContainerState::Running
        );
        assert_moving(&d, "tick");

        let (seen, ok) = collect_events(&mut events, Duration::from_secs(5), |e| {
            e.action == "unpaused"
        })
        .await;
        assert!(ok, "{seen:?}");
        let actions: Vec<&str> = seen.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["paused", "unpaused"], "{seen:?}");
        assert_eq!(seen[0].state, ContainerState::Paused as i32);
        assert_eq!(seen[1].state, ContainerState::Running as i32);
    });

    // Pausing twice, unpausing what is not paused: refused, clearly.
    d.cli(["pause", "tick"]).expect_code(0);
    let again = d.cli(["pause", "tick"]);
    again.expect_engine_error();
    assert!(again.stderr.contains("already paused"), "{again:?}");
    d.cli(["unpause", "tick"]).expect_code(0);
    let not = d.cli(["unpause", "tick"]);
    not.expect_engine_error();
    assert!(not.stderr.contains("is not paused"), "{not:?}");
    d.cli(["pause", "nosuch"]).expect_engine_error();

    d.cli(["stop", "-t", "0", "tick"]).expect_code(0);
    let stopped = d.cli(["pause", "tick"]);
    stopped.expect_engine_error();
    assert!(stopped.stderr.contains("is not running"), "{stopped:?}");
    d.cli(["rm", "tick"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn verbs_on_a_paused_container_behave_as_docker() {
    let d = Daemon::start();
    let id = run_ticker(&d, "held");
    d.cli(["pause", "held"]).expect_code(0);

    // exec and start are refused; rm needs -f.
    d.block_on(async {
        let mut c = d.client().await;
        let err = exec_collect(
            &mut c,
            ExecStart {
                container_id: id.clone(),
                command: vec!["true".into()],
                ..Default::default()
            },
        )
        .await
        .expect_err("exec into a paused container");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("is paused"), "{err:?}");
        let err = c
            .start_container(quilt_tests::api::StartContainerRequest {
                id: id.clone(),
                ..Default::default()
            })
            .await
            .expect_err("start of a paused container");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("unpause"), "{err:?}");
    });
    let rm = d.cli(["rm", "held"]);
    rm.expect_engine_error();
    assert!(rm.stderr.contains("is paused"), "{rm:?}");

    // cp works both ways through the frozen container's namespaces.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("note");
    std::fs::write(&src, "written while paused\n").unwrap();
    d.cli(["cp", src.to_str().unwrap(), "held:/tmp"])
        .expect_code(0);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    d.cli(["cp", "held:/tmp/note", out.to_str().unwrap()])
        .expect_code(0);
    assert_eq!(
        std::fs::read_to_string(out.join("note")).unwrap(),
        "written while paused\n"
    );
    assert!(frozen(&d, &id));

    // stats still read it; its CPU is idle.
    let v: serde_json::Value = serde_json::from_str(
        &d.cli(["stats", "--no-stream", "--format", "json", "held"])
            .ok(),
    )
    .unwrap();
    assert_eq!(v["state"], "paused", "{v}");
    assert!(v["cpu_percent"].as_f64().unwrap() < 1.0, "{v}");

    // stop thaws first, then stops (PID 1 sh ignores SIGTERM: SIGKILL).
    d.cli(["stop", "-t", "1", "held"]).expect_code(0);
    let c = d.get(&id).unwrap();
    assert_eq!(c.state(), ContainerState::Exited);
    assert_eq!(c.exit.unwrap().signal, 9);

    // kill of a paused container: thawed, then signalled.
    let id2 = run_ticker(&d, "killed");
    d.cli(["pause", "killed"]).expect_code(0);
    d.cli(["kill", "killed"]).expect_code(0);
    let c = d.wait_state(&id2, &[ContainerState::Exited], Duration::from_secs(10));
    assert_eq!(c.exit.unwrap().signal, 9);

    // rm -f of a paused container: gone, nothing left frozen or running.
    run_ticker(&d, "forced");
    d.cli(["pause", "forced"]).expect_code(0);
    d.cli(["rm", "-f", "forced"]).expect_code(0);
    assert_eq!(d.get("forced").unwrap_err().code(), Code::NotFound);

    d.cli(["rm", "held", "killed"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn a_pause_outlives_a_daemon_restart() {
    let mut d = Daemon::start();
    let id = run_ticker(&d, "kept");
    d.cli(["pause", "kept"]).expect_code(0);
    d.restart();
    assert_eq!(d.get(&id).unwrap().state(), ContainerState::Paused);
    assert!(frozen(&d, &id));
    assert_still(&d, "kept");
    d.cli(["unpause", "kept"]).expect_code(0);
    assert_moving(&d, "kept");
    // Adopted: its exit is still seen.
    d.cli(["kill", "kept"]).expect_code(0);
    d.wait_state(&id, &[ContainerState::Exited], Duration::from_secs(10));
    d.cli(["rm", "kept"]).expect_code(0);
    d.assert_no_leftovers();
}
