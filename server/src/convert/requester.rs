//! Who asks for a start, for the start queue's fairness: the explicit
//! `x-quilt-client` metadata, else the caller's uid from the socket's peer
//! credentials, else its TCP address; and the class from the request.
use quilt_proto::v1 as pb;
use quilt_sync_engine::{Requester, StartClass};
use tonic::Request;
use tonic::transport::server::{TcpConnectInfo, UdsConnectInfo};

/// Metadata key naming the client explicitly.
pub const CLIENT_KEY: &str = "x-quilt-client";

pub fn requester<T>(req: &Request<T>, priority: i32) -> Requester {
    let explicit = req
        .metadata()
        .get(CLIENT_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(|v| format!("id:{v}"));
    let client = explicit
        .or_else(|| {
            req.extensions()
                .get::<UdsConnectInfo>()
                .and_then(|i| i.peer_cred)
                .map(|c| format!("uid:{}", c.uid()))
        })
        .or_else(|| {
            req.extensions()
                .get::<TcpConnectInfo>()
                .and_then(|i| i.remote_addr)
                .map(|a| format!("tcp:{}", a.ip()))
        })
        .unwrap_or_default();
    let class = match pb::StartPriority::try_from(priority) {
        Ok(pb::StartPriority::Batch) => StartClass::Batch,
        _ => StartClass::Interactive,
    };
    Requester::new(&client, class)
}
