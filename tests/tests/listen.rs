//! The TCP listener: TLS only, with client certificates or a bearer token;
//! quiltd refuses to listen otherwise. Certificates are made by the test with
//! the openssl command; everything runs on 127.0.0.1.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quilt_tests::{Daemon, Pki, bin_dir};

/// A CA, a server certificate for 127.0.0.1/localhost and a client one.
fn pki() -> Pki {
    Pki::new(&[
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ])
}

/// A token file with `mode`, beside the certificates.
fn token(pki: &Pki, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let p = pki.dir().join(format!("token-{mode:o}"));
    std::fs::write(&p, format!("{}\n", "s3cret-token-0123456789-abcdefghij")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Runs a quiltd that must refuse to start; returns its output.
fn refused_start(d: &Daemon, extra: &[String]) -> String {
    let dir = tempfile::tempdir_in("/tmp").unwrap();
    let out = Command::new(bin_dir().join("quiltd"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--socket")
        .arg(dir.path().join("q.sock"))
        .arg("--cgroup-parent")
        .arg(&d.cgroup_parent)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("spawn quiltd");
    assert!(!out.status.success(), "quiltd started with {extra:?}");
    // A refused start releases what the engine had made (its namespaces).
    let left = quilt_tests::host::mounts_under(dir.path());
    assert!(
        left.is_empty(),
        "quiltd refused {extra:?} but left {left:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn quilt_tcp(port: u16, extra: &[&str], args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(bin_dir().join("quilt"));
    cmd.arg("--host")
        .arg(format!("tcp://127.0.0.1:{port}"))
        .args(extra)
        .args(args);
    cmd.env_remove("QUILT_SOCKET").stdin(Stdio::null());
    let out = cmd.output().expect("quilt");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} not listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn listen_without_tls_or_client_auth_is_refused() {
    let d = Daemon::start();
    let pki = pki();
    let listen = vec![
        "--listen".to_string(),
        format!("127.0.0.1:{}", quilt_tests::free_port()),
    ];
    let err = refused_start(&d, &listen);
    assert!(err.contains("TLS"), "{err}");
    let tls: Vec<String> = [
        listen.clone(),
        vec![
            "--tls-cert".into(),
            pki.path("server.pem"),
            "--tls-key".into(),
            pki.path("server.key"),
        ],
    ]
    .concat();
    let err = refused_start(&d, &tls);
    assert!(err.contains("client authentication"), "{err}");
    // A token anyone can read is no secret.
    let loose = [
        tls.clone(),
        vec!["--auth-token-file".into(), token(&pki, 0o644)],
    ]
    .concat();
    let err = refused_start(&d, &loose);
    assert!(err.contains("0600"), "{err}");
    d.assert_no_leftovers();
}

#[test]
fn a_bearer_token_is_required_over_tls() {
    let pki = pki();
    let port = quilt_tests::free_port();
    let token = token(&pki, 0o600);
    let d = Daemon::builder()
        .args(&[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            &pki.path("server.pem"),
            "--tls-key",
            &pki.path("server.key"),
            "--auth-token-file",
            &token,
        ])
        .start();
    wait_port(port);
    let ca = pki.path("ca.pem");
    let (code, out, err) = quilt_tcp(
        port,
        &["--tls-ca", &ca, "--token-file", &token],
        &["run", "--rm", "default", "echo", "over-tls"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.trim(), "over-tls");
    // No token, or a wrong one: refused.
    let (code, _, err) = quilt_tcp(port, &["--tls-ca", &ca], &["ps"]);
    assert_eq!(code, Some(125), "{err}");
    assert!(err.to_lowercase().contains("token"), "{err}");
    let wrong = pki.dir().join("wrong");
    std::fs::write(&wrong, "not-the-token-at-all-0123456789abcdef").unwrap();
    let (code, _, err) = quilt_tcp(
        port,
        &["--tls-ca", &ca, "--token-file", wrong.to_str().unwrap()],
        &["ps"],
    );
    assert_eq!(code, Some(125), "{err}");
    // A client that does not trust the server's CA gets nowhere.
    let (code, _, _) = quilt_tcp(port, &["--token-file", &token], &["ps"]);
    assert_eq!(code, Some(125));
    // Plain HTTP/2 (no TLS) is not served.
    let plain = d.block_on(async {
        let ch = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await?;
        let mut c = quilt_tests::api::container_service_client::ContainerServiceClient::new(ch);
        c.list_containers(quilt_tests::api::ListContainersRequest::default())
            .await
            .map_err(|e| -> Box<dyn std::error::Error> { e.into() })?;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    assert!(plain.is_err(), "plain HTTP/2 was served");
    d.assert_no_leftovers();
}

#[test]
fn client_certificates_are_required_with_a_client_ca() {
    let pki = pki();
    let port = quilt_tests::free_port();
    let d = Daemon::builder()
        .args(&[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            &pki.path("server.pem"),
            "--tls-key",
            &pki.path("server.key"),
            "--tls-client-ca",
            &pki.path("ca.pem"),
        ])
        .start();
    wait_port(port);
    let ca = pki.path("ca.pem");
    let (code, out, err) = quilt_tcp(
        port,
        &[
            "--tls-ca",
            &ca,
            "--tls-cert",
            &pki.path("client.pem"),
            "--tls-key",
            &pki.path("client.key"),
        ],
        &["ps", "-a"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, _, err) = quilt_tcp(port, &["--tls-ca", &ca], &["ps"]);
    assert_eq!(code, Some(125), "{err}");
    // A certificate the CA did not sign (the server's own key as a client's
    // is signed by it, so make a self-signed one).
    let rogue = PathBuf::from(pki.path("rogue"));
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{}.key", rogue.display()),
            "-out",
            &format!("{}.pem", rogue.display()),
            "-days",
            "1",
            "-subj",
            "/CN=rogue",
        ])
        .output()
        .unwrap();
    assert!(st.status.success());
    let (code, _, _) = quilt_tcp(
        port,
        &[
            "--tls-ca",
            &ca,
            "--tls-cert",
            &format!("{}.pem", rogue.display()),
            "--tls-key",
            &format!("{}.key", rogue.display()),
        ],
        &["ps"],
    );
    assert_eq!(code, Some(125));
    d.assert_no_leftovers();
}

#[test]
fn a_refused_bridge_name_leaves_no_mount() {
    // Refused by the engine itself (after the socket and data dir locks):
    // nothing it mounts may stay behind.
    let d = Daemon::start();
    let err = refused_start(&d, &["--bridge-name".to_string(), "qnbad".to_string()]);
    assert!(err.contains("Quilt's own"), "{err}");
}
