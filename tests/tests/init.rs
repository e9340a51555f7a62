//! `--init`: a minimal init as PID 1 that reaps orphaned zombies and forwards
//! signals, so a `sleep` workload stops on SIGTERM at once. Without it the
//! workload itself is PID 1 (as with docker) and stop escalates to SIGKILL.

use std::time::{Duration, Instant};

use quilt_tests::Daemon;

/// A PID 1 that never reaps: the inner shell leaves an orphan (`sleep 0.2`)
/// and the outer one then becomes `sleep`, which never calls wait.
const ORPHAN_MAKER: &str = "sh -c 'sleep 0.2 & exec true'; exec sleep 1000";

/// (zombies, live `sleep 0.2` orphans) inside the container, seen by exec.
fn census(d: &Daemon, id: &str) -> (usize, usize) {
    let out = d.cli([
        "exec",
        id,
        "--",
        "sh",
        "-c",
        "z=0; o=0; for s in /proc/[0-9]*/status; do \
           grep -q '^State:.*Z' $s 2>/dev/null && z=$((z+1)); done; \
         for c in /proc/[0-9]*/cmdline; do \
           tr '\\0' ' ' < $c 2>/dev/null | grep -q '^sleep 0.2' && o=$((o+1)); done; \
         echo $z $o",
    ]);
    let text = out.ok();
    let mut it = text
        .split_whitespace()
        .map(|n| n.parse::<usize>().expect("count"));
    (it.next().expect("zombies"), it.next().expect("orphans"))
}

/// Re-checks until `done` holds (the orphan needs 0.2 s to end), bounded.
fn census_until(d: &Daemon, id: &str, done: impl Fn((usize, usize)) -> bool) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = census(d, id);
        if done(c) || Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn init_reaps_orphans_that_a_plain_pid1_leaves_as_zombies() {
    let d = Daemon::start();
    let plain = d.run_detached(&["default", "sh", "-c", ORPHAN_MAKER]);
    let (zombies, _) = census_until(&d, &plain, |(z, _)| z >= 1);
    assert!(
        zombies >= 1,
        "without --init the orphan should stay a zombie"
    );

    let with_init = d.run_detached(&["--init", "default", "sh", "-c", ORPHAN_MAKER]);
    // Once the orphan has ended, nothing of it is left: init reaped it.
    let (zombies, orphans) = census_until(&d, &with_init, |(z, o)| z == 0 && o == 0);
    assert_eq!(
        (zombies, orphans),
        (0, 0),
        "with --init the orphan must be reaped"
    );

    // The workload runs as PID 2 under init.
    let out = d.cli(["run", "--rm", "--init", "default", "sh", "-c", "echo $$"]);
    assert_eq!(out.ok(), "2");
    d.cli(["rm", "-f", &plain, &with_init]).ok();
    d.assert_no_leftovers();
}

#[test]
fn init_forwards_sigterm_so_stop_is_immediate() {
    let d = Daemon::start();
    let id = d.run_detached(&["--init", "default", "sleep", "1000"]);
    let t0 = Instant::now();
    d.cli(["stop", "-t", "10", &id]).ok();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stop took {took:?}: SIGTERM not forwarded"
    );
    let st = d.status_json(&id);
    assert_eq!(st["state"], "exited");
    assert_eq!(st["exit"]["exit_code"], 143, "{st}");

    // Errors of the workload's exec still surface under init.
    d.cli(["run", "--rm", "--init", "default", "no-such-command"])
        .expect_code(127);
    d.cli(["run", "--rm", "--init", "default", "sh", "-c", "exit 9"])
        .expect_code(9);
    d.cli(["rm", &id]).ok();
    d.assert_no_leftovers();
}

/// Ctrl-C on an attached `quilt run` stops the container (SIGTERM, which
/// init forwards) and the CLI exits with the container's code.
#[test]
fn ctrl_c_on_attached_run_stops_the_container() {
    use std::process::{Command, Stdio};
    let d = Daemon::start();
    let mut child = Command::new(quilt_tests::bin_dir().join("quilt"))
        .arg("--socket")
        .arg(&d.socket)
        .args([
            "run", "--name", "attached", "--init", "default", "sleep", "1000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quilt run");
    // get() resolves names too; the row may not exist for a moment.
    d.wait_state(
        "attached",
        &[quilt_tests::api::ContainerState::Running],
        Duration::from_secs(20),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "quilt run did not exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(143), "SIGTERM exit expected");
    assert_eq!(d.status_json("attached")["state"], "exited");
    d.cli(["rm", "attached"]).ok();
    d.assert_no_leftovers();
}
