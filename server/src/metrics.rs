//! `--metrics-listen`: the engine's metrics as Prometheus text over HTTP/1
//! (GET /metrics), and the tower layer that times every RPC.
use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use quilt_sync_engine::Engine;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;
use tokio::sync::watch;

/// Binds the metrics address (a taken port fails quiltd's start).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-listen {addr}"))?;
    tracing::info!(%addr, "serving metrics");
    Ok(listener)
}

/// Serves GET /metrics until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Engine,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = async { let _ = stop.wait_for(|v| *v).await; } => return,
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let engine = engine.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&engine, &req).await) }
            });
            // A slow or broken scraper only ends its own connection.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(60), conn).await;
        });
    }
}

async fn answer<B>(engine: &Engine, req: &hyper::Request<B>) -> hyper::Response<Full<Bytes>> {
    let reply = |status: u16, ctype: &str, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    if req.uri().path() != "/metrics" {
        return reply(404, "text/plain", "not found: try /metrics\n".into());
    }
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return reply(405, "text/plain", "GET only\n".into());
    }
    match engine.metrics_text().await {
        Ok(text) => reply(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            text,
        ),
        Err(e) => reply(500, "text/plain", format!("{e}\n")),
    }
}

/// Times every RPC into the engine's metrics, by method and gRPC code (an
/// unknown method is counted as "unknown": the label set stays bounded).
#[derive(Debug, Clone)]
pub struct RpcMetricsLayer {
    pub engine: Engine,
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics {
            inner,
            engine: self.engine.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    engine: Engine,
}

impl<S, B, RB> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let since = Instant::now();
        let engine = self.engine.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let code = match &res {
                // Errors come as a trailers-only response; the rest say OK
                // in their headers (a stream's end status is in trailers).
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Err(_) => "transport".to_owned(),
            };
            // Only a method the server answered keeps its path as a label.
            let method = if code == "12" || code == "transport" {
                "unknown"
            } else {
                &method
            };
            engine.observe_rpc(method, &code, since.elapsed());
            res
        })
    }
}
