//! Resource limits: memory (OOM), pids and cpu, checked in the cgroup files.

use std::process::Command;
use std::time::Duration;

use quilt_tests::api::ContainerState;
use quilt_tests::host::{CgroupVersion, cgroup_version, read_trimmed};
use quilt_tests::{Daemon, lines, retry};

#[test]
fn memory_limit_oom_kills_and_is_reported() {
    let d = Daemon::start();
    let out = d.cli([
        "run",
        "--name",
        "oom",
        "--memory",
        "32",
        "default",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=100M",
        "count=1",
    ]);
    out.expect_code(137);

    let st = d.status_json("oom");
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(st["exit"]["oom_killed"], true, "{st}");
    assert_eq!(st["exit"]["exit_code"], 137, "{st}");
    assert_eq!(st["resources"]["memory_mb"], 32, "{st}");

    let c = d.get("oom").expect("GetContainer");
    let exit = c.exit.expect("exited container without exit status");
    assert!(exit.oom_killed, "{exit:?}");
    assert_eq!(exit.exit_code, 137, "{exit:?}");

    d.cli(["rm", "oom"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn memory_limit_is_written_to_the_cgroup() {
    let d = Daemon::start();
    let id = d.run_detached(&["--memory", "64", "default", "sleep", "1000"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let dir = d.cgroup_dir("memory", &id);
    let (file, want) = match cgroup_version() {
        CgroupVersion::V1 => ("memory.limit_in_bytes", "67108864"),
        CgroupVersion::V2 => ("memory.max", "67108864"),
    };
    assert_eq!(
        read_trimmed(&dir.join(file)).as_deref(),
        Some(want),
        "{}",
        dir.join(file).display()
    );
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn cpus_half_sets_the_cfs_quota() {
    let d = Daemon::start();
    let id = d.run_detached(&["--cpus", "0.5", "default", "sleep", "1000"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    let dir = d.cgroup_dir("cpu", &id);
    match cgroup_version() {
        CgroupVersion::V1 => {
            assert_eq!(
                read_trimmed(&dir.join("cpu.cfs_quota_us")).as_deref(),
                Some("50000"),
                "{}",
                dir.display()
            );
            assert_eq!(
                read_trimmed(&dir.join("cpu.cfs_period_us")).as_deref(),
                Some("100000"),
                "{}",
                dir.display()
            );
        }
        CgroupVersion::V2 => {
            assert_eq!(
                read_trimmed(&dir.join("cpu.max")).as_deref(),
                Some("50000 100000"),
                "{}",
                dir.display()
            );
        }
    }
    let st = d.status_json(&id);
    assert_eq!(st["resources"]["cpus"], 0.5, "{st}");
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn pids_limit_contains_a_fork_bomb() {
    let d = Daemon::start();
    // The inner shell forks background sleeps until fork fails (ash then
    // gives up); the outer shell reports and turns into one more sleep.
    let id = d.run_detached(&[
        "--pids",
        "20",
        "default",
        "sh",
        "-c",
        r#"sh -c "i=0; while [ \$i -lt 100 ]; do sleep 1000 & i=\$((i+1)); done" 2>/dev/null; echo bomb-done; exec sleep 1000"#,
    ]);
    let done = retry(Duration::from_secs(30), || {
        let out = d.cli(["logs", &id]);
        out.stdout.contains("bomb-done").then_some(())
    });
    assert!(
        done.is_some(),
        "the fork bomb never finished\n{}",
        d.log_tail(40)
    );

    let dir = d.cgroup_dir("pids", &id);
    assert_eq!(
        read_trimmed(&dir.join("pids.max")).as_deref(),
        Some("20"),
        "{}",
        dir.display()
    );
    let current: u64 = read_trimmed(&dir.join("pids.current"))
        .and_then(|s| s.parse().ok())
        .expect("pids.current");
    let procs = lines(&std::fs::read_to_string(dir.join("cgroup.procs")).unwrap()).len();
    assert!(current <= 20, "pids.current = {current}");
    assert!(procs <= 20, "{procs} processes in the container");
    assert!(
        current >= 10,
        "the bomb should have filled the cgroup: pids.current = {current}"
    );
    let c = d.get(&id).expect("GetContainer");
    assert_eq!(c.state(), ContainerState::Running, "{c:?}");

    // The host and the daemon are fine.
    assert!(Command::new("true").status().unwrap().success());
    let out = d.cli(["run", "--rm", "default", "echo", "still-fine"]);
    assert_eq!(out.ok(), "still-fine", "{out:?}");

    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

/// The OOM flag belongs to one run: a container OOM-killed once and started
/// again (same cgroup) that then exits normally is not reported OOM-killed.
#[test]
fn oom_flag_is_per_run_not_per_cgroup() {
    let d = Daemon::start();
    let script = "if [ -e /ran ]; then exit 0; fi; touch /ran; \
                  dd if=/dev/zero of=/dev/null bs=100M count=1";
    let id = d
        .cli(["create", "--memory", "32", "default", "sh", "-c", script])
        .ok();
    let first = d.cli(["wait", &id]).ok();
    assert_eq!(first, "137");
    assert_eq!(d.status_json(&id)["exit"]["oom_killed"], true);
    d.cli(["start", &id]).ok();
    assert_eq!(d.cli(["wait", &id]).ok(), "0");
    let st = d.status_json(&id);
    assert_eq!(st["exit"]["exit_code"], 0, "{st}");
    assert_eq!(st["exit"]["oom_killed"], false, "{st}");
    d.cli(["rm", &id]).ok();
    d.assert_no_leftovers();
}

#[test]
fn a_disk_budget_stops_a_container_that_writes_past_it() {
    let d = Daemon::start();
    let id = d.run_detached(&[
        "--storage-opt",
        "size=4m",
        "default",
        "sh",
        "-c",
        "dd if=/dev/zero of=/fill bs=1M count=32 2>/dev/null; sleep 60",
    ]);
    let c = d.wait_state(
        &id,
        &[ContainerState::Failed, ContainerState::Exited],
        Duration::from_secs(30),
    );
    assert_eq!(c.state, ContainerState::Failed as i32, "{c:?}");
    assert!(c.failure_reason.contains("disk budget"), "{c:?}");
    assert_eq!(
        c.resources.as_ref().map(|r| r.disk_bytes),
        Some(4 * 1024 * 1024)
    );
    // Within budget: nothing happens.
    let ok = d.cli([
        "run",
        "--rm",
        "--storage-opt",
        "size=64m",
        "default",
        "sh",
        "-c",
        "dd if=/dev/zero of=/f bs=1M count=2 2>/dev/null && echo fine",
    ]);
    assert_eq!(ok.stdout.trim(), "fine", "{ok:?}");
    // Too small, or an unknown storage option: refused at once.
    d.cli(["run", "--rm", "--storage-opt", "size=1k", "default", "true"])
        .expect_engine_error();
    d.cli([
        "run",
        "--rm",
        "--storage-opt",
        "dm.basesize=1g",
        "default",
        "true",
    ])
    .expect_engine_error();
    d.cli(["rm", &id]).expect_code(0);
    d.assert_no_leftovers();
}
