//! A terminal and stdin for a container's main process: `run -i`, `run -it`
//! (typing, resizing, detaching with ctrl-p ctrl-q), `attach`, `start -a -i`,
//! and the same through the Docker API with docker's own CLI (`docker run
//! -it` under a terminal, detach and `docker attach`, `docker run -i` with
//! piped input).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use quilt_tests::api::ContainerState;
use quilt_tests::cli::run_program;
use quilt_tests::docker::docker_clients;
use quilt_tests::{Daemon, bin_dir, retry};

const STEP: Duration = Duration::from_secs(30);

/// A command on a terminal of the test's own (33 rows, 77 columns).
struct Term {
    child: Child,
    master: std::fs::File,
    rx: std_mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Term {
    fn spawn(program: &Path, args: &[&str], env: &[(String, String)]) -> Term {
        let size = nix::pty::Winsize {
            ws_row: 33,
            ws_col: 77,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let slave = std::fs::File::from(pty.slave);
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave)
            .spawn()
            .expect("spawn on a terminal");
        let master = std::fs::File::from(pty.master);
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
        Term {
            child,
            master,
            rx,
            seen: Vec::new(),
        }
    }

    fn quilt(d: &Daemon, args: &[&str]) -> Term {
        let mut all = vec!["--socket", d.socket.to_str().unwrap()];
        all.extend_from_slice(args);
        Term::spawn(&bin_dir().join("quilt"), &all, &[])
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    fn type_in(&mut self, s: &[u8]) {
        self.master.write_all(s).unwrap();
    }

    /// Waits (bounded) until `needle` was printed after what was seen so far.
    fn expect(&mut self, needle: &str) {
        let from = self.seen.len();
        let deadline = Instant::now() + STEP;
        while !String::from_utf8_lossy(&self.seen[from..]).contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.extend_from_slice(&b),
                Err(_) => panic!("no {needle:?} on the terminal; got {:?}", self.text()),
            }
        }
    }

    /// Our terminal gets a new size, and the client is told (SIGWINCH).
    fn resize(&mut self, rows: u16, cols: u16) {
        rustix::termios::tcsetwinsize(
            &self.master,
            rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGWINCH,
        )
        .unwrap();
    }

    fn exit_code(&mut self) -> Option<i32> {
        let status = retry(STEP, || self.child.try_wait().unwrap()).unwrap_or_else(|| {
            let _ = self.child.kill();
            panic!("the client did not exit; terminal: {:?}", self.text())
        });
        // Whatever it printed last.
        while let Ok(b) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.seen.extend_from_slice(&b);
        }
        status.code()
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn run_it_types_resizes_detaches_and_attaches_again() {
    let d = Daemon::start();
    let mut t = Term::quilt(&d, &["run", "-it", "--name", "shell", "default", "sh"]);
    // A terminal of the container's own, of the size of ours; the
    // arithmetic proves the shell ran the line (its echo has no 42).
    t.type_in(b"test -t 0 && echo IS-A-TTY; tty; echo size=$(stty size); echo $((6*7))X\n");
    t.expect("42X");
    let text = t.text();
    assert!(text.contains("IS-A-TTY"), "{text:?}");
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("size=33 77"), "{text:?}");
    t.resize(40, 100);
    // The resize goes first; a moment for the signal to be handled.
    std::thread::sleep(Duration::from_millis(300));
    t.type_in(b"echo size=$(stty size)\n");
    t.expect("size=40 100");
    // ctrl-p ctrl-q: the client leaves, the shell runs on.
    t.type_in(&[0x10, 0x11]);
    assert_eq!(t.exit_code(), Some(0), "{:?}", t.text());
    assert!(t.text().contains("read escape sequence"), "{:?}", t.text());
    let c = d.get("shell").unwrap();
    assert_eq!(c.state, ContainerState::Running as i32);
    let stdio = c.stdio.unwrap_or_default();
    assert!(
        stdio.tty && stdio.open_stdin && stdio.stdin_once,
        "{stdio:?}"
    );

    // Attached again: typing reaches the same shell, its exit ends the client.
    let mut t = Term::quilt(&d, &["attach", "shell"]);
    t.type_in(b"echo again-$((1+2))\n");
    t.expect("again-3");
    t.type_in(b"exit 3\n");
    assert_eq!(t.exit_code(), Some(3), "{:?}", t.text());
    // Everything the terminal showed is in the log too.
    let logs = d.cli(["logs", "shell"]).ok();
    assert!(logs.contains("42X") && logs.contains("again-3"), "{logs:?}");
    d.cli(["rm", "shell"]).expect_code(0);
    d.assert_no_leftovers();
}

