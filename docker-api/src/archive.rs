//! GET/HEAD/PUT /containers/{id}/archive: tar streams out of and into a
//! container through the engine's copy-out and copy-in, and the
//! `X-Docker-Container-Path-Stat` header (base64 JSON: name, size, mode as
//! Go's FileMode, mtime, linkTarget) read from the first entry of the
//! copy-out stream.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::inspect::cut;
use crate::query::Query;
use crate::server::DockerApi;
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use quilt_sync_engine::EngineError;
use serde_json::json;
use tokio::sync::mpsc;

const STAT_HEADER: &str = "x-docker-container-path-stat";
const TAR: &str = "application/x-tar";
/// Chunks buffered between the copy and the client.
const DEPTH: usize = 4;

pub async fn archive(
    api: &DockerApi,
    id: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Reply> {
    let path = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad("the path parameter is required"))?
        .to_owned();
    let c = crate::containers::get(api, id).await?;
    let method = req.method().clone();
    if method == Method::PUT {
        return put(api, &c.id, &path, req.into_body()).await;
    }
    get(api, &c.id, &path, method == Method::HEAD).await
}

/// The copy's error as docker words it.
fn copy_error(e: EngineError, path: &str, id: &str) -> ApiError {
    match e {
        EngineError::NotFound(_) => ApiError::NotFound(format!(
            "Could not find the file {} in container {id}",
            cut(path)
        )),
        e => e.into(),
    }
}

/// Go's os.FileMode of a tar entry.
fn go_mode(h: &tar::Header) -> u64 {
    let mode = u64::from(h.mode().unwrap_or(0));
    let mut m = mode & 0o777;
    if mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m | match h.entry_type() {
        tar::EntryType::Directory => 1 << 31,
        tar::EntryType::Symlink => 1 << 27,
        tar::EntryType::Fifo => 1 << 25,
        tar::EntryType::Char => (1 << 26) | (1 << 21),
        tar::EntryType::Block => 1 << 26,
        _ => 0,
    }
}

fn stat(path: &str, h: &tar::Header) -> String {
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let name = if name.is_empty() { "/" } else { name };
    let mtime = i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0);
    let link = h
        .link_name()
        .ok()
        .flatten()
        .map(|l| l.to_string_lossy().into_owned())
        .unwrap_or_default();
    let v = json!({
        "name": name,
        "size": if h.entry_type().is_dir() { 4096 } else { h.size().unwrap_or(0) },
        "mode": go_mode(h),
        "mtime": crate::time::rfc3339(mtime.saturating_mul(1_000_000_000)),
        "linkTarget": link,
    });
    base64::engine::general_purpose::STANDARD.encode(v.to_string())
}

async fn get(api: &DockerApi, id: &str, path: &str, head_only: bool) -> Result<Reply> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let engine = api.engine.clone();
    let (cid, p) = (id.to_owned(), path.to_owned());
    let mut copy = tokio::spawn(async move { engine.copy_out(&cid, &p, tx).await });
    // The first tar header (512 bytes) may span chunks.
    let mut first: Vec<Vec<u8>> = Vec::new();
    let mut have = 0;
    while have < 512 {
        match rx.recv().await {
            Some(c) => {
                have += c.len();
                first.push(c);
            }
            None => {
                let r = (&mut copy)
                    .await
                    .map_err(|e| ApiError::Internal(format!("copy task: {e}")))?;
                return Err(match r {
                    Err(e) => copy_error(e, path, id),
                    Ok(_) => ApiError::Internal("the copy produced no tar header".into()),
                });
            }
        }
    }
    let head: Vec<u8> = first.concat();
    let header = tar::Header::from_byte_slice(&head[..512]);
    let stat = stat(path, header);
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(STAT_HEADER, stat);
    if head_only {
        drop(rx);
        copy.abort();
        let mut r = builder.body(body::empty()).expect("valid headers");
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(TAR),
        );
        return Ok(r);
    }
    let (out_tx, out_rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        if out_tx.send(Ok(Bytes::from(head))).await.is_err() {
            return;
        }
        while let Some(c) = rx.recv().await {
            if out_tx.send(Ok(Bytes::from(c))).await.is_err() {
                return; // the client went away: dropping rx stops the copy
            }
        }
        match copy.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let _ = out_tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
            Err(e) => {
                let _ = out_tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
        }
    });
    let mut r = body::stream_result(out_rx, TAR);
    r.headers_mut().extend(
        builder
            .body(())
            .expect("valid headers")
            .into_parts()
            .0
            .headers,
    );
    Ok(r)
}

async fn put(api: &DockerApi, id: &str, path: &str, mut body: Incoming) -> Result<Reply> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let engine = api.engine.clone();
    let (cid, p) = (id.to_owned(), path.to_owned());
    let mut copy = tokio::spawn(async move { engine.copy_in(&cid, &p, rx).await });
    let mut broken = None;
    let mut ended = None;
    loop {
        let frame = tokio::select! {
            r = &mut copy => {
                ended = Some(r);
                break;
            }
            f = body.frame() => f,
        };
        match frame {
            None => break,
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data()
                    && !data.is_empty()
                    && tx.send(data.to_vec()).await.is_err()
                {
                    break; // the copy ended early: its error is reported below
                }
            }
            Some(Err(e)) => {
                broken = Some(e);
                break;
            }
        }
    }
    if let Some(e) = broken {
        // A truncated stream must never be extracted as if whole.
        copy.abort();
        let _ = copy.await;
        return Err(ApiError::bad(format!("reading the tar stream: {e}")));
    }
    drop(tx);
    let r = match ended {
        Some(r) => r,
        None => copy.await,
    };
    r.map_err(|e| ApiError::Internal(format!("copy task: {e}")))?
        .map_err(|e| copy_error(e, path, id))?;
    Ok(body::status(StatusCode::OK))
}
