//! The accept loop: one HTTP/1.1 connection per client of the Unix socket,
//! each request routed (`router`) to a handler over the shared engine.
use crate::body::{self, Reply};
use crate::exec::ExecTable;
use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use quilt_sync_engine::Engine;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio::sync::watch;

/// What every handler shares: the engine and the execs created and not yet
/// forgotten (docker creates an exec before it starts it; the engine only
/// knows started ones).
#[derive(Debug, Clone)]
pub struct DockerApi {
    pub(crate) engine: Engine,
    pub(crate) execs: Arc<ExecTable>,
    pub(crate) data_dir: std::path::PathBuf,
}

impl DockerApi {
    pub fn new(engine: Engine, data_dir: std::path::PathBuf) -> DockerApi {
        DockerApi {
            engine,
            execs: Arc::new(ExecTable::default()),
            data_dir,
        }
    }
}

/// Serves `listener` until `stop` turns true; then stops accepting and asks
/// each open connection to finish (streams end when the engine's do).
pub async fn serve(listener: UnixListener, api: DockerApi, stop: watch::Receiver<bool>) {
    let mut stop_accept = stop.clone();
    let stopped = async move {
        let _ = stop_accept.wait_for(|v| *v).await;
    };
    tokio::pin!(stopped);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "docker api: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopped => return,
        };
        let api = api.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let api = api.clone();
                async move { Ok::<Reply, std::convert::Infallible>(handle(api, req).await) }
            });
            // The timer bounds how long a client may take to send its
            // request headers (hyper's default of 30 s).
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|v| *v).await;
            };
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "docker api: connection ended");
                    }
                    return;
                }
                () = stopping => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
}

async fn handle(api: DockerApi, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let reply = match crate::router::route(&api, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%method, %path, error = %e, "docker api: request refused");
            body::error(&e)
        }
    };
    add_headers(reply)
}

/// Headers docker adds to every answer (clients read the API version and
/// OS type from them).
fn add_headers(mut r: Reply) -> Reply {
    let h = r.headers_mut();
    h.insert(
        "api-version",
        http::HeaderValue::from_static(crate::API_VERSION),
    );
    h.insert("ostype", http::HeaderValue::from_static("linux"));
    h.insert(
        "docker-experimental",
        http::HeaderValue::from_static("false"),
    );
    h.insert(
        http::header::SERVER,
        http::HeaderValue::from_static(concat!("Quilt/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    r
}
