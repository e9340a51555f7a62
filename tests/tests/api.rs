//! The standard services beside quilt.v1: grpc.health.v1 and server
//! reflection (what grpcurl relies on), and the socket's permissions.

use std::os::unix::fs::PermissionsExt;

use quilt_tests::{Daemon, RPC_TIMEOUT, connect_uds, within};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[test]
fn health_and_reflection_are_served() {
    let d = Daemon::start();
    assert!(
        d.block_on(quilt_tests::health_check(&d.socket))
            .expect("health check")
    );
    let services = d.block_on(async {
        let ch = connect_uds(&d.socket).await.expect("connect");
        let mut client = ServerReflectionClient::new(ch);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = within(
            RPC_TIMEOUT,
            "ServerReflectionInfo",
            client.server_reflection_info(tokio_stream::iter([request])),
        )
        .await
        .expect("reflection call")
        .into_inner();
        let resp = stream
            .message()
            .await
            .expect("reflection response")
            .expect("one response");
        match resp.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
            }
            other => panic!("unexpected reflection answer: {other:?}"),
        }
    });
    for want in ["quilt.v1.ContainerService", "grpc.health.v1.Health"] {
        assert!(
            services.iter().any(|s| s == want),
            "{want} missing from {services:?}"
        );
    }
    let mode = std::fs::metadata(&d.socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660, "socket mode {mode:o}");
}

/// SIGTERM stops quiltd even while a client holds a stream open (`quilt
/// events` never ends by itself): open streams get a short grace period.
#[test]
fn sigterm_is_not_held_up_by_an_open_stream() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let mut d = Daemon::start();
    let mut events = Command::new(quilt_tests::bin_dir().join("quilt"))
        .arg("--socket")
        .arg(&d.socket)
        .arg("events")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn quilt events");
    // Lines are read on a thread so every wait below is bounded.
    let (tx, rx) = std::sync::mpsc::channel();
    let out = events.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The subscription may not be in place yet: create until a line arrives,
    // which proves the stream is open on the server.
    let mut opened = false;
    for _ in 0..20 {
        d.cli(["create", "--no-start", "default", "true"]).ok();
        if rx.recv_timeout(Duration::from_millis(500)).is_ok() {
            opened = true;
            break;
        }
    }
    assert!(opened, "quilt events printed nothing");
    let t0 = Instant::now();
    let status = d.stop().expect("quiltd exit status");
    let took = t0.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    let _ = events.kill();
    let _ = events.wait();
    d.restart();
}
