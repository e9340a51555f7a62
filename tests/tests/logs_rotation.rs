//! Logs on disk are bounded (rotation), and `quilt logs` reads across the
//! rotated files: --tail, --since, and follow mode through rotations.

use std::path::{Path, PathBuf};
use std::time::Duration;

use quilt_tests::api::{CreateContainerRequest, StartContainerRequest, get_logs_response::Item};
use quilt_tests::{CliOutput, Daemon, RPC_TIMEOUT, within};

const CAP: u64 = 64 * 1024;
/// The longest record the shim writes: a 16 KiB payload plus its header.
const MAX_RECORD: u64 = 16 * 1024 + 64;

fn daemon(max_files: u32) -> Daemon {
    Daemon::builder()
        .args(&[
            "--log-max-size",
            "64k",
            "--log-max-files",
            &max_files.to_string(),
        ])
        .start()
}

/// Exit code and a short description (the output can be megabytes).
#[track_caller]
fn expect_ok(out: &CliOutput) -> &str {
    assert_eq!(
        out.code,
        Some(0),
        "{:?} exited with {:?}; stderr: {}",
        out.args,
        out.code,
        out.stderr
    );
    &out.stdout
}

/// The container's log files: (name, size).
fn log_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("container.log")
                .then(|| (name, e.metadata().map(|m| m.len()).unwrap_or(0)))
        })
        .collect();
    v.sort();
    v
}

fn container_dir(d: &Daemon, name: &str) -> PathBuf {
    let id = d.get(name).expect("GetContainer").id;
    d.data_dir.join("containers").join(id)
}

/// Parses lines that are all numbers and checks they count up by one.
#[track_caller]
fn consecutive(text: &str) -> Vec<u64> {
    let nums: Vec<u64> = text
        .lines()
        .map(|l| {
            l.parse()
                .unwrap_or_else(|_| panic!("corrupt line {l:?} in the logs"))
        })
        .collect();
    for w in nums.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "gap or duplicate between {} and {}",
            w[0],
            w[1]
        );
    }
    nums
}

#[test]
fn rotation_bounds_disk_use_and_logs_read_the_newest_lines_in_order() {
    let d = daemon(3);
    const N: u64 = 150_000;
    let id = d.run_detached(&["--name", "chatty", "default", "seq", "1", &N.to_string()]);
    assert_eq!(d.cli(["wait", &id]).ok(), "0");

    let files = log_files(&container_dir(&d, "chatty"));
    let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        ["container.log", "container.log.1", "container.log.2"],
        "{files:?}"
    );
    for (name, size) in &files {
        assert!(*size <= CAP, "{name} is {size} bytes, over the {CAP} cap");
    }
    let total: u64 = files.iter().map(|f| f.1).sum();
    assert!(total <= 3 * CAP + MAX_RECORD, "{total} bytes on disk");

    // All of what is kept, oldest first: the newest lines, in order.
    let out = d.cli(["logs", "chatty"]);
    let nums = consecutive(expect_ok(&out));
    assert_eq!(nums.last(), Some(&N));
    assert!(nums[0] > 1, "nothing was rotated away");
    // The two rotated files are (nearly) full: about 2 x 64 KiB of records
    // of at most 36 bytes each, plus the live file.
    assert!(nums.len() > 3000, "only {} lines kept", nums.len());

    let tail = d.cli(["logs", "--tail", "5", "chatty"]);
    let expect: String = (N - 4..=N).map(|i| format!("{i}\n")).collect();
    assert_eq!(expect_ok(&tail), expect);

    // A tail longer than the live file spans rotated files.
    let tail = d.cli(["logs", "--tail", "4000", "chatty"]);
    let nums = consecutive(expect_ok(&tail));
    assert_eq!((nums.len(), nums.last()), (4000, Some(&N)));

    // With timestamps every line still ends up whole and in order.
    let ts = d.cli(["logs", "-t", "--tail", "100", "chatty"]);
    let plain: String = expect_ok(&ts)
        .lines()
        .map(|l| format!("{}\n", l.split_once(' ').expect("timestamp prefix").1))
        .collect();
    assert_eq!(consecutive(&plain).len(), 100);

    d.cli(["rm", "chatty"]).ok();
    d.assert_no_leftovers();
}

