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
