//! Captured output (logs, follow mode) and exec.

use std::time::Duration;

use quilt_tests::api::{ContainerState, ExecStart, LogStream, get_logs_response::Item};
use quilt_tests::{Daemon, host};
use tonic::Code;

/// All log items of a container through the API (bounded).
fn api_logs(d: &Daemon, id: &str, follow: bool, tail: Option<u64>) -> Vec<Item> {
    d.block_on(async {
        let mut c = d.client().await;
        let mut s = quilt_tests::open_logs(&mut c, id, follow, tail).await;
        let mut items = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(30), s.message()).await {
                Ok(Ok(Some(m))) => items.extend(m.item),
                Ok(Ok(None)) => break,
                Ok(Err(e)) => panic!("GetLogs stream: {e}"),
                Err(_) => panic!("GetLogs stream stalled for 30 s"),
            }
        }
        items
    })
}

fn stream_text(items: &[Item], stream: LogStream) -> String {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Entry(e) if e.stream == stream as i32 => {
                Some(String::from_utf8_lossy(&e.data).into_owned())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn stdout_and_stderr_are_captured_on_their_streams() {
    let d = Daemon::start();
    let out = d.cli([
        "run",
        "--name",
        "io",
        "default",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    out.expect_code(0);
    assert!(out.stdout.contains("out"), "{out:?}");
    assert!(out.stderr.contains("err"), "{out:?}");
    assert!(
        !out.stdout.contains("err"),
        "stderr shown on stdout: {out:?}"
    );

    let logs = d.cli(["logs", "io"]);
    logs.expect_code(0);
    assert_eq!(logs.stdout, "out\n", "{logs:?}");
    assert_eq!(logs.stderr, "err\n", "{logs:?}");

    let items = api_logs(&d, "io", false, None);
    assert_eq!(stream_text(&items, LogStream::Stdout), "out\n");
    assert_eq!(stream_text(&items, LogStream::Stderr), "err\n");

    d.cli(["rm", "io"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn logs_tail_and_partial_lines() {
    let d = Daemon::start();
    let id = d.run_detached(&[
        "default",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo l$i; done; printf no-newline",
    ]);
    d.cli(["wait", &id]).expect_code(0);
    let all = d.cli(["logs", &id]);
    assert_eq!(all.stdout, "l1\nl2\nl3\nl4\nl5\nno-newline", "{all:?}");
    let tail = d.cli(["logs", "--tail", "2", &id]);
    // The last two lines; the unterminated one counts as a line.
    assert_eq!(tail.stdout, "l5\nno-newline", "{tail:?}");
    let items = api_logs(&d, &id, false, None);
    let last = items
        .iter()
        .rev()
        .find_map(|i| match i {
            Item::Entry(e) => Some(e),
            _ => None,
        })
        .expect("entries");
    assert!(
        last.partial,
        "a line without newline must be partial: {last:?}"
    );
    assert_eq!(last.data, b"no-newline");
    d.cli(["rm", &id]).expect_code(0);
    d.assert_no_leftovers();
}

/// The output pipes hold 256 KiB (the kernel's default is 64 KiB; each
/// pipe's ring of buffers is kernel memory nobody reclaims, 4 KiB at this
/// size and 16 KiB at 1 MiB), and output four times that size is logged
/// whole.
#[test]
fn output_pipes_hold_256_kib_and_more_is_logged_whole() {
    use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
    let d = Daemon::start();
    let id = d.run_detached(&[
        "default",
        "sh",
        "-c",
        "head -c 1048576 /dev/zero | tr '\\0' a; echo; echo done; sleep 60",
    ]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = stream_text(&api_logs(&d, &id, false, None), LogStream::Stdout);
        if text.ends_with("done\n") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `done` in the log after 30 s ({} bytes logged)",
            text.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(text.bytes().filter(|&b| b == b'a').count(), 1 << 20);
    assert_eq!(text.len(), (1 << 20) + "\ndone\n".len());

    // The workload's stdout and stderr, opened through /proc: the pipes.
    let pid = d.get(&id).expect("GetContainer").pid;
    assert!(pid > 0, "no pid for a running container");
    for fd in [1, 2] {
        let path = format!("/proc/{pid}/fd/{fd}");
        let pipe = open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
        let size = fcntl(&pipe, FcntlArg::F_GETPIPE_SZ).expect("F_GETPIPE_SZ");
        assert_eq!(size, 256 * 1024, "capacity of {path}");
    }
    d.cli(["rm", "-f", &id]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn logs_follow_streams_until_the_container_exits() {
    let d = Daemon::start();
    let script = "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done";
    let id = d.run_detached(&["default", "sh", "-c", script]);
    let out = d.cli_timeout(["logs", "-f", &id], Duration::from_secs(20));
    out.expect_code(0);
    assert_eq!(
        out.lines(),
        vec!["line1", "line2", "line3", "line4", "line5"],
        "{out:?}"
    );
    let c = d.get(&id).expect("GetContainer");
    assert_eq!(
        c.state(),
        ContainerState::Exited,
        "logs -f returned before the container exited"
    );

    // The API's follow mode ends with the exit status.
    let id2 = d.run_detached(&["default", "sh", "-c", "echo a; sleep 0.5; echo b; exit 4"]);
    let items = api_logs(&d, &id2, true, None);
    assert_eq!(stream_text(&items, LogStream::Stdout), "a\nb\n");
    match items.last() {
        Some(Item::Exit(e)) => assert_eq!(e.exit_code, 4, "{e:?}"),
        other => panic!("follow must end with the exit status, ended with {other:?}"),
    }

    // Following an already exited container ends at once.
    let again = d.cli_timeout(["logs", "-f", &id], Duration::from_secs(10));
    assert_eq!(again.lines().len(), 5, "{again:?}");

    d.cli(["rm", &id]).expect_code(0);
    d.cli(["rm", &id2]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn exec_runs_inside_the_container() {
    let d = Daemon::start();
    let id = d.run_detached(&["--name", "exbox", "default", "sleep", "1000"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));

    let out = d.cli(["exec", "exbox", "--", "hostname"]);
    assert_eq!(out.ok(), "exbox", "{out:?}");

    let out = d.cli(["exec", "exbox", "--", "cat", "/proc/1/cmdline"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "sleep\u{0}1000\u{0}", "{out:?}");

    d.cli(["exec", "exbox", "--", "sh", "-c", "exit 3"])
        .expect_code(3);

    // Same rootfs, writable and shared with the workload's view.
    let out = d.cli([
        "exec",
        "exbox",
        "--",
        "sh",
        "-c",
        "test -x /bin/busybox && ! test -e /etc/debian_version && echo image; \
         echo hi > /from-exec",
    ]);
    assert_eq!(out.ok(), "image", "{out:?}");
    let c = d.get(&id).unwrap();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/root/from-exec", c.pid)).unwrap(),
        "hi\n"
    );

    // Output streams are kept apart.
    let out = d.cli(["exec", "exbox", "--", "sh", "-c", "echo o; echo e >&2"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "o\n", "{out:?}");
    assert_eq!(out.stderr, "e\n", "{out:?}");

    // Not found / cannot run.
    d.cli(["exec", "exbox", "--", "no-such-command"])
        .expect_code(127);
    d.cli(["exec", "exbox", "--", "/etc"]).expect_code(126);

    // The API: environment on top of the container's, working dir, PID ns.
    let r = d
        .exec(ExecStart {
            container_id: id.clone(),
            command: vec![
                "sh".into(),
                "-c".into(),
                "echo $FOO:$HOSTNAME:$(pwd):$$".into(),
            ],
            env: vec!["FOO=bar".into()],
            working_dir: "/bin".into(),
            ..Default::default()
        })
        .expect("Exec");
    assert_eq!(r.exit_code, 0, "{r:?}");
    let text = String::from_utf8_lossy(&r.stdout).trim().to_string();
    let parts: Vec<&str> = text.split(':').collect();
    assert_eq!(parts.len(), 4, "{text}");
    assert_eq!(&parts[..3], &["bar", "exbox", "/bin"], "{text}");
    let pid_inside: u32 = parts[3].parse().unwrap();
    assert!(pid_inside > 1 && pid_inside < 1000, "exec pid {pid_inside}");

    // Exec'd processes are gone afterwards; the workload is untouched.
    let c2 = d.get(&id).unwrap();
    assert_eq!(c2.state(), ContainerState::Running);
    assert_eq!(c2.pid, c.pid);
    d.cli(["rm", "-f", "exbox"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn exec_into_a_stopped_container_is_a_failed_precondition() {
    let d = Daemon::start();
    let id = d.run_detached(&["--name", "gone", "default", "sleep", "1000"]);
    d.wait_state(&id, &[ContainerState::Running], Duration::from_secs(30));
    d.cli(["stop", "-t", "1", "gone"]).expect_code(0);

    let out = d.cli(["exec", "gone", "--", "true"]);
    out.expect_engine_error();
    let msg = out.stderr.to_lowercase();
    assert!(
        msg.contains("running") || msg.contains("exited") || msg.contains("stopped"),
        "the message should say the container is not running: {out:?}"
    );

    let err = d
        .exec(ExecStart {
            container_id: id.clone(),
            command: vec!["true".into()],
            ..Default::default()
        })
        .expect_err("exec into a stopped container");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    // A container that never ran either.
    let created = d
        .cli(["create", "--no-start", "default", "sleep", "1"])
        .ok();
    d.cli(["exec", &created, "--", "true"])
        .expect_engine_error();

    d.cli(["rm", "gone"]).expect_code(0);
    d.cli(["rm", &created]).expect_code(0);
    assert!(host::pids_in_cgroups(&d.cgroup_parent).is_empty());
    d.assert_no_leftovers();
}
