//! The daemon going away: crashes, graceful shutdowns, and a second daemon
//! trying to take over.

use std::fs;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::Duration;

use quilt_tests::api::ContainerState;
use quilt_tests::daemon::health_check;
use quilt_tests::{Daemon, host, retry};

#[test]
fn containers_survive_a_daemon_crash_and_are_reconciled() {
    let mut d = Daemon::start();
    let a = d.run_detached(&["--name", "long-a", "default", "sleep", "1000"]);
    let b = d.run_detached(&["--name", "long-b", "default", "sleep", "1000"]);
    // The short one waits for a go signal (a file we drop into its rootfs
    // once the daemon is dead), writes output and exits 5.
    let s = d.run_detached(&[
        "--name",
        "short",
        "default",
        "sh",
        "-c",
        "echo before; while [ ! -e /go ]; do sleep 0.05; done; \
         echo while-down; echo err-down >&2; exit 5",
    ]);
    let running = [ContainerState::Running];
    let ca = d.wait_state(&a, &running, Duration::from_secs(30));
    let cb = d.wait_state(&b, &running, Duration::from_secs(30));
    let cs = d.wait_state(&s, &running, Duration::from_secs(30));

    d.kill9();
    for c in [&ca, &cb, &cs] {
        assert!(
            host::pid_alive(c.pid),
            "container {} (pid {}) died with the daemon",
            c.name,
            c.pid
        );
    }

    // Let the short one finish while the daemon is down.
    fs::write(format!("/proc/{}/root/go", cs.pid), b"").expect("drop the go file");
    assert!(
        host::wait_pid_gone(cs.pid, Duration::from_secs(10)),
        "the short container did not exit"
    );
    assert!(host::pid_alive(ca.pid) && host::pid_alive(cb.pid));

    d.restart();

    let short = d.wait_state(&s, &[ContainerState::Exited], Duration::from_secs(15));
    let exit = short.exit.as_ref().expect("exit status of the short one");
    assert_eq!(exit.exit_code, 5, "{short:?}");
    assert_eq!(d.cli(["wait", "short"]).ok(), "5");
    let st = d.status_json("short");
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(st["exit"]["exit_code"], 5, "{st}");

    for (id, before) in [(&a, &ca), (&b, &cb)] {
        let now = d.get(id).expect("GetContainer after restart");
        assert_eq!(now.state(), ContainerState::Running, "{now:?}");
        assert_eq!(now.pid, before.pid, "pid changed across the restart");
        assert!(host::pid_alive(now.pid));
    }

    // Output written while the daemon was down was captured.
    let logs = d.cli(["logs", "short"]);
    logs.expect_code(0);
    assert_eq!(logs.stdout, "before\nwhile-down\n", "{logs:?}");
    assert_eq!(logs.stderr, "err-down\n", "{logs:?}");

    // The adopted containers are fully manageable.
    let out = d.cli(["exec", "long-a", "--", "hostname"]);
    assert_eq!(out.ok(), "long-a", "{out:?}");
    let out = d.cli(["stop", "-t", "2", "long-a"]);
    out.expect_code(0);
    assert!(out.elapsed <= Duration::from_secs(3), "{out:?}");
    assert!(host::wait_pid_gone(ca.pid, Duration::from_secs(5)));
    assert_eq!(d.get(&a).unwrap().state(), ContainerState::Exited);
    d.cli(["stop", "-t", "2", "long-b"]).expect_code(0);
    assert!(host::wait_pid_gone(cb.pid, Duration::from_secs(5)));

    for id in [&a, &b, &s] {
        d.cli(["rm", id]).expect_code(0);
    }
    d.assert_no_leftovers();
}