#[test]
fn follow_reads_every_line_across_rotations() {
    // 8 files of 64 KiB: the follower may lag ~500 KiB (~1.4 s) behind.
    const FILES: u32 = 8;
    let d = daemon(FILES);
    const BATCHES: u64 = 60;
    const PER: u64 = 500;
    // About 1 MB of records in 3 s: about 16 rotations.
    let script = format!(
        "i=0; while [ $i -lt {BATCHES} ]; do seq $((i*{PER}+1)) $((i*{PER}+{PER})); \
         sleep 0.05; i=$((i+1)); done"
    );
    let created = d
        .create(CreateContainerRequest {
            name: "follow".into(),
            no_start: true,
            ..quilt_tests::req(&["sh", "-c", &script])
        })
        .expect("create");
    let id = created.id;

    let (text, exit) = d.block_on(async {
        let mut c = d.client().await;
        let mut s = quilt_tests::open_logs(&mut c, &id, true, None).await;
        within(
            RPC_TIMEOUT,
            "StartContainer",
            c.start_container(StartContainerRequest {
                id: id.clone(),
                ..Default::default()
            }),
        )
        .await
        .expect("start");
        let mut text = Vec::new();
        let mut exit = None;
        loop {
            match tokio::time::timeout(Duration::from_secs(60), s.message()).await {
                Ok(Ok(Some(m))) => match m.item {
                    Some(Item::Entry(e)) => text.extend_from_slice(&e.data),
                    Some(Item::Exit(x)) => exit = Some(x),
                    None => {}
                },
                Ok(Ok(None)) => break,
                Ok(Err(e)) => panic!("GetLogs stream: {e}"),
                Err(_) => panic!("GetLogs follow stalled for 60 s"),
            }
        }
        (String::from_utf8(text).expect("utf-8"), exit)
    });
    let exit = exit.expect("the follow stream ends with the exit");
    assert_eq!(exit.exit_code, 0);
    let nums = consecutive(&text);
    assert_eq!(
        (nums.first(), nums.len() as u64),
        (Some(&1), BATCHES * PER),
        "the follower missed lines"
    );

    // The files did rotate: the beginning is no longer on disk.
    let kept = d.cli(["logs", "follow"]);
    let kept = consecutive(expect_ok(&kept));
    assert!(kept[0] > 1, "no rotation happened");
    assert_eq!(kept.last(), Some(&(BATCHES * PER)));
    assert_eq!(
        log_files(&container_dir(&d, "follow")).len(),
        FILES as usize
    );

    d.cli(["rm", "follow"]).ok();
    d.assert_no_leftovers();
}

#[test]
fn since_filters_by_time() {
    let d = daemon(3);
    let run = d.cli([
        "run",
        "--name",
        "bursts",
        "default",
        "sh",
        "-c",
        "echo a1; echo a2; sleep 1; echo b1; echo b2",
    ]);
    assert_eq!(run.ok(), "a1\na2\nb1\nb2");

    // The boundary: the timestamp of the first line of burst B.
    let stamped = d.cli(["logs", "-t", "bursts"]).ok();
    let lines: Vec<(&str, &str)> = stamped
        .lines()
        .map(|l| l.split_once(' ').expect("timestamp prefix"))
        .collect();
    assert_eq!(
        lines.iter().map(|l| l.1).collect::<Vec<_>>(),
        ["a1", "a2", "b1", "b2"]
    );
    let b1 = lines[2].0;
    assert_eq!(d.cli(["logs", "--since", b1, "bursts"]).ok(), "b1\nb2");
    assert_eq!(
        d.cli(["logs", "--since", b1, "--tail", "1", "bursts"]).ok(),
        "b2"
    );

    // A relative time before everything, and unix seconds.
    assert_eq!(
        d.cli(["logs", "--since", "1h", "bursts"]).ok(),
        "a1\na2\nb1\nb2"
    );
    assert_eq!(
        d.cli(["logs", "--since", "1h30m", "bursts"]).ok(),
        "a1\na2\nb1\nb2"
    );
    assert_eq!(
        d.cli(["logs", "--since", "1000000000", "bursts"]).ok(),
        "a1\na2\nb1\nb2"
    );
    // In the future: nothing.
    assert_eq!(
        d.cli(["logs", "--since", "2999-01-01T00:00:00Z", "bursts"])
            .ok(),
        ""
    );

    for bad in ["soon", "5x", "1h30", "2026-13-45T00:00:00Z", ""] {
        let out = d.cli(["logs", "--since", bad, "bursts"]);
        assert_eq!(out.code, Some(125), "--since {bad:?}: {out:?}");
        assert!(out.stderr.starts_with("quilt: "), "{out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }

    d.cli(["rm", "bursts"]).ok();
    d.assert_no_leftovers();
}

#[test]
fn bad_log_limits_stop_quiltd_at_once() {
    let quiltd = quilt_tests::bin_dir().join("quiltd");
    let tmp = tempfile::tempdir_in("/tmp").expect("temp dir");
    for bad in [
        ["--log-max-size", "10x"],
        ["--log-max-size", "-1"],
        ["--log-max-files", "0"],
    ] {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--data-dir".into(),
            tmp.path().join("data").into(),
            "--socket".into(),
            tmp.path().join("s.sock").into(),
        ];
        args.extend(bad.iter().map(Into::into));
        let out = quilt_tests::cli::run_program(&quiltd, &args, &[], Duration::from_secs(10));
        assert_eq!(out.code, Some(2), "{bad:?}: {out:?}");
        assert!(out.stderr.starts_with("error:"), "{bad:?}: {out:?}");
    }
    assert!(!tmp.path().join("s.sock").exists());
}
