//! `POST /images/create?fromImage=...&tag=...`: a registry pull through the
//! engine, answered with docker's JSON progress messages (what `docker pull`
//! and docker-py's `images.pull` print and parse). Credentials come from the
//! `X-Registry-Auth` header (base64 JSON), else the daemon's own.
use crate::body::Reply;
use crate::error::{ApiError, Result};
use crate::query::Query;
use crate::server::DockerApi;
use base64::Engine as _;
use bytes::Bytes;
use quilt_sync_engine::{BlobKind, PullEvent, PullUpdate, RegistryCredentials};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// At most this many bytes of `X-Registry-Auth`.
const MAX_AUTH: usize = 16 * 1024;

/// "docker.io/library/busybox:latest" -> the id docker shows for a blob.
fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.get(..12).unwrap_or(hex).to_owned()
}

/// The credentials of an `X-Registry-Auth` header; None for an empty one
/// (docker sends `{}` when it has none).
fn credentials(header: Option<&http::HeaderValue>) -> Result<Option<RegistryCredentials>> {
    let Some(h) = header else {
        return Ok(None);
    };
    let raw = h.as_bytes();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > MAX_AUTH {
        return Err(ApiError::bad("X-Registry-Auth is too long"));
    }
    let text: Vec<u8> = raw.iter().copied().filter(|b| *b != b'=').collect();
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&text)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&text))
        .map_err(|_| ApiError::bad("X-Registry-Auth is not base64"))?;
    let v: Value = serde_json::from_slice(&decoded)
        .map_err(|_| ApiError::bad("X-Registry-Auth is not a JSON object"))?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (username, password) = (field("username"), field("password"));
    if username.is_empty() {
        if !field("identitytoken").is_empty() || !field("registrytoken").is_empty() {
            return Err(ApiError::bad(
                "registry identity tokens are not supported: give a username and password",
            ));
        }
        return Ok(None);
    }
    Ok(Some(RegistryCredentials { username, password }))
}

fn line(v: Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

pub async fn create(api: &DockerApi, q: &Query, headers: &http::HeaderMap) -> Result<Reply> {
    if q.get("fromSrc").is_some() {
        return Err(crate::unsupported::import_from_source());
    }
    let image = q
        .get("fromImage")
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::bad("fromImage is required"))?;
    let reference = match q.get("tag") {
        Some(t) if t.starts_with("sha256:") => format!("{image}@{t}"),
        Some(t) if !t.is_empty() && !image.contains('@') => format!("{image}:{t}"),
        _ => image.to_owned(),
    };
    let creds = credentials(headers.get("x-registry-auth"))?;
    let platform = q.get("platform").unwrap_or("").to_owned();
    let (tx, mut rx) = mpsc::channel::<PullUpdate>(64);
    let engine = api.engine.clone();
    let r = reference.clone();
    let mut job = tokio::spawn(async move { engine.pull_image(&r, &platform, creds, tx).await });
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
    let tag = reference
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or("latest", |(_, t)| t)
        .to_owned();
    tokio::spawn(async move {
        let mut digest = String::new();
        let result = loop {
            let update = tokio::select! {
                u = rx.recv() => u,
                r = &mut job => break r,
            };
            let Some(update) = update else {
                break job.await;
            };
            let msg = match update {
                PullUpdate::Registry(PullEvent::Resolved {
                    reference,
                    digest: d,
                    blobs,
                    ..
                }) => {
                    digest = d;
                    let repo = reference
                        .split_once('/')
                        .map_or(reference.as_str(), |(_, r)| r)
                        .split([':', '@'])
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let mut first =
                        vec![json!({ "status": format!("Pulling from {repo}"), "id": tag })];
                    first.extend(
                        blobs
                            .iter()
                            .filter(|(_, _, k)| !matches!(k, BlobKind::Config))
                            .map(|(d, _, _)| json!({ "status": "Pulling fs layer", "id": short(d), "progressDetail": {} })),
                    );
                    first
                }
                PullUpdate::Registry(PullEvent::Blob {
                    digest: d,
                    kind,
                    done_bytes,
                    total_bytes,
                    done,
                    ..
                }) => {
                    if matches!(kind, BlobKind::Config) {
                        continue;
                    }
                    if done {
                        vec![
                            json!({ "status": "Download complete", "id": short(&d), "progressDetail": {} }),
                        ]
                    } else {
                        vec![json!({
                            "status": "Downloading",
                            "id": short(&d),
                            "progressDetail": { "current": done_bytes, "total": total_bytes },
                        })]
                    }
                }
                PullUpdate::Import(p) => vec![json!({ "status": p.phase, "progressDetail": {} })],
            };
            for m in msg {
                if out_tx.send(line(m)).await.is_err() {
                    return; // the client went away; the pull finishes on its own
                }
            }
        };
        let last = match result {
            Ok(Ok(info)) => {
                let name = info.names.first().cloned().unwrap_or(info.id);
                vec![
                    json!({ "status": format!("Digest: {digest}") }),
                    json!({ "status": format!("Status: Downloaded newer image for {name}") }),
                ]
            }
            Ok(Err(e)) => {
                let m = quilt_sync_engine::bounded_message(e.to_string());
                vec![json!({ "errorDetail": { "message": m }, "error": m })]
            }
            Err(e) => {
                let m = format!("pull task: {e}");
                vec![json!({ "errorDetail": { "message": m }, "error": m })]
            }
        };
        for m in last {
            let _ = out_tx.send(line(m)).await;
        }
    });
    Ok(crate::body::stream(out_rx, "application/json"))
}
