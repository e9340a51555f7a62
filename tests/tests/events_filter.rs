//! `events` with filters and a time window: remembered events from
//! --since, a stream that ends at --until, filters by container and action.

use std::time::Duration;

use quilt_tests::Daemon;

fn json_lines(out: &str) -> Vec<serde_json::Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn filters_since_and_until() {
    let d = Daemon::start();
    d.cli(["run", "--name", "one", "default", "true"])
        .expect_code(0);
    d.cli(["run", "--name", "two", "default", "sh", "-c", "exit 4"])
        .expect_code(4);

    // The past, to now: every event of `one`, in order, then the end.
    let out = d
        .cli_timeout(
            [
                "events",
                "--since",
                "1m",
                "--until",
                "0s",
                "--format",
                "json",
                "-f",
                "container=one",
            ],
            Duration::from_secs(20),
        )
        .ok();
    let evs = json_lines(&out);
    let actions: Vec<&str> = evs.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["created", "starting", "running", "exited"],
        "{out}"
    );
    assert!(evs.iter().all(|e| e["name"] == "one"), "{out}");

    // By action, over both containers.
    let out = d
        .cli([
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--format",
            "json",
            "--filter",
            "event=exited",
        ])
        .ok();
    let evs = json_lines(&out);
    let names: Vec<&str> = evs.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["one", "two"], "{out}");
    assert_eq!(evs[1]["exit"]["exit_code"], 4, "{out}");

    // Two filters of one key are alternatives; keys combine.
    let out = d
        .cli([
            "events",
            "--since",
            "1m",
            "--until",
            "0s",
            "--format",
            "json",
            "-f",
            "container=one",
            "-f",
            "container=two",
            "-f",
            "event=running",
        ])
        .ok();
    assert_eq!(json_lines(&out).len(), 2, "{out}");

    // A time the CLI cannot read is refused before any call.
    d.cli(["events", "--until", "-2s"]).expect_code(125);

    // Bad filters and windows.
    d.cli(["events", "--filter", "colour=red"]).expect_code(125);
    d.cli(["events", "--since", "0s", "--until", "1m"])
        .expect_engine_error();
    d.cli(["rm", "one", "two"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn a_live_stream_ends_at_until() {
    let d = Daemon::start();
    let until = std::time::SystemTime::now() + Duration::from_secs(3);
    let secs = until
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let until = format!("{secs:.3}");
    let sock = d.socket.clone();
    let runner = std::thread::spawn(move || {
        let args: Vec<std::ffi::OsString> = [
            "--socket".to_string(),
            sock.display().to_string(),
            "events".into(),
            "--format".into(),
            "json".into(),
            "--until".into(),
            until,
            "-f".into(),
            "event=running".into(),
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        quilt_tests::cli::run_program(
            &quilt_tests::daemon::bin_dir().join("quilt"),
            &args,
            &[],
            Duration::from_secs(20),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    d.cli(["run", "-d", "--name", "live", "default", "sleep", "100"])
        .expect_code(0);
    let out = runner.join().unwrap();
    let text = out.ok();
    let evs = json_lines(&text);
    assert_eq!(evs.len(), 1, "{text}");
    assert_eq!(evs[0]["name"], "live");
    assert!(out.elapsed < Duration::from_secs(6), "{:?}", out.elapsed);
    d.cli(["rm", "-f", "live"]).expect_code(0);
    d.assert_no_leftovers();
}