#[test]
fn run_i_feeds_piped_input_and_closes_it_at_its_end() {
    let d = Daemon::start();
    let mut child = Command::new(bin_dir().join("quilt"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["run", "-i", "--rm", "default", "sh", "-c"])
        .arg("cat; echo end-of-input; exit 5")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // More than a pipe holds: input waits for the container, never lost.
    let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(big.as_bytes()).unwrap();
    });
    // Output is read as it comes (a full pipe would stall the client).
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = rx
        .recv_timeout(STEP * 2)
        .expect("quilt run -i did not end")
        .unwrap();
    writer.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        20_001,
        "{:?}",
        &lines[lines.len().saturating_sub(3)..]
    );
    assert_eq!(lines[0], "line 0");
    assert_eq!(lines[19_999], "line 19999");
    assert_eq!(lines[20_000], "end-of-input");
    // Without -i the workload reads end of file at once.
    let out = d.cli(["run", "--rm", "default", "sh", "-c", "cat; echo no-input"]);
    assert_eq!(out.ok(), "no-input");
    d.assert_no_leftovers();
}

#[test]
fn start_a_i_and_what_is_refused() {
    let d = Daemon::start();
    d.cli([
        "create",
        "-i",
        "--no-start",
        "--name",
        "reader",
        "default",
        "sh",
        "-c",
        "read x; echo got-$x; exit 7",
    ])
    .expect_code(0);
    let mut child = Command::new(bin_dir().join("quilt"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["start", "-a", "-i", "reader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-hello\n");

    // Attaching to what cannot be attached: clear errors, non-zero exits.
    let out = d.cli(["attach", "reader"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("start it first"), "{out:?}");
    let id = d.run_detached(&["--name", "plain", "default", "sleep", "600"]);
    d.wait_state(&id, &[ContainerState::Running], STEP);
    let out = d.cli(["start", "-a", "plain", "reader"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("multiple"), "{out:?}");
    let out = d.cli(["run", "--detach-keys", "ctrl-1", "default", "true"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("detach key"), "{out:?}");
    // -it needs a terminal here, as with docker.
    let out = d.cli(["run", "-it", "default", "sh"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("not a TTY"), "{out:?}");
    // A container without -t has no terminal to resize.
    let status = d.block_on(async {
        let mut c = d.client().await;
        c.resize_container(quilt_tests::api::ResizeContainerRequest {
            id: "plain".into(),
            size: Some(quilt_tests::api::TerminalSize { rows: 10, cols: 10 }),
        })
        .await
    });
    assert_eq!(status.unwrap_err().code(), tonic::Code::FailedPrecondition);
    d.cli(["rm", "-f", "plain", "reader"]).expect_code(0);
    assert_eq!(d.cli(["ps", "-aq"]).ok(), "");
    d.assert_no_leftovers();
}

/// The docker CLI's environment: our socket, a private config dir.
fn docker_env(sock: &Path) -> Vec<(String, String)> {
    vec![
        ("DOCKER_HOST".into(), format!("unix://{}", sock.display())),
        (
            "DOCKER_CONFIG".into(),
            sock.parent().unwrap().join("cfg").display().to_string(),
        ),
    ]
}

fn docker_daemon() -> (Daemon, tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("quilt-attach-")
        .tempdir_in("/tmp")
        .unwrap();
    let sock = dir.path().join("docker.sock");
    let d = Daemon::builder()
        .args(&["--docker-socket", sock.to_str().unwrap()])
        .start();
    (d, dir, sock)
}

#[test]
fn docker_run_it_and_run_i_through_the_docker_api() {
    let docker = &docker_clients().docker;
    let (d, _dir, sock) = docker_daemon();
    let env = docker_env(&sock);
    let mut t = Term::spawn(
        docker,
        &["run", "-it", "--name", "dshell", "default", "sh"],
        &env,
    );
    t.type_in(b"echo size=$(stty size); echo $((6*7))X\n");
    t.expect("42X");
    assert!(t.text().contains("size=33 77"), "{:?}", t.text());
    t.resize(40, 100);
    std::thread::sleep(Duration::from_millis(300));
    t.type_in(b"echo size=$(stty size)\n");
    t.expect("size=40 100");
    // ctrl-p ctrl-q: docker's client leaves, the shell runs on.
    t.type_in(&[0x10, 0x11]);
    assert_eq!(t.exit_code(), Some(0), "{:?}", t.text());
    let c = d.get("dshell").unwrap();
    assert_eq!(c.state, ContainerState::Running as i32);
    let mut t = Term::spawn(docker, &["attach", "dshell"], &env);
    t.type_in(b"echo back-$((2+2))\n");
    t.expect("back-4");
    t.type_in(b"exit 4\n");
    assert_eq!(t.exit_code(), Some(4), "{:?}", t.text());
    let inspect = run_program(
        docker,
        &[
            "inspect",
            "-f",
            "{{.Config.Tty}} {{.Config.OpenStdin}}",
            "dshell",
        ]
        .map(OsString::from),
        &env,
        STEP,
    );
    assert_eq!(inspect.ok(), "true true");

    // Piped input, closed at its end (StdinOnce).
    let mut child = Command::new(docker)
        .args(["run", "-i", "--rm", "default", "sh", "-c", "cat; echo end"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"one\ntwo\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\nend\n");
    d.cli(["rm", "dshell"]).expect_code(0);
    d.assert_no_leftovers();
}
