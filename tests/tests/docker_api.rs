//! The Docker Engine API (`quiltd --docker-socket`) with docker's own
//! clients: docker-py doing what agent frameworks do
//! (tests/python/docker_client.py), the docker CLI (20.10, from Debian's
//! docker.io; only its client binary), and raw HTTP for the socket itself
//! and the error shape. Clients are installed by `quilt_tests::docker`.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quilt_tests::cli::{CliOutput, run_program};
use quilt_tests::docker::docker_clients;
use quilt_tests::{Daemon, IMAGE};

const T: Duration = Duration::from_secs(180);

/// A daemon serving the Docker API on a socket of a temp dir of its own.
fn daemon() -> (Daemon, tempfile::TempDir, PathBuf) {
    daemon_in(None)
}

/// The same, with quiltd in the test's network namespace (where its bridges
/// and rules are made) when one is given.
fn daemon_in(ns: Option<&quilt_tests::TestNetns>) -> (Daemon, tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("quilt-docker-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let sock = dir.path().join("docker.sock");
    let mut b = Daemon::builder().args(&["--docker-socket", sock.to_str().expect("utf-8")]);
    if let Some(ns) = ns {
        b = b.netns(ns);
    }
    (b.start(), dir, sock)
}

/// One HTTP/1.1 request on the socket; returns the status line's code,
/// the headers (lower-case names) and the body.
fn http(sock: &Path, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut s = UnixStream::connect(sock).expect("connect to the docker socket");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read the answer");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a full HTTP answer");
    let code = head[9..12].parse().expect("a status code");
    (code, head.to_ascii_lowercase(), rest.to_owned())
}

/// The docker CLI's environment: our socket, a private config dir.
fn docker_env(sock: &Path) -> Vec<(String, String)> {
    vec![
        (
            "DOCKER_HOST".to_owned(),
            format!("unix://{}", sock.display()),
        ),
        (
            "DOCKER_CONFIG".to_owned(),
            sock.parent().unwrap().join("cfg").display().to_string(),
        ),
    ]
}

fn docker(sock: &Path, args: &[&str]) -> CliOutput {
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    run_program(&docker_clients().docker, &args, &docker_env(sock), T)
}

/// A named image: a directory with a static busybox, imported.
fn import_named(d: &Daemon, dir: &Path, name: &str) {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static (scripts/deps.sh)");
    for tool in ["sh", "echo", "cat", "ls", "sleep", "mkdir", "httpd"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
    }
    d.cli(["image", "import", root.to_str().unwrap(), "--name", name])
        .ok();
}

#[test]
fn docker_py_does_what_agent_frameworks_do() {
    let py = docker_clients();
    let (d, dir, sock) = daemon();
    import_named(&d, dir.path(), "agentimg");
    let out = run_program(
        &py.python,
        &[
            py.script("docker_client.py").into(),
            sock.clone().into(),
            IMAGE.into(),
            "agentimg".into(),
        ],
        &[],
        T,
    );
    assert_eq!(out.code, Some(0), "{out:?}\n{}", d.log_tail(40));
    assert!(out.stdout.ends_with("all passed\n"), "{out:?}");
    assert!(d.list().is_empty(), "{:?}", d.list());
}

