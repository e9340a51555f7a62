//! End-to-end test harness for Quilt.
//!
//! Every test starts its own `quiltd` ([`Daemon`]) in a private temp dir with
//! its own socket, data dir and cgroup parent, drives it through the `quilt`
//! CLI and the gRPC API, and checks the host from the outside (/proc, /sys).
//! Dropping the fixture removes every container, stops the daemon and cleans
//! up whatever the daemon may have leaked, so that one failing test does not
//! poison the next.
#![deny(unsafe_code)]

pub mod cli;
pub mod daemon;
pub mod docker;
pub mod netns;
pub mod pki;
pub mod python;
pub mod raw;

use std::time::Duration;

pub use cli::CliOutput;
pub use daemon::{
    Daemon, DaemonBuilder, RPC_TIMEOUT, bin_dir, connect_uds, health_check, list_all, within,
};
pub use netns::TestNetns;
pub use pki::Pki;
pub use quilt_proto::v1 as api;
pub use quilt_testkit::{host, retry};
pub use raw::raw_unary;

use api::{ContainerState, CreateContainerRequest, Event, Resources};

/// The built-in busybox image.
pub const IMAGE: &str = "default";

/// A CreateContainer request for the default image running `cmd`.
pub fn req(cmd: &[&str]) -> CreateContainerRequest {
    CreateContainerRequest {
        image: IMAGE.to_string(),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// Same as [`req`] with a name.
pub fn named(name: &str, cmd: &[&str]) -> CreateContainerRequest {
    CreateContainerRequest {
        name: name.to_string(),
        ..req(cmd)
    }
}

/// Same as [`req`] with resource limits.
pub fn limited(cmd: &[&str], memory_mb: i64, cpus: f64, pids_limit: i64) -> CreateContainerRequest {
    CreateContainerRequest {
        resources: Some(Resources {
            memory_mb,
            cpus,
            pids_limit,
            ..Default::default()
        }),
        ..req(cmd)
    }
}

/// Reads events from a WatchEvents stream until `done` says so, bounded by
/// `timeout`. Returns every event seen (also on timeout, with `false`).
pub async fn collect_events(
    stream: &mut tonic::Streaming<Event>,
    timeout: Duration,
    mut done: impl FnMut(&Event) -> bool,
) -> (Vec<Event>, bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(ev))) => {
                let stop = done(&ev);
                seen.push(ev);
                if stop {
                    return (seen, true);
                }
            }
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return (seen, false),
        }
    }
}

/// "running" for CONTAINER_STATE_RUNNING, and so on.
pub fn state_name(state: i32) -> String {
    ContainerState::try_from(state)
        .map(|s| s.name().to_owned())
        .unwrap_or_else(|_| format!("unknown({state})"))
}

/// Splits text into trimmed non-empty lines.
pub fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The frames of a non-interactive streaming Exec, collected.
#[derive(Debug, Default)]
pub struct ExecResult {
    pub exec_id: String,
    pub exit_code: i32,
    pub signal: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs an Exec with only a start frame (stdin closed) and collects its
/// frames. Err: the call's status, or INTERNAL when no exit frame came.
pub async fn exec_collect(
    c: &mut api::container_service_client::ContainerServiceClient<tonic::transport::Channel>,
    start: api::ExecStart,
) -> Result<ExecResult, tonic::Status> {
    use api::exec_response::Frame;
    let req = api::ExecRequest {
        frame: Some(api::exec_request::Frame::Start(start)),
    };
    let mut stream = c.exec(tokio_stream::iter([req])).await?.into_inner();
    let mut r = ExecResult::default();
    let mut exited = false;
    while let Some(f) = stream.message().await? {
        match f.frame {
            Some(Frame::Started(s)) => r.exec_id = s.exec_id,
            Some(Frame::Stdout(b)) => r.stdout.extend_from_slice(&b),
            Some(Frame::Stderr(b)) => r.stderr.extend_from_slice(&b),
            Some(Frame::Exit(e)) => {
                r.exit_code = e.exit_code;
                r.signal = e.signal;
                exited = true;
            }
            None => {}
        }
    }
    if !exited {
        return Err(tonic::Status::internal(
            "exec stream ended without an exit frame",
        ));
    }
    Ok(r)
}

/// Opens GetLogs for container `id` (all of it, following it to its exit
/// when `follow`); panics if the call itself fails.
pub async fn open_logs(
    c: &mut api::container_service_client::ContainerServiceClient<tonic::transport::Channel>,
    id: &str,
    follow: bool,
    tail: Option<u64>,
) -> tonic::Streaming<api::GetLogsResponse> {
    within(
        RPC_TIMEOUT,
        "GetLogs",
        c.get_logs(api::GetLogsRequest {
            id: id.to_string(),
            follow,
            tail,
            since: None,
        }),
    )
    .await
    .expect("GetLogs")
    .into_inner()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