#[test]
fn removal_while_exited_during_downtime_cleans_everything() {
    let mut d = Daemon::start();
    let id = d.run_detached(&["default", "sleep", "1000"]);
    let c = d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    d.kill9();
    host::kill_all([c.pid]);
    assert!(host::wait_pid_gone(c.pid, Duration::from_secs(10)));
    d.restart();
    let c2 = d.wait_state(&id, &[ContainerState::Exited], Duration::from_secs(15));
    assert_eq!(c2.exit.as_ref().map(|e| e.exit_code), Some(137), "{c2:?}");
    d.cli(["rm", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn graceful_shutdown_leaves_containers_running() {
    let mut d = Daemon::start();
    let id = d.run_detached(&["--name", "keeper", "default", "sleep", "1000"]);
    let c = d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let status = d.stop().expect("quiltd was running");
    assert!(status.success(), "quiltd exited with {status} on SIGTERM");
    assert!(
        host::pid_alive(c.pid),
        "SIGTERM of quiltd killed a container"
    );
    d.restart();
    let again = d.get("keeper").expect("GetContainer after restart");
    assert_eq!(again.state(), ContainerState::Running);
    assert_eq!(again.pid, c.pid);
    d.cli(["rm", "-f", "keeper"]).expect_code(0);
    assert!(host::wait_pid_gone(c.pid, Duration::from_secs(10)));
    d.assert_no_leftovers();
}

/// Kills the child if it is still running when dropped.
struct Reap(Child);

impl Reap {
    /// Waits (bounded) for the child to exit.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        retry(timeout, || self.0.try_wait().ok().flatten())
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn assert_refused(d: &Daemon, socket: &Path, data: &Path, what: &str) {
    let log = d.root.join("second-quiltd.log");
    let mut second = Reap(d.spawn_quiltd(socket, data, &log));
    let status = second.wait(Duration::from_secs(10));
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(s) => assert!(
            !s.success(),
            "a second quiltd ({what}) exited successfully\n{log_text}"
        ),
        None => panic!("a second quiltd ({what}) is still running after 10 s\n{log_text}"),
    }
    // The first one still answers, on its socket.
    let healthy = d.block_on(health_check(&d.socket));
    assert!(
        matches!(healthy, Ok(true)),
        "first quiltd unhealthy after a second one ({what}) tried to start: {healthy:?}\n{}",
        d.log_tail(30)
    );
    let out = d.cli(["run", "--rm", "default", "echo", "still-here"]);
    assert_eq!(out.ok(), "still-here", "{out:?}");
}

#[test]
fn a_second_daemon_on_the_same_socket_or_data_dir_is_refused() {
    let d = Daemon::start();
    let keep = d.run_detached(&["--name", "keep", "default", "sleep", "1000"]);
    d.wait_state(&keep, &[ContainerState::Running], Duration::from_secs(30));

    assert_refused(&d, &d.socket, &d.data_dir, "same socket and data dir");
    let other_sock = d.root.join("other.sock");
    assert_refused(&d, &other_sock, &d.data_dir, "same data dir, other socket");
    assert!(
        !other_sock.exists() || std::os::unix::net::UnixStream::connect(&other_sock).is_err(),
        "the refused daemon left a live socket"
    );
    assert_refused(
        &d,
        &d.socket,
        &d.root.join("other-data"),
        "same socket, other data dir",
    );

    let c = d.get("keep").expect("the first daemon's container");
    assert_eq!(c.state(), ContainerState::Running);
    d.cli(["rm", "-f", "keep"]).expect_code(0);
    d.assert_no_leftovers();
}

/// Sends `n` creates (`req(i)`), 300 us apart so that some are mid-start
/// at the kill, SIGKILLs quiltd once `kill_after` were acknowledged, and
/// returns how many were (at least `kill_after`).
fn creates_killed_amid(
    d: &mut Daemon,
    n: usize,
    kill_after: usize,
    req: impl Fn(usize) -> quilt_tests::api::CreateContainerRequest,
) -> usize {
    let pid = d.pid().expect("quiltd runs");
    let acked = d.block_on(async {
        let c = d.client().await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..n {
            let (mut c, tx, r) = (c.clone(), tx.clone(), req(i));
            tokio::spawn(async move {
                let r = tokio::time::timeout(Duration::from_secs(30), c.create_container(r));
                let _ = tx.send(matches!(r.await, Ok(Ok(_))));
            });
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
        drop(tx);
        let mut acked = 0;
        while let Some(ok) = rx.recv().await {
            acked += ok as usize;
            if acked == kill_after {
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .expect("kill quiltd");
            }
        }
        acked
    });
    d.kill9();
    assert!(
        acked >= kill_after,
        "only {acked} creates were acknowledged"
    );
    acked
}

/// Every acknowledged create has its row after the restart, and each row
/// goes with `rm -f`.
fn remove_acknowledged(d: &Daemon, acked: usize) {
    let rows = d.list();
    assert!(
        rows.len() >= acked,
        "{} rows for {acked} acknowledged creates",
        rows.len()
    );
    for c in &rows {
        d.cli(["rm", "-f", &c.id]).expect_code(0);
    }
}

#[test]
fn a_daemon_killed_amid_adoptions_leaves_nothing_behind() {
    // Creates that adopt a warm pool's container hand it over while their
    // row is inserted, with its workload held at a gate: one killed between
    // the two leaves a pooled container that never runs its workload and a
    // directory no row owns, ended at the next start; the rows that were
    // acknowledged are all there and manageable after the restart.
    let mut d = Daemon::builder()
        .args(&["--warm-pool", "default=12"])
        .start();
    let pool = |d: &Daemon, field: &str| {
        let out = d.cli(["pool", "ls", "--format", "json"]).ok();
        let pools: serde_json::Value = serde_json::from_str(&out).expect("pool ls JSON");
        pools[0][field].as_u64().unwrap_or(0)
    };
    let full = |d: &Daemon| {
        retry(Duration::from_secs(60), || {
            (pool(d, "ready") == 12).then_some(())
        })
        .unwrap_or_else(|| panic!("the pool did not fill\n{}", d.log_tail(30)));
    };
    full(&d);
    // The pool's shape, with its container's own names: such a create
    // adopts (the burst's do too).
    let req = || quilt_tests::req(&["sleep", "1000"]);
    d.block_on(async { d.client().await.create_container(req()).await })
        .expect("a create of the pool's shape");
    assert_eq!(pool(&d, "hits"), 1, "the create did not adopt");
    full(&d);
    let acked = creates_killed_amid(&mut d, 12, 3, |_| req()) + 1;
    d.restart();
    remove_acknowledged(&d, acked);
    d.cli(["pool", "rm", "default"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn a_daemon_killed_amid_creates_leaves_nothing_behind() {
    // Creates whose start begins at once run their shim while their row is
    // inserted: one killed between the two has a shim and a directory but
    // no row. Its workload never runs, what it left is ended at the next
    // start, and the rows that were acknowledged are all there and
    // manageable after the restart.
    let mut d = Daemon::start();
    let acked = creates_killed_amid(&mut d, 40, 8, |i| {
        quilt_tests::named(&format!("amid-{i}"), &["sleep", "1000"])
    });
    // A directory no row owns, as one whose shim failed before its gate
    // leaves when the daemon died before the insert: ended at start-up.
    let orphan = d.data_dir.join("containers").join("ab".repeat(32));
    fs::create_dir_all(orphan.join("upper/etc")).unwrap();
    fs::write(orphan.join("shim.log"), b"left behind\n").unwrap();
    d.restart();
    assert!(
        !orphan.exists(),
        "an orphaned directory outlived the restart"
    );
    remove_acknowledged(&d, acked);
    d.assert_no_leftovers();
}