#[test]
fn docker_cli_runs_execs_copies_and_removes() {
    let (d, dir, sock) = daemon();
    let out = docker(&sock, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(out.stdout.trim(), "1.41", "{out:?}");

    let out = docker(&sock, &["run", "--rm", IMAGE, "echo", "hi"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "hi\n"),
        "{out:?}"
    );
    let out = docker(&sock, &["run", "--rm", IMAGE, "sh", "-c", "exit 3"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(d.list().is_empty(), "--rm removed it: {:?}", d.list());

    let id = docker(
        &sock,
        &[
            "run",
            "-d",
            "--name",
            "box",
            "-e",
            "X=1",
            IMAGE,
            "sh",
            "-c",
            "echo up; echo warn >&2; exec sleep 300",
        ],
    )
    .ok();
    assert_eq!(id.trim().len(), 64, "{id:?}");
    let out = docker(
        &sock,
        &["exec", "box", "sh", "-c", "echo $X; echo e >&2; exit 5"],
    );
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (Some(5), "1\n", "e\n"),
        "{out:?}"
    );
    let out = docker(
        &sock,
        &[
            "exec",
            "-w",
            "/tmp",
            "-u",
            "1000",
            "box",
            "sh",
            "-c",
            "pwd; id -u",
        ],
    );
    assert_eq!(out.stdout, "/tmp\n1000\n", "{out:?}");

    let out = docker(&sock, &["exec", "-t", "box", "sh", "-c", "tty; echo x"]);
    assert_eq!(out.stdout, "/dev/pts/0\r\nx\r\n", "{out:?}");
    let piped = format!(
        "printf 'through stdin\\n' | {} exec -i box cat",
        docker_clients().docker.display()
    );
    let out = run_program(
        Path::new("sh"),
        &["-c".into(), piped.into()],
        &docker_env(&sock),
        T,
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "through stdin\n"),
        "{out:?}"
    );

    let ps = docker(&sock, &["ps", "--format", "{{.Names}} {{.Status}}"]).ok();
    assert!(ps.starts_with("box Up"), "{ps:?}");
    let ps = docker(&sock, &["ps", "-aq", "--filter", "name=nothing-like-it"]).ok();
    assert_eq!(ps, "");

    docker(
        &sock,
        &[
            "run",
            "-d",
            "--name",
            "counter",
            IMAGE,
            "sh",
            "-c",
            "for i in 1 2 3; do echo n$i; sleep 0.2; done",
        ],
    )
    .ok();
    let out = docker(&sock, &["logs", "-f", "counter"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "n1\nn2\nn3\n"),
        "{out:?}"
    );
    docker(&sock, &["rm", "counter"]).ok();

    let logs = docker(&sock, &["logs", "box"]);
    assert_eq!(
        (logs.stdout.as_str(), logs.stderr.as_str()),
        ("up\n", "warn\n"),
        "{logs:?}"
    );

    // cp both ways, into a directory and to a new name.
    let local = dir.path().join("in.txt");
    std::fs::write(&local, "payload\n").unwrap();
    docker(&sock, &["cp", local.to_str().unwrap(), "box:/tmp/"]).ok();
    docker(
        &sock,
        &["cp", local.to_str().unwrap(), "box:/tmp/renamed.txt"],
    )
    .ok();
    let out = docker(
        &sock,
        &["exec", "box", "cat", "/tmp/in.txt", "/tmp/renamed.txt"],
    );
    assert_eq!(out.stdout, "payload\npayload\n", "{out:?}");
    let back = dir.path().join("back.txt");
    docker(
        &sock,
        &["cp", "box:/tmp/renamed.txt", back.to_str().unwrap()],
    )
    .ok();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "payload\n");
    let out = docker(&sock, &["cp", "box:/no/such", back.to_str().unwrap()]);
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("No such container:path: box:/no/such"),
        "{out:?}"
    );

    let out = docker(
        &sock,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.Env}}",
            "box",
        ],
    );
    assert_eq!(out.stdout.trim(), "running true /box [X=1]", "{out:?}");

    docker(&sock, &["stop", "-t", "1", "box"]).ok();
    let out = docker(
        &sock,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "box",
        ],
    );
    assert_eq!(
        out.stdout.trim(),
        "exited 137",
        "sleep ignores SIGTERM as PID 1: {out:?}"
    );
    docker(&sock, &["rm", "box"]).ok();
    let out = docker(&sock, &["inspect", "box"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("No such object: box"), "{out:?}");

    let images = docker(&sock, &["images", "-q"]);
    assert_eq!(images.code, Some(0), "{images:?}");
    // Refused with docker's words, never silently ignored.
    let out = docker(&sock, &["run", "-d", "-P", IMAGE, "true"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("PublishAllPorts"), "{out:?}");
    assert!(d.list().is_empty(), "{:?}", d.list());
}

#[test]
fn the_socket_speaks_docker_http_and_errors() {
    let (mut d, _dir, sock) = daemon();
    let meta = std::fs::metadata(&sock).expect("the docker socket exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.uid(), 0);

    let (code, head, body) = http(&sock, "GET", "/_ping", "");
    assert_eq!((code, body.as_str()), (200, "OK"));
    assert!(head.contains("api-version: 1.41"), "{head}");
    let (code, _, body) = http(&sock, "HEAD", "/_ping", "");
    assert_eq!((code, body.as_str()), (200, ""));
    let (code, _, body) = http(&sock, "GET", "/v1.41/version", "");
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["ApiVersion"],
        "1.41"
    );
    let (code, _, body) = http(&sock, "GET", "/v1.12/version", "");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too old"), "{body}");

    // Errors are {"message": ...} with docker's status codes.
    let msg = |body: &str| {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (code, _, body) = http(&sock, "GET", "/containers/nope/json", "");
    assert_eq!(
        (code, msg(&body)),
        (404, "No such container: nope".to_owned())
    );
    let (code, _, body) = http(&sock, "GET", "/v1.41/containers/x/stats?stream=false", "");
    assert_eq!(code, 404, "{body}");
    let (code, _, body) = http(&sock, "GET", "/v1.41/containers/x/stats", "");
    assert_eq!(code, 404, "{body}");
    let (code, _, body) = http(&sock, "DELETE", "/networks/host", "");
    assert_eq!(code, 403, "{body}");
    let (code, _, body) = http(&sock, "GET", "/networks/nope", "");
    assert_eq!(code, 404, "{body}");
    let (code, _, body) = http(
        &sock,
        "POST",
        "/containers/create",
        r#"{"Image": "default", "Cmd": ["true"], "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert!(msg(&body).contains("restart policy"), "{body}");
    let (code, _, body) = http(
        &sock,
        "POST",
        "/containers/create",
        r#"{"Image": "default", "Cmd": ["true"], "Tty": "yes"}"#,
    );
    assert_eq!(code, 400, "{body}");
    let (code, _, body) = http(&sock, "POST", "/containers/create", "{not json");
    assert_eq!(code, 400, "{body}");
    let (code, _, body) = http(
        &sock,
        "GET",
        "/containers/json?filters=%7B%22ancestor%22%3A%5B%22x%22%5D%7D",
        "",
    );
    assert_eq!(code, 400, "{body}");
    let (code, _, _) = http(&sock, "GET", "/no/such/endpoint", "");
    assert_eq!(code, 404);

    // The docker socket is never given to a container, over either API.
    let s = sock.to_str().unwrap();
    let bind = format!(
        r#"{{"Image": "default", "Cmd": ["true"], "HostConfig": {{"Binds": ["{s}:/docker.sock"]}}}}"#
    );
    let (code, _, body) = http(&sock, "POST", "/containers/create", &bind);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("is a sensitive host path"), "{body}");
    let out = d.cli(["create", "-v", &format!("{s}:/docker.sock"), IMAGE, "true"]);
    assert_eq!(out.code, Some(125), "{out:?}");
    assert!(out.stderr.contains("is a sensitive host path"), "{out:?}");
    assert!(d.list().is_empty(), "{:?}", d.list());

    // The same engine: a container made over gRPC is seen here.
    let id = d.run_detached(&["--name", "seen", IMAGE, "sleep", "300"]);
    let (code, _, body) = http(
        &sock,
        "GET",
        "/containers/json?filters=%7B%22name%22%3A%5B%22seen%22%5D%7D",
        "",
    );
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(list[0]["Id"].as_str().unwrap().starts_with(&id), "{body}");
    assert_eq!(list[0]["Names"][0], "/seen");
    let (code, _, _) = http(&sock, "POST", "/containers/seen/start", "");
    assert_eq!(code, 304);
    let (code, _, body) = http(&sock, "DELETE", "/containers/seen", "");
    assert_eq!(code, 409, "{body}");
    let (code, _, _) = http(&sock, "DELETE", "/containers/seen?force=1", "");
    assert_eq!(code, 204);

    // Removed at shutdown.
    d.stop();
    assert!(!sock.exists(), "the docker socket is removed at shutdown");
}

#[test]
fn docker_cli_commits_tags_saves_loads_and_exports() {
    let (d, dir, sock) = daemon();
    import_named(&d, dir.path(), "bb");
    let out = docker(
        &sock,
        &[
            "run",
            "--name",
            "src",
            "bb",
            "sh",
            "-c",
            "echo from-docker > /made",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = docker(
        &sock,
        &[
            "commit",
            "-c",
            "CMD [\"cat\", \"/made\"]",
            "src",
            "dsnap:v1",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.trim().starts_with("sha256:"), "{out:?}");
    let out = docker(&sock, &["run", "--rm", "dsnap:v1"]);
    assert_eq!(out.stdout.trim(), "from-docker", "{out:?}");

    let out = docker(&sock, &["tag", "dsnap:v1", "dsnap:v2"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let archive = dir.path().join("dsnap.tar");
    let out = docker(
        &sock,
        &["save", "-o", archive.to_str().unwrap(), "dsnap:v2"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = docker(&sock, &["rmi", "dsnap:v2"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = docker(&sock, &["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("Loaded image: dsnap:v2"), "{out:?}");
    let out = docker(&sock, &["run", "--rm", "dsnap:v2"]);
    assert_eq!(out.stdout.trim(), "from-docker", "{out:?}");

    let exported = dir.path().join("src.tar");
    let out = docker(&sock, &["export", "-o", exported.to_str().unwrap(), "src"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let f = std::fs::File::open(&exported).unwrap();
    let names: Vec<String> = tar::Archive::new(f)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "made"), "{names:?}");
    let out = docker(&sock, &["export", "no-such-container"]);
    assert_ne!(out.code, Some(0), "{out:?}");
    docker(&sock, &["rm", "src"]).ok();
}

/// docker's networking through the API, in a network namespace the test
/// makes (quiltd's bridges are made there): a user network, two containers
/// on it reaching each other by name, a published port answering on
/// 127.0.0.1 from quiltd's side, `docker port`, inspect's settings, and
/// nothing left after removal.
#[test]
fn docker_cli_networks_and_published_ports() {
    let ns = quilt_tests::TestNetns::new();
    let (d, _dir, sock) = daemon_in(Some(&ns));
    let out = docker(
        &sock,
        &["network", "create", "--subnet", "10.77.0.0/24", "appnet"],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = docker(
        &sock,
        &["network", "ls", "--format", "{{.Name}} {{.Driver}}"],
    );
    assert!(out.stdout.contains("appnet bridge"), "{out:?}");
    assert!(out.stdout.contains("host host"), "{out:?}");
    let web = "mkdir -p /www && echo hello-docker > /www/index.html && exec httpd -f -p 80 -h /www";
    let out = docker(
        &sock,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "appnet",
            "-p",
            "18080:80",
            IMAGE,
            "sh",
            "-c",
            web,
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let fetched = quilt_tests::retry(Duration::from_secs(10), || {
        let o = ns.run(&[
            "timeout",
            "5",
            "busybox",
            "wget",
            "-qO-",
            "http://127.0.0.1:18080/",
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    assert_eq!(fetched.as_deref(), Some("hello-docker"));
    let out = docker(&sock, &["port", "web"]);
    assert!(out.stdout.contains("80/tcp -> 127.0.0.1:18080"), "{out:?}");
    let out = docker(
        &sock,
        &[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}}{{end}}",
            "web",
        ],
    );
    assert!(out.stdout.trim().starts_with("appnet 10.77.0."), "{out:?}");
    let out = docker(
        &sock,
        &[
            "run",
            "--rm",
            "--network",
            "appnet",
            IMAGE,
            "wget",
            "-qO-",
            "http://web/",
        ],
    );
    assert_eq!(out.stdout.trim(), "hello-docker", "{out:?}");
    // An alias through NetworkingConfig, answered by the network's resolver.
    let out = docker(
        &sock,
        &[
            "run",
            "-d",
            "--name",
            "aliased",
            "--network",
            "appnet",
            "--network-alias",
            "db",
            IMAGE,
            "sleep",
            "600",
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = docker(
        &sock,
        &[
            "run",
            "--rm",
            "--network",
            "appnet",
            IMAGE,
            "nslookup",
            "db",
        ],
    );
    assert!(out.stdout.contains("10.77.0."), "{out:?}");
    docker(&sock, &["rm", "-f", "aliased"]).ok();
    let out = docker(
        &sock,
        &["network", "inspect", "-f", "{{len .Containers}}", "appnet"],
    );
    assert_eq!(out.stdout.trim(), "1", "{out:?}");
    let out = docker(&sock, &["network", "rm", "appnet"]);
    assert_ne!(
        out.code,
        Some(0),
        "a network in use is not removed: {out:?}"
    );
    docker(&sock, &["rm", "-f", "web"]).ok();
    let out = docker(&sock, &["network", "rm", "appnet"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    d.assert_no_leftovers();
}

/// testcontainers-python (on docker-py): an exposed port published on a
/// free host port, waited for by its log line and reached through the port
/// the library reads back; quiltd runs in a network namespace of the test.
#[test]
fn testcontainers_python_runs_a_service_container() {
    let py = docker_clients();
    let ns = quilt_tests::TestNetns::new();
    let (d, dir, sock) = daemon_in(Some(&ns));
    // testcontainers looks the image up (and would pull it): a stored one.
    import_named(&d, dir.path(), "tcimg");
    let out = ns.run(&[
        py.python.to_str().unwrap(),
        py.script("testcontainers_client.py").to_str().unwrap(),
        sock.to_str().unwrap(),
        "tcimg",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.ends_with("all passed\n"),
        "{text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log_tail(40)
    );
    d.assert_no_leftovers();
}
