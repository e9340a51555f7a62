//! gRPC connections to quiltd over its Unix socket, and small API helpers.

use anyhow::{Context, Result};
use quilt_proto::v1::container_service_client::ContainerServiceClient;
use quilt_proto::v1::{
    CreateContainerRequest, GetContainerRequest, ListContainersRequest, RemoveContainerRequest,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tonic::transport::Channel;

pub type Client = ContainerServiceClient<Channel>;

/// One HTTP/2 connection to the daemon's socket.
pub async fn channel(socket: &Path) -> Result<Channel> {
    quilt_proto::uds_channel(socket)
        .await
        .with_context(|| format!("connect to {}", socket.display()))
}

pub async fn connect(socket: &Path) -> Result<Client> {
    Ok(ContainerServiceClient::new(channel(socket).await?)
        .max_decoding_message_size(256 * 1024 * 1024))
}

/// A readable name for a gRPC status code ("RESOURCE_EXHAUSTED", ...).
pub fn code_name(code: tonic::Code) -> String {
    let s = format!("{code:?}");
    // CamelCase -> UPPER_SNAKE
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

pub fn create_request(
    command: &[&str],
    auto_remove: bool,
    no_start: bool,
) -> CreateContainerRequest {
    let mut labels = BTreeMap::new();
    labels.insert("quilt-bench".to_string(), "1".to_string());
    CreateContainerRequest {
        image: "default".into(),
        command: command.iter().map(|s| s.to_string()).collect(),
        auto_remove,
        no_start,
        labels: labels.into_iter().collect(),
        ..Default::default()
    }
}

/// Calls with a deadline: a call that takes longer is a stall.
pub async fn with_timeout<T>(
    d: Duration,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    match tokio::time::timeout(d, fut).await {
        Ok(r) => r.map(|r| r.into_inner()),
        Err(_) => Err(tonic::Status::deadline_exceeded(format!(
            "no answer within {} s (stalled)",
            d.as_secs_f64()
        ))),
    }
}

pub async fn list_ids(client: &mut Client) -> Result<Vec<String>> {
    let r = with_timeout(
        Duration::from_secs(30),
        client.list_containers(ListContainersRequest::default()),
    )
    .await
    .context("ListContainers")?;
    Ok(r.containers.into_iter().map(|c| c.id).collect())
}

pub async fn get_pid(client: &mut Client, id: &str) -> Result<i32> {
    let r = with_timeout(
        Duration::from_secs(10),
        client.get_container(GetContainerRequest { id: id.into() }),
    )
    .await?;
    Ok(r.container.map(|c| c.pid).unwrap_or(0))
}

/// Force-removes the given containers with bounded concurrency. Returns the
/// per-call latencies and the failures (NOT_FOUND counts as removed).
pub async fn remove_all(
    socket: &Path,
    ids: Vec<String>,
    concurrency: usize,
) -> Result<crate::stats::Samples> {
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(ids));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let queue = queue.clone();
        let mut client = connect(socket).await?;
        tasks.push(tokio::spawn(async move {
            let mut s = crate::stats::Samples::default();
            loop {
                let Some(id) = queue.lock().await.pop() else {
                    break;
                };
                let t = std::time::Instant::now();
                let r = with_timeout(
                    Duration::from_secs(30),
                    client.remove_container(RemoveContainerRequest {
                        id: id.clone(),
                        force: true,
                    }),
                )
                .await;
                match r {
                    Ok(_) => s.ok(t.elapsed()),
                    Err(st) if st.code() == tonic::Code::NotFound => s.ok(t.elapsed()),
                    Err(st) => s.err(
                        &code_name(st.code()),
                        format!("remove {id}: {}", st.message()),
                    ),
                }
            }
            s
        }));
    }
    let mut all = crate::stats::Samples::default();
    for t in tasks {
        all.merge(t.await?);
    }
    Ok(all)
}

/// Removes every container of the daemon and waits until none is listed.
pub async fn remove_everything(socket: &Path, timeout: Duration) -> Result<usize> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut client = connect(socket).await?;
    let mut removed = 0;
    loop {
        let ids = list_ids(&mut client).await?;
        if ids.is_empty() {
            return Ok(removed);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{} containers still listed after {:?}", ids.len(), timeout);
        }
        removed += ids.len();
        let s = remove_all(socket, ids, 8).await?;
        if s.errors > 0 {
            eprintln!(
                "quilt-bench: {} removals failed: {:?}",
                s.errors, s.error_examples
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_names() {
        assert_eq!(
            super::code_name(tonic::Code::ResourceExhausted),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(super::code_name(tonic::Code::Ok), "OK");
        assert_eq!(super::code_name(tonic::Code::NotFound), "NOT_FOUND");
    }
}
