//! Create, start, stop, kill, remove; names; events; many containers at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use quilt_tests::api::{
    ContainerState, GetContainerRequest, ListContainersRequest, RemoveContainerRequest,
    StopContainerRequest, WatchEventsRequest,
};
use quilt_tests::{
    Daemon, RPC_TIMEOUT, collect_events, host, named, req, retry, state_name, within,
};
use tonic::Code;

#[test]
fn create_returns_at_once_and_events_follow_in_order() {
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

        let t0 = Instant::now();
        let resp = within(
            RPC_TIMEOUT,
            "CreateContainer",
            c.create_container(named("evbox", &["sleep", "5"])),
        )
        .await
        .expect("CreateContainer")
        .into_inner();
        let latency = t0.elapsed();
        assert_eq!(resp.name, "evbox");
        assert!(!resp.id.is_empty());
        assert!(
            latency < Duration::from_secs(2),
            "CreateContainer took {latency:?}"
        );

        // The row exists right away and is not finished.
        let now = within(
            RPC_TIMEOUT,
            "GetContainer",
            c.get_container(GetContainerRequest {
                id: resp.id.clone(),
            }),
        )
        .await
        .expect("GetContainer right after create")
        .into_inner()
        .container
        .unwrap();
        assert!(
            [
                ContainerState::Created,
                ContainerState::Starting,
                ContainerState::Running
            ]
            .contains(&now.state()),
            "state right after create: {:?}",
            now.state()
        );

        let id = resp.id.clone();
        let (seen, ok) = collect_events(&mut events, Duration::from_secs(30), |e| {
            e.container_id == id && e.state == ContainerState::Running as i32
        })
        .await;
        let mine: Vec<String> = seen
            .iter()
            .filter(|e| e.container_id == resp.id)
            .map(|e| state_name(e.state))
            .collect();
        assert!(ok, "never saw `running`; saw {mine:?}\n{}", d.log_tail(30));
        let pos = |s: &str| mine.iter().position(|m| m == s);
        let (cr, st, ru) = (pos("created"), pos("starting"), pos("running"));
        assert!(
            cr.is_some() && st.is_some() && ru.is_some() && cr < st && st < ru,
            "expected created -> starting -> running, saw {mine:?}"
        );
        let ev = seen.iter().find(|e| e.container_id == resp.id).unwrap();
        assert_eq!(ev.name, "evbox");
    });
}

