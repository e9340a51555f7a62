//! Third-party gRPC clients on quiltd's Unix socket, with their default
//! options: Python's grpcio (reflection v1alpha, a unary and a streaming
//! call, health), grpcurl 1.8 (list, describe, invoke, without -authority),
//! and grpc.health.v1 Watch across a SIGTERM. The clients are installed by
//! the harness (`quilt_tests::python`).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use quilt_tests::Daemon;
use quilt_tests::cli::run_program;
use quilt_tests::python::clients;

const T: Duration = Duration::from_secs(120);

fn os<S: AsRef<std::ffi::OsStr>>(s: S) -> OsString {
    s.as_ref().to_owned()
}

#[test]
fn python_grpcio_with_default_options() {
    let py = clients();
    let d = Daemon::start();
    let out = run_program(
        &py.python,
        &[os(py.script("grpc_client.py")), os(&d.socket)],
        &[],
        T,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.ends_with("all passed\n"), "{out:?}");
    // The containers it made, it removed.
    assert!(d.list().is_empty(), "{:?}", d.list());
}

#[test]
fn grpcurl_lists_describes_and_invokes_on_the_socket() {
    let py = clients();
    let d = Daemon::start();
    let grpcurl = |args: &[&str]| {
        let mut all = vec![os("-plaintext"), os("-unix")];
        all.extend(args.iter().map(os));
        run_program(&py.grpcurl, &all, &[], T)
    };
    let sock = d.socket.to_str().expect("utf-8 socket path");
    let version = grpcurl(&["-version"]);
    assert!(
        version.stdout.contains("v1.8") || version.stderr.contains("v1.8"),
        "{version:?}"
    );
    let list = grpcurl(&[sock, "list"]);
    assert_eq!(list.code, Some(0), "{list:?}");
    assert_eq!(
        list.lines(),
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "quilt.v1.ContainerService",
            "quilt.v1.ImageService",
            "quilt.v1.NetworkService",
            "quilt.v1.SystemService",
            "quilt.v1.VolumeService"
        ]
    );
    let describe = grpcurl(&[sock, "describe", "quilt.v1.ListContainersRequest"]);
    assert_eq!(describe.code, Some(0), "{describe:?}");
    for field in ["uint32 page_size = 4;", "string page_token = 5;"] {
        assert!(describe.stdout.contains(field), "{describe:?}");
    }
    let created = grpcurl(&[
        "-d",
        r#"{"image": "default", "command": ["true"], "name": "via-grpcurl", "no_start": true}"#,
        sock,
        "quilt.v1.ContainerService/CreateContainer",
    ]);
    assert_eq!(created.code, Some(0), "{created:?}");
    let id = created.json()["id"].as_str().expect("an id").to_owned();
    assert_eq!(d.get("via-grpcurl").expect("created").id, id);
    let health = grpcurl(&[
        "-d",
        r#"{"service": "quilt.v1.ImageService"}"#,
        sock,
        "grpc.health.v1.Health/Check",
    ]);
    assert_eq!(health.json()["status"], "SERVING", "{health:?}");
    let unknown = grpcurl(&[
        "-d",
        r#"{"service": "no.such.Service"}"#,
        sock,
        "grpc.health.v1.Health/Check",
    ]);
    assert_ne!(unknown.code, Some(0), "{unknown:?}");
    assert!(unknown.stderr.contains("NotFound"), "{unknown:?}");
    d.cli(["rm", &id]).expect_code(0);
}

/// Lines of a child's stdout, read on a thread so that every wait is bounded.
fn lines_of(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until `n` have come (or the time is up).
fn take(rx: &mpsc::Receiver<String>, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < n {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => got.push(l),
            Err(_) => break,
        }
    }
    got
}

#[test]
fn health_watchers_hear_not_serving_before_a_sigterm_closes_them() {
    let py = clients();
    let mut d = Daemon::start();
    let mut watch = Command::new(&py.python)
        .arg(py.script("health_watch.py"))
        .arg(&d.socket)
        .args(["", "quilt.v1.ContainerService", "no.such.Service"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn health_watch.py");
    let rx = lines_of(&mut watch);
    let mut first = take(&rx, 3);
    first.sort();
    assert_eq!(
        first,
        [
            "WATCH \"\" SERVING",
            "WATCH no.such.Service SERVICE_UNKNOWN",
            "WATCH quilt.v1.ContainerService SERVING",
        ]
    );
    let status = d.stop().expect("quiltd exit status");
    assert!(status.success(), "{status:?}");
    // Each watcher heard NOT_SERVING, then its stream ended (lines of one
    // watcher come in order).
    let rest = take(&rx, 6);
    for s in ["\"\"", "no.such.Service", "quilt.v1.ContainerService"] {
        let mine: Vec<&String> = rest
            .iter()
            .filter(|l| l.split(' ').nth(1) == Some(s))
            .collect();
        assert_eq!(mine.len(), 2, "{rest:?}");
        assert_eq!(*mine[0], format!("WATCH {s} NOT_SERVING"), "{rest:?}");
        assert!(mine[1].starts_with(&format!("END {s} ")), "{rest:?}");
    }
    let exit = watch.wait().expect("health_watch.py exit");
    assert!(exit.success(), "{exit:?}");
    d.restart();
}
