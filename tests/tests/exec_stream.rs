//! Streaming, interactive and detached exec: PTY shells, stdin round trips,
//! exit frames (code, signal, OOM), detached execs followed, waited and
//! killed, and execs killed when their client goes away.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use quilt_tests::api::container_service_client::ContainerServiceClient;
use quilt_tests::api::exec_request::Frame as In;
use quilt_tests::api::exec_response::Frame as Out;
use quilt_tests::api::{
    ContainerState, ExecExit, ExecLogsRequest, ExecRequest, ExecStart, KillExecRequest,
    ListExecsRequest, TerminalSize, WaitExecRequest,
};
use quilt_tests::{Daemon, RPC_TIMEOUT, bin_dir, host, retry, within};
use sha2::{Digest, Sha256};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

type Client = ContainerServiceClient<Channel>;

const STEP: Duration = Duration::from_secs(30);

/// A running `sleep 1000` container named `name`.
fn running(d: &Daemon, extra: &[&str], name: &str) -> String {
    let mut args = vec!["--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["default", "sleep", "1000"]);
    let id = d.run_detached(&args);
    d.wait_state(&id, &[ContainerState::Running], STEP);
    id
}

fn start(id: &str, cmd: &[&str]) -> ExecStart {
    ExecStart {
        container_id: id.to_string(),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn req(f: In) -> ExecRequest {
    ExecRequest { frame: Some(f) }
}

/// What an Exec stream returned.
#[derive(Debug, Default)]
struct Collected {
    exec_id: String,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exit: Option<ExecExit>,
}

/// Reads an Exec (or ExecLogs) response stream to its end (bounded).
async fn collect(mut s: tonic::Streaming<quilt_tests::api::ExecResponse>) -> Collected {
    let mut c = Collected::default();
    loop {
        match tokio::time::timeout(STEP, s.message()).await {
            Ok(Ok(Some(m))) => match m.frame {
                Some(Out::Started(x)) => c.exec_id = x.exec_id,
                Some(Out::Stdout(b)) => c.stdout.extend_from_slice(&b),
                Some(Out::Stderr(b)) => c.stderr.extend_from_slice(&b),
                Some(Out::Exit(e)) => {
                    assert!(c.exit.is_none(), "two exit frames");
                    c.exit = Some(e);
                }
                None => {}
            },
            Ok(Ok(None)) => return c,
            Ok(Err(e)) => panic!("exec stream failed: {e}"),
            Err(_) => panic!("exec stream stalled for {STEP:?}: {c:?}"),
        }
    }
}

/// Exec with only a start frame; the whole stream collected.
async fn run(cl: &mut Client, s: ExecStart) -> Collected {
    let resp = within(
        RPC_TIMEOUT,
        "Exec",
        cl.exec(tokio_stream::iter([req(In::Start(s))])),
    )
    .await
    .expect("Exec")
    .into_inner();
    collect(resp).await
}

fn oom_kills(d: &Daemon, id: &str) -> u64 {
    let (file, key) = match host::cgroup_version() {
        host::CgroupVersion::V2 => (d.cgroup_dir("memory", id).join("memory.events"), "oom_kill"),
        _ => (
            d.cgroup_dir("memory", id).join("memory.oom_control"),
            "oom_kill",
        ),
    };
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let mut it = l.split_whitespace();
            (it.next()? == key).then(|| it.next()?.parse().ok())?
        })
        .unwrap_or(0)
}

/// Accumulates what a reader thread sends until `needle` shows up (bounded).
fn expect_output(rx: &std_mpsc::Receiver<Vec<u8>>, seen: &mut Vec<u8>, needle: &str) {
    let deadline = Instant::now() + STEP;
    while !String::from_utf8_lossy(seen).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(b) => seen.extend_from_slice(&b),
            Err(_) => panic!(
                "no {needle:?} on the terminal within {STEP:?}; got {:?}",
                String::from_utf8_lossy(seen)
            ),
        }
    }
}