#[test]
fn status_is_answered_while_fifty_containers_start() {
    let d = Daemon::start();
    let probe = d
        .create(named("probe", &["sleep", "1000"]))
        .expect("create probe");
    d.wait_state(
        &probe.id,
        &[ContainerState::Running],
        Duration::from_secs(30),
    );

    let (ids, probes, worst) = d.block_on(async {
        let c = d.client().await;
        let stop = Arc::new(AtomicBool::new(false));

        // Status calls keep going while the 50 creates and starts happen.
        let prober = {
            let mut c = c.clone();
            let stop = stop.clone();
            let id = probe.id.clone();
            tokio::spawn(async move {
                let mut n = 0u32;
                let mut worst = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let r = within(
                        Duration::from_secs(5),
                        "GetContainer",
                        c.get_container(GetContainerRequest { id: id.clone() }),
                    )
                    .await;
                    let got = r.unwrap_or_else(|e| panic!("GetContainer during the burst: {e}"));
                    assert_eq!(
                        got.into_inner().container.unwrap().state(),
                        ContainerState::Running
                    );
                    let l = within(
                        Duration::from_secs(5),
                        "ListContainers",
                        c.list_containers(ListContainersRequest::default()),
                    )
                    .await;
                    l.unwrap_or_else(|e| panic!("ListContainers during the burst: {e}"));
                    worst = worst.max(t.elapsed());
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (n, worst)
            })
        };

        let creates = (0..50).map(|i| {
            let mut c = c.clone();
            async move {
                within(
                    Duration::from_secs(30),
                    "CreateContainer",
                    c.create_container(named(&format!("burst-{i}"), &["sleep", "1000"])),
                )
                .await
                .map(|r| r.into_inner().id)
            }
        });
        let ids: Vec<String> = futures::future::join_all(creates)
            .await
            .into_iter()
            .map(|r| r.expect("one of the 50 creates failed"))
            .collect();

        // Wait (bounded) for all 50 to run, still probing meanwhile.
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut c2 = c.clone();
        loop {
            let list = within(
                RPC_TIMEOUT,
                "ListContainers",
                c2.list_containers(ListContainersRequest::default()),
            )
            .await
            .expect("ListContainers")
            .into_inner()
            .containers;
            let running = list
                .iter()
                .filter(|x| ids.contains(&x.id) && x.state() == ContainerState::Running)
                .count();
            let failed: Vec<_> = list
                .iter()
                .filter(|x| {
                    ids.contains(&x.id)
                        && matches!(x.state(), ContainerState::Failed | ContainerState::Exited)
                })
                .map(|x| format!("{} {:?} {}", x.name, x.state(), x.failure_reason))
                .collect();
            assert!(failed.is_empty(), "containers did not start: {failed:?}");
            if running == 50 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "only {running}/50 running after 180 s\n{}",
                d.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let (n, worst) = prober.await.expect("prober panicked");
        (ids, n, worst)
    });
    eprintln!("{probes} status probes during the burst; slowest {worst:?}");
    assert!(probes > 0);
    assert!(
        worst < Duration::from_secs(2),
        "a status call took {worst:?} during the burst"
    );
    // Every container is a real, separate process.
    let pids: std::collections::BTreeSet<i32> = ids
        .iter()
        .map(|id| d.get(id).expect("GetContainer").pid)
        .collect();
    assert_eq!(pids.len(), 50, "containers share PIDs: {pids:?}");
    assert!(pids.iter().all(|p| host::pid_alive(*p)));

    d.block_on(async {
        let c = d.client().await;
        let all = ids.iter().chain(std::iter::once(&probe.id)).map(|id| {
            let mut c = c.clone();
            async move {
                within(
                    Duration::from_secs(60),
                    "RemoveContainer",
                    c.remove_container(RemoveContainerRequest {
                        id: id.clone(),
                        force: true,
                    }),
                )
                .await
            }
        });
        for r in futures::future::join_all(all).await {
            r.expect("rm -f");
        }
    });
    d.assert_no_leftovers();
}

#[test]
fn stop_with_timeout_finishes_in_time() {
    let d = Daemon::start();
    let id = d.run_detached(&["--name", "sleeper", "default", "sleep", "1000"]);
    let c = d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let out = d.cli(["stop", "-t", "2", "sleeper"]);
    out.expect_code(0);
    assert!(
        out.elapsed <= Duration::from_secs(3),
        "stop -t 2 took {:?}",
        out.elapsed
    );
    assert!(host::wait_pid_gone(c.pid, Duration::from_secs(2)));
    let st = d.status_json("sleeper");
    assert_eq!(st["state"], "exited", "{st}");
    d.cli(["rm", "sleeper"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn stop_kills_a_term_trapping_process_after_the_timeout() {
    let d = Daemon::start();
    let id = d.run_detached(&[
        "--name",
        "stubborn",
        "default",
        "sh",
        "-c",
        r#"trap "echo got-term" TERM; echo ready; while true; do sleep 1; done"#,
    ]);
    let ready = retry(Duration::from_secs(30), || {
        d.cli(["logs", &id]).stdout.contains("ready").then_some(())
    });
    assert!(ready.is_some(), "never printed ready\n{}", d.log_tail(30));

    let out = d.cli(["stop", "-t", "2", "stubborn"]);
    out.expect_code(0);
    assert!(
        out.elapsed >= Duration::from_millis(1800),
        "stop returned after {:?}: the process ignores TERM, so it should wait for the timeout",
        out.elapsed
    );
    assert!(
        out.elapsed <= Duration::from_secs(3),
        "stop -t 2 took {:?}",
        out.elapsed
    );
    let st = d.status_json("stubborn");
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(st["exit"]["exit_code"], 137, "{st}");
    assert_eq!(st["exit"]["signal"], 9, "{st}");
    let logs = d.cli(["logs", "stubborn"]);
    assert!(
        logs.stdout.contains("got-term"),
        "SIGTERM should have been sent first: {logs:?}"
    );

    // Through the API as well, with an explicit timeout.
    let id2 = d.run_detached(&["default", "sh", "-c", r#"trap "" TERM; sleep 1000"#]);
    d.wait_state(&id2, &[ContainerState::Running], Duration::from_secs(30));
    let t = Instant::now();
    let stopped = d.block_on(async {
        let mut c = d.client().await;
        within(
            Duration::from_secs(10),
            "StopContainer",
            c.stop_container(StopContainerRequest {
                id: id2.clone(),
                timeout_seconds: Some(1),
            }),
        )
        .await
    });
    let elapsed = t.elapsed();
    let ct = stopped
        .expect("StopContainer")
        .into_inner()
        .container
        .unwrap();
    assert_eq!(ct.state(), ContainerState::Exited, "{ct:?}");
    assert_eq!(ct.exit.as_ref().map(|e| e.exit_code), Some(137), "{ct:?}");
    assert!(elapsed <= Duration::from_secs(2), "stop took {elapsed:?}");

    d.cli(["rm", &id]).expect_code(0);
    d.cli(["rm", &id2]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn duplicate_names_are_refused() {
    let d = Daemon::start();
    d.create(named("twin", &["sleep", "1000"]))
        .expect("first create");
    let err = d
        .create(named("twin", &["sleep", "1000"]))
        .expect_err("second create with the same name");
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    d.cli(["run", "-d", "--name", "twin", "default", "sleep", "1"])
        .expect_engine_error();
    assert_eq!(d.list().len(), 1);
    d.cli(["rm", "-f", "twin"]).expect_code(0);
    // The name is free again once removed.
    d.cli(["run", "--rm", "--name", "twin", "default", "true"])
        .expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn rm_of_a_running_container_needs_force() {
    let d = Daemon::start();
    let id = d.run_detached(&["--name", "busy", "default", "sleep", "1000"]);
    let c = d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));

    let out = d.cli(["rm", "busy"]);
    out.expect_engine_error();
    let err = d
        .block_on(async {
            let mut cl = d.client().await;
            within(
                RPC_TIMEOUT,
                "RemoveContainer",
                cl.remove_container(RemoveContainerRequest {
                    id: id.clone(),
                    force: false,
                }),
            )
            .await
        })
        .expect_err("RemoveContainer of a running container without force");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    let again = d.get(&id).expect("still there");
    assert_eq!(again.state(), ContainerState::Running);
    assert_eq!(again.pid, c.pid);
    assert!(host::pid_alive(c.pid));

    d.cli(["rm", "-f", "busy"]).expect_code(0);
    assert!(host::wait_pid_gone(c.pid, Duration::from_secs(10)));
    let err = d.get(&id).expect_err("removed container");
    assert_eq!(err.code(), Code::NotFound);
    d.assert_no_leftovers();
}

#[test]
fn create_start_kill_wait_restart_via_cli() {
    let d = Daemon::start();
    // `create --no-start` prints only the full id and does not start.
    let out = d.cli([
        "create",
        "--no-start",
        "--name",
        "lc",
        "default",
        "sleep",
        "1000",
    ]);
    let id = out.ok();
    let c = d.get(&id).expect("GetContainer");
    assert_eq!(c.id, id, "create must print the full id");
    assert_eq!(c.state(), ContainerState::Created);
    assert_eq!(d.status_json("lc")["state"], "created");

    d.cli(["start", "lc"]).expect_code(0);
    let c = d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    assert!(host::pid_alive(c.pid));

    // A unique prefix of the id works too.
    let st = d.status_json(&id[..id.len().min(12)]);
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["name"], "lc");
    assert_eq!(st["state"], "running");
    assert_eq!(st["pid"], c.pid);

    d.cli(["kill", "lc"]).expect_code(0);
    let out = d.cli(["wait", "lc"]);
    assert_eq!(out.ok(), "137", "{out:?}");
    assert!(host::wait_pid_gone(c.pid, Duration::from_secs(5)));

    // An exited container can be started again.
    d.cli(["start", "lc"]).expect_code(0);
    let c2 = d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    assert_ne!(c2.pid, c.pid);
    d.cli(["kill", "-s", "TERM", "lc"]).expect_code(0);
    d.cli(["stop", "-t", "1", "lc"]).expect_code(0);
    d.wait_state(&id, &[ContainerState::Exited], Duration::from_secs(10));

    // Plain `create` starts in the background and prints only the id.
    let id2 = d.cli(["create", "default", "sleep", "1000"]).ok();
    assert_eq!(d.get(&id2).expect("GetContainer").id, id2);
    d.wait_state(&id2, &[ContainerState::Running], Duration::from_secs(30));

    let inspect = d.cli(["inspect", "lc"]);
    let v = inspect.json();
    assert!(
        inspect.stdout.trim().lines().count() > 1,
        "inspect should pretty-print"
    );
    assert!(v.to_string().contains(&id), "{inspect:?}");

    d.cli(["rm", "lc"]).expect_code(0);
    d.cli(["rm", "-f", &id2]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn ps_lists_running_and_all_containers() {
    let d = Daemon::start();
    let running = d.run_detached(&["--name", "ps-run", "default", "sleep", "1000"]);
    let done = d.run_detached(&["--name", "ps-done", "default", "true"]);
    d.cli(["wait", &done]).expect_code(0);
    d.wait_state(
        &running,
        &[ContainerState::Running],
        Duration::from_secs(30),
    );

    let q = d.cli(["ps", "-q"]);
    let q_lines = q.lines();
    assert!(
        q_lines.iter().any(|l| running.starts_with(l.as_str())),
        "{q:?}"
    );
    assert!(
        !q_lines.iter().any(|l| done.starts_with(l.as_str())),
        "{q:?}"
    );

    let all = d.cli(["ps", "-a", "-q"]);
    let all_lines = all.lines();
    assert_eq!(all_lines.len(), 2, "{all:?}");

    let table = d.cli(["ps", "-a"]);
    table.expect_code(0);
    assert!(table.stdout.contains("ps-run") && table.stdout.contains("ps-done"));

    let json = d.cli(["ps", "-a", "--format", "json"]);
    let v = json.json();
    let text = v.to_string();
    assert!(
        text.contains("ps-run") && text.contains("ps-done"),
        "{json:?}"
    );

    d.cli(["rm", "-f", &running]).expect_code(0);
    d.cli(["rm", &done]).expect_code(0);
    assert!(d.cli(["ps", "-a", "-q"]).lines().is_empty());
    d.assert_no_leftovers();
}

#[test]
fn stop_of_an_exited_container_is_harmless() {
    let d = Daemon::start();
    let id = d.create(req(&["true"])).expect("create").id;
    d.wait_state(&id, &[ContainerState::Exited], Duration::from_secs(30));
    // As with docker: stopping what has already stopped succeeds.
    d.cli(["stop", &id]).expect_code(0);
    assert_eq!(d.get(&id).unwrap().state(), ContainerState::Exited);
    d.cli(["rm", &id]).expect_code(0);
    d.assert_no_leftovers();
}

/// WaitContainer on an auto-remove container reports how it ended (EXITED
/// with its code), never the removal, including when the row is deleted
/// while the call waits.
#[test]
fn wait_on_auto_remove_container_reports_its_exit() {
    use quilt_tests::api::{CreateContainerRequest, WaitContainerRequest};
    let d = Daemon::start();
    d.block_on(async {
        let mut c = d.client().await;
        for round in 0..5 {
            let resp = within(
                RPC_TIMEOUT,
                "CreateContainer",
                c.create_container(CreateContainerRequest {
                    auto_remove: true,
                    ..req(&["sh", "-c", "sleep 0.3; exit 4"])
                }),
            )
            .await
            .expect("CreateContainer")
            .into_inner();
            let waited = within(
                RPC_TIMEOUT,
                "WaitContainer",
                c.wait_container(WaitContainerRequest {
                    id: resp.id.clone(),
                }),
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}: WaitContainer: {e}"))
            .into_inner();
            let exit = waited.exit.expect("exit status");
            assert_eq!(
                exit.state,
                ContainerState::Exited as i32,
                "round {round}: {exit:?}"
            );
            assert_eq!(exit.exit_code, 4, "round {round}");
        }
    });
    // Every auto-removed container is gone (removal runs after the exit).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.list().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    d.assert_no_leftovers();
}

/// quiltd keeps one descriptor per running container (its supervisor's
/// pidfd, which the monitor waits on): no pidfd of PID 1 and no netlink
/// socket per network namespace. Every spawn copies the daemon's
/// descriptor table, so more would make starts slower as containers
/// accumulate. (Files such as the database's connections, opened on
/// demand up to a bound, are not counted.)
#[test]
fn one_descriptor_per_running_container() {
    let d = Daemon::start();
    let pid = d.pid().expect("quiltd's pid");
    // (pidfds, sockets) of quiltd.
    let fds = || {
        let (mut pidfds, mut sockets) = (0i64, 0i64);
        for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .expect("quiltd's descriptors")
            .flatten()
        {
            let to = std::fs::read_link(e.path()).unwrap_or_default();
            let to = to.to_string_lossy();
            if to == "anon_inode:[pidfd]" {
                pidfds += 1;
            } else if to.starts_with("socket:") {
                sockets += 1;
            }
        }
        (pidfds, sockets)
    };
    let first = d.run_detached(&["default", "sleep", "600"]);
    d.wait_state(&first, &[ContainerState::Running], Duration::from_secs(30));
    let before = fds();
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(d.run_detached(&["default", "sleep", "600"]));
    }
    for id in &ids {
        d.wait_state(id, &[ContainerState::Running], Duration::from_secs(30));
    }
    // A client's connection comes and goes: the counts have to settle.
    let mut grown = (0, 0);
    let settled = retry(Duration::from_secs(10), || {
        let now = fds();
        grown = (now.0 - before.0, now.1 - before.1);
        (grown.0 == 20 && grown.1 <= 2).then_some(())
    });
    assert!(
        settled.is_some(),
        "20 more running containers took {} more pidfds and {} more sockets",
        grown.0,
        grown.1
    );
    let mut all = ids.clone();
    all.push(first);
    let mut args = vec!["rm", "-f"];
    args.extend(all.iter().map(String::as_str));
    d.cli(args).expect_code(0);
    d.assert_no_leftovers();
}
