//! `container prune`: every stopped container goes, running ones and
//! queued starts stay; label and until filters; the confirmation.

use std::time::Duration;

use quilt_tests::Daemon;
use quilt_tests::api::ContainerState;

#[test]
fn prune_removes_stopped_containers_only() {
    let d = Daemon::start();
    d.cli([
        "run", "--name", "done", "-l", "team=a", "default", "sh", "-c", "echo hi",
    ])
    .expect_code(0);
    d.cli(["run", "--name", "bad", "default", "sh", "-c", "exit 3"])
        .expect_code(3);
    d.cli(["create", "--no-start", "--name", "fresh", "default", "true"])
        .expect_code(0);
    let up = d.run_detached(&["--name", "up", "default", "sleep", "1000"]);
    d.wait_state(&up, &[ContainerState::Running], Duration::from_secs(30));

    // Without -f and without a terminal: refused, nothing removed.
    let refused = d.cli(["container", "prune"]);
    refused.expect_engine_error();
    assert!(refused.stderr.contains("-f"), "{refused:?}");
    assert_eq!(d.list().len(), 4);

    // A label filter: only `done`.
    let out = d
        .cli(["container", "prune", "-f", "--filter", "label=team=a"])
        .ok();
    let done_id = out.lines().nth(1).unwrap_or_default().to_owned();
    assert!(out.starts_with("Deleted Containers:"), "{out}");
    assert_eq!(out.lines().filter(|l| l.len() == 64).count(), 1, "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(d.get("done").is_err(), "{done_id}");

    // until in the past: nothing is that old.
    let out = d
        .cli(["container", "prune", "-f", "--filter", "until=1h"])
        .ok();
    assert_eq!(out, "Total reclaimed space: 0B", "{out}");

    let out = d.cli(["container", "prune", "-f"]).ok();
    assert_eq!(out.lines().filter(|l| l.len() == 64).count(), 2, "{out}");
    let left: Vec<String> = d.list().into_iter().map(|c| c.name).collect();
    assert_eq!(left, ["up"]);
    d.cli(["container", "prune", "-f", "--filter", "colour=red"])
        .expect_engine_error();
    d.cli(["rm", "-f", "up"]).expect_code(0);
    d.assert_no_leftovers();
}