#[test]
fn interactive_shell_through_a_pty() {
    let d = Daemon::start();
    running(&d, &[], "ttybox");

    let size = nix::pty::Winsize {
        ws_row: 33,
        ws_col: 77,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let slave = std::fs::File::from(pty.slave);
    let mut child = Command::new(bin_dir().join("quilt"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["exec", "-it", "ttybox", "--", "sh"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .expect("spawn quilt exec -it");
    let mut master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().unwrap();
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    // A terminal inside, of the size of ours; the arithmetic proves the
    // shell ran the line (the echo of the typed line does not contain 42).
    master
        .write_all(b"test -t 0 && echo IS-A-TTY; echo size=$(stty size); echo $((6*7))X\n")
        .unwrap();
    expect_output(&rx, &mut seen, "42X");
    let text = String::from_utf8_lossy(&seen).to_string();
    assert!(text.contains("IS-A-TTY"), "{text:?}");
    assert!(text.contains("size=33 77"), "{text:?}");

    // Ctrl-C reaches the remote terminal (raw mode here): it interrupts the
    // foreground command, not the session.
    master.write_all(b"sleep 4321\n").unwrap();
    let is_sleep = |p: &i32| host::proc_cmdline(*p) == ["sleep", "4321"];
    retry(STEP, || host::all_pids().into_iter().find(is_sleep))
        .expect("the shell should run sleep 4321");
    master.write_all(&[3]).unwrap();
    master.write_all(b"echo after-$((1+1))\n").unwrap();
    expect_output(&rx, &mut seen, "after-2");

    master.write_all(b"exit 3\n").unwrap();
    let status = retry(STEP, || child.try_wait().unwrap()).expect("quilt exec -it exited");
    assert_eq!(status.code(), Some(3), "{}", String::from_utf8_lossy(&seen));
    d.cli(["rm", "-f", "ttybox"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn resize_and_signal_frames_reach_a_pty_command() {
    let d = Daemon::start();
    let id = running(&d, &[], "resize");
    d.block_on(async {
        let mut cl = d.client().await;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let s = ExecStart {
            tty: true,
            attach_stdin: true,
            terminal_size: Some(TerminalSize { rows: 10, cols: 20 }),
            ..start(&id, &["sh"])
        };
        tx.send(req(In::Start(s))).await.unwrap();
        let mut out = within(RPC_TIMEOUT, "Exec", cl.exec(ReceiverStream::new(rx)))
            .await
            .unwrap()
            .into_inner();
        let mut text = String::new();
        let mut until = async |needle: &str, text: &mut String| {
            while !text.contains(needle) {
                match tokio::time::timeout(STEP, out.message()).await {
                    Ok(Ok(Some(m))) => match m.frame {
                        Some(Out::Stdout(b)) => text.push_str(&String::from_utf8_lossy(&b)),
                        Some(Out::Stderr(_)) => panic!("a tty has no separate stderr"),
                        Some(Out::Exit(e)) => return Some(e),
                        _ => {}
                    },
                    other => panic!("waiting for {needle:?}: {other:?}; got {text:?}"),
                }
            }
            None
        };
        tx.send(req(In::Stdin(b"echo A=$(stty size)\n".to_vec())))
            .await
            .unwrap();
        until("A=10 20", &mut text).await;
        tx.send(req(In::Resize(TerminalSize {
            rows: 40,
            cols: 100,
        })))
        .await
        .unwrap();
        tx.send(req(In::Stdin(b"echo B=$(stty size)\n".to_vec())))
            .await
            .unwrap();
        until("B=40 100", &mut text).await;
        // A signal frame to the command (the shell): killed by it.
        tx.send(req(In::Signal("KILL".into()))).await.unwrap();
        let exit = until("never printed", &mut text).await.expect("exit frame");
        assert_eq!((exit.exit_code, exit.signal), (137, 9), "{text:?}");
    });
    d.cli(["rm", "-f", "resize"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn stdin_round_trips_ten_megabytes_through_cat() {
    let d = Daemon::start();
    let id = running(&d, &[], "catbox");
    let data: Vec<u8> = (0..10u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let want = Sha256::digest(&data);
    let t0 = Instant::now();
    let got = d.block_on(async {
        let mut cl = d.client().await;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let s = ExecStart {
            attach_stdin: true,
            ..start(&id, &["cat"])
        };
        tx.send(req(In::Start(s))).await.unwrap();
        let feed = data.clone();
        tokio::spawn(async move {
            for chunk in feed.chunks(64 * 1024) {
                if tx.send(req(In::Stdin(chunk.to_vec()))).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(req(In::CloseStdin(true))).await;
        });
        let resp = within(RPC_TIMEOUT, "Exec", cl.exec(ReceiverStream::new(rx)))
            .await
            .unwrap()
            .into_inner();
        collect(resp).await
    });
    let elapsed = t0.elapsed();
    eprintln!("10 MiB through cat: {elapsed:?}");
    assert_eq!(got.exit.map(|e| e.exit_code), Some(0), "{:?}", got.stderr);
    assert_eq!(got.stdout.len(), data.len());
    assert_eq!(
        Sha256::digest(&got.stdout),
        want,
        "output differs from input"
    );
    assert!(
        got.stderr.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&got.stderr)
    );

    // The CLI: -i relays stdin to the end and exits with the command's code.
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), &data[..1024 * 1024]).unwrap();
    let child = Command::new(bin_dir().join("quilt"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["exec", "-i", "catbox", "--", "sh", "-c", "cat; exit 5"])
        .stdin(std::fs::File::open(input.path()).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a hung CLI fails the test instead of hanging the suite.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("quilt exec -i did not finish within 60 s");
        }
    };
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(out.stdout.len(), 1024 * 1024);
    assert!(out.stdout == data[..1024 * 1024], "CLI output differs");
    d.cli(["rm", "-f", "catbox"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn exit_frames_report_code_signal_and_oom() {
    let d = Daemon::start();
    let id = running(&d, &["--memory", "32"], "exits");
    let before = oom_kills(&d, &id);
    let (normal, killed, oom, separate) = d.block_on(async {
        let mut cl = d.client().await;
        let normal = run(&mut cl, start(&id, &["sh", "-c", "echo out; exit 7"])).await;
        let killed = run(&mut cl, start(&id, &["sh", "-c", "kill -9 $$"])).await;
        let oom = run(
            &mut cl,
            start(
                &id,
                &["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"],
            ),
        )
        .await;
        let separate = run(&mut cl, start(&id, &["sh", "-c", "echo o; echo e >&2"])).await;
        // A background process keeping the output open does not hold up
        // the exit frame (bounded by the RPC timeout).
        let bg = within(RPC_TIMEOUT, "Exec with a background process", async {
            Ok(run(&mut cl, start(&id, &["sh", "-c", "sleep 999 & echo bg"])).await)
        })
        .await
        .unwrap();
        assert_eq!(bg.stdout, b"bg\n");
        assert_eq!(bg.exit.map(|e| e.exit_code), Some(0));
        (normal, killed, oom, separate)
    });
    let e = normal.exit.expect("exit frame");
    assert_eq!((e.exit_code, e.signal, e.oom_killed), (7, 0, false));
    assert_eq!(normal.stdout, b"out\n");
    assert!(!normal.exec_id.is_empty());

    let e = killed.exit.expect("exit frame");
    assert_eq!((e.exit_code, e.signal, e.oom_killed), (137, 9, false));

    let e = oom.exit.expect("exit frame");
    let after = oom_kills(&d, &id);
    assert!(
        after > before,
        "the cgroup recorded no OOM kill ({before} -> {after})"
    );
    assert_eq!(
        (e.exit_code, e.signal, e.oom_killed),
        (137, 9, true),
        "{oom:?}"
    );

    assert_eq!(separate.stdout, b"o\n");
    assert_eq!(separate.stderr, b"e\n");
    // The workload survived all of it.
    assert_eq!(d.get(&id).unwrap().state(), ContainerState::Running);
    d.cli(["rm", "-f", "exits"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn detached_execs_are_followed_waited_and_killed() {
    let d = Daemon::start();
    let id = running(&d, &[], "detach");
    let (exec_id, sleeper) = d.block_on(async {
        let mut cl = d.client().await;
        let script = "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; exit 4";
        let s = ExecStart {
            detach: true,
            ..start(&id, &["sh", "-c", script])
        };
        let started = run(&mut cl, s).await;
        assert!(started.exit.is_none(), "detached exec answered with exit");
        assert!(started.stdout.is_empty());
        let exec_id = started.exec_id;
        assert!(!exec_id.is_empty());

        // Followed from its start to its exit.
        let logs = within(
            RPC_TIMEOUT,
            "ExecLogs",
            cl.exec_logs(ExecLogsRequest {
                exec_id: exec_id.clone(),
                follow: true,
            }),
        )
        .await
        .unwrap()
        .into_inner();
        let logs = collect(logs).await;
        assert_eq!(logs.stdout, b"one\nthree\n");
        assert_eq!(logs.stderr, b"two\n");
        assert_eq!(logs.exit.map(|e| e.exit_code), Some(4));

        let w = within(
            RPC_TIMEOUT,
            "WaitExec",
            cl.wait_exec(WaitExecRequest {
                exec_id: exec_id.clone(),
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .exec
        .unwrap();
        assert!(!w.running && w.detached);
        assert_eq!(w.exit.map(|e| e.exit_code), Some(4));
        assert!(w.finished_at.is_some());

        // Killed while it runs.
        let s = ExecStart {
            detach: true,
            ..start(&id, &["sleep", "1000"])
        };
        let sleeper = run(&mut cl, s).await.exec_id;
        let list = cl
            .list_execs(ListExecsRequest {
                container_id: "detach".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .execs;
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(list.iter().any(|e| e.exec_id == sleeper && e.running));
        within(
            RPC_TIMEOUT,
            "KillExec",
            cl.kill_exec(KillExecRequest {
                exec_id: sleeper.clone(),
                signal: String::new(),
            }),
        )
        .await
        .unwrap();
        let w = within(
            RPC_TIMEOUT,
            "WaitExec",
            cl.wait_exec(WaitExecRequest {
                exec_id: sleeper.clone(),
            }),
        )
        .await
        .unwrap()
        .into_inner()
        .exec
        .unwrap();
        let e = w.exit.unwrap();
        assert_eq!((e.exit_code, e.signal), (137, 9));
        let err = cl
            .kill_exec(KillExecRequest {
                exec_id: sleeper.clone(),
                signal: "TERM".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        let err = cl
            .wait_exec(WaitExecRequest {
                exec_id: "0123nosuch".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        (exec_id, sleeper)
    });

    // The CLI.
    let cli_id = d
        .cli(["exec", "-d", "detach", "--", "sh", "-c", "echo hi; exit 5"])
        .ok();
    assert_eq!(d.cli(["exec-wait", &cli_id]).ok(), "5");
    let logs = d.cli(["exec-logs", "-f", &cli_id]);
    logs.expect_code(0);
    assert_eq!(logs.stdout, "hi\n");
    let ls = d.cli(["exec-ls", "detach"]).ok();
    for x in [&exec_id, &sleeper, &cli_id] {
        assert!(ls.contains(x.as_str()), "{ls}");
    }
    d.cli(["exec-kill", &cli_id]).expect_engine_error();

    // Removing the container forgets its execs.
    d.cli(["rm", "-f", "detach"]).expect_code(0);
    d.cli(["exec-wait", &cli_id]).expect_engine_error();
    d.assert_no_leftovers();
}

#[test]
fn an_attached_exec_dies_with_its_client() {
    let d = Daemon::start();
    let id = running(&d, &[], "dropper");
    d.block_on(async {
        let mut cl = d.client().await;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(req(In::Start(ExecStart {
            attach_stdin: true,
            ..start(&id, &["sleep", "1000"])
        })))
        .await
        .unwrap();
        // A separate connection, so that dropping it is a real disconnect.
        let mut other = d.client().await;
        let mut resp = within(RPC_TIMEOUT, "Exec", other.exec(ReceiverStream::new(rx)))
            .await
            .unwrap()
            .into_inner();
        let first = resp.message().await.unwrap().unwrap();
        let Some(Out::Started(s)) = first.frame else {
            panic!("first frame: {first:?}")
        };
        drop(resp);
        drop(other);
        drop(tx);
        let w = within(
            STEP,
            "WaitExec",
            cl.wait_exec(WaitExecRequest {
                exec_id: s.exec_id.clone(),
            }),
        )
        .await
        .expect("the exec should end once its client is gone")
        .into_inner()
        .exec
        .unwrap();
        assert_eq!(w.exit.map(|e| e.signal), Some(9));
    });
    d.cli(["rm", "-f", "dropper"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn detached_execs_outlive_the_daemon_and_are_still_served() {
    let mut d = Daemon::start();
    let id = running(&d, &["-v", "keepvol:/sync"], "keeper");
    // One that keeps running across restarts, one that finishes while the
    // daemon is down, one that ends after the restart.
    let long = d
        .cli([
            "exec",
            "-d",
            "keeper",
            "--",
            "sh",
            "-c",
            "echo started; exec sleep 4444",
        ])
        .ok();
    let quick = d
        .cli([
            "exec",
            "-d",
            "keeper",
            "--",
            "sh",
            "-c",
            "while [ ! -e /sync/go ]; do sleep 0.1; done; echo done; exit 7",
        ])
        .ok();
    let is_sleep = |p: &i32| host::proc_cmdline(*p) == ["sleep", "4444"];
    let pid =
        retry(STEP, || host::all_pids().into_iter().find(is_sleep)).expect("the exec'd sleep runs");

    // SIGKILL of quiltd: the execs live on.
    d.kill9();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        host::pid_alive(pid),
        "the detached exec died with the daemon"
    );
    // Released while the daemon is down (through the shared volume).
    std::fs::write(d.data_dir.join("volumes/keepvol/data/go"), b"").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.restart();

    // Still known, served from what survived.
    let ls = d.cli(["exec-ls", "keeper"]).ok();
    assert!(ls.contains(&long) && ls.contains(&quick), "{ls}");
    assert_eq!(d.cli(["exec-wait", &quick]).ok(), "7");
    let out = d.cli(["exec-logs", &quick]);
    assert_eq!(out.stdout, "done\n", "{out:?}");
    let out = d.cli(["exec-logs", &long]);
    assert_eq!(out.stdout, "started\n", "{out:?}");
    assert!(host::pid_alive(pid));

    // A graceful restart too.
    d.restart();
    assert!(
        host::pid_alive(pid),
        "the detached exec died with a graceful restart"
    );
    d.cli(["exec-kill", "-s", "TERM", &long]).expect_code(0);
    assert_eq!(d.cli(["exec-wait", &long]).ok(), "143");
    assert!(host::wait_pid_gone(pid, STEP));
    d.cli(["rm", "-f", "keeper"]).expect_code(0);
    d.cli(["exec-wait", &long]).expect_engine_error();
    d.cli(["volume", "rm", "keepvol"]).expect_code(0);
    let _ = &id;
    d.assert_no_leftovers();
}
