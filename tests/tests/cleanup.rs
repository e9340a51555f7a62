//! Nothing leaks: mounts, cgroups, directories, processes, rows.

use std::time::{Duration, Instant};

use quilt_tests::api::ContainerState;
use quilt_tests::{Daemon, host, retry};

#[test]
fn hundred_run_rm_cycles_leave_nothing() {
    let d = Daemon::start();
    let t0 = Instant::now();
    for i in 0..100 {
        let out = d.cli(["run", "--rm", "default", "true"]);
        assert_eq!(out.code, Some(0), "cycle {i}: {out:?}");
    }
    eprintln!("100 run --rm cycles took {:?}", t0.elapsed());
    d.assert_no_leftovers();
}

/// The leftover check itself must see a live container from every angle,
/// or the other tests' "nothing is left" would prove nothing.
#[test]
fn leftover_check_sees_a_running_container() {
    let d = Daemon::start();
    let id = d.run_detached(&["--name", "seen", "default", "sleep", "1000"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let found = d.leftovers();
    for kind in [
        "row: ",
        "dir: ",
        "cgroup: ",
        "process in our cgroups: ",
        "quilt-shim: ",
    ] {
        assert!(
            found.iter().any(|l| l.starts_with(kind)),
            "leftover check missed the {kind:?} of a running container: {found:#?}"
        );
    }
    d.cli(["rm", "-f", "seen"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn rm_of_exited_and_failed_containers_cleans_up() {
    let d = Daemon::start();
    let ok = d.run_detached(&["default", "sh", "-c", "echo data > /file; exit 2"]);
    assert_eq!(d.cli(["wait", &ok]).ok(), "2");
    // `create` returns before the start fails (`run -d` may report it).
    let failed = d.cli(["create", "default", "no-such-command"]).ok();
    let st = d.wait_state(
        &failed,
        &[ContainerState::Failed, ContainerState::Exited],
        Duration::from_secs(30),
    );
    assert_eq!(st.state(), ContainerState::Failed, "{st:?}");
    // Both still have their rows until removed.
    assert_eq!(d.list().len(), 2);
    d.cli(["rm", &ok]).expect_code(0);
    d.cli(["rm", &failed]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn rm_force_kills_every_process_of_the_container() {
    let d = Daemon::start();
    let id = d.run_detached(&[
        "default",
        "sh",
        "-c",
        "sleep 1000 & sleep 1000 & (sleep 1000 &) ; exec sleep 1000",
    ]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let procs = retry(Duration::from_secs(10), || {
        let p = host::pids_in_cgroups(&d.cgroup_parent);
        (p.len() >= 4).then_some(p)
    })
    .expect("four sleeps in the container's cgroup");
    d.cli(["rm", "-f", &id]).expect_code(0);
    for p in procs {
        assert!(
            host::wait_pid_gone(p, Duration::from_secs(5)),
            "pid {p} survived rm -f"
        );
    }
    d.assert_no_leftovers();
}
