//! Images in and out: `POST /images/{name}/tag`, `POST /commit`,
//! `GET /containers/{id}/export`, `GET /images/{name}/get`,
//! `GET /images/get?names=...` and `POST /images/load`.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::query::Query;
use crate::server::DockerApi;
use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use quilt_sync_engine::{CommitOptions, EngineError};
use serde_json::json;
use std::future::Future;
use tokio::sync::mpsc;

const DEPTH: usize = 4;
const TAR: &str = "application/x-tar";

/// "repo" and "tag" -> "repo:tag" ("repo" alone when no tag).
fn reference(repo: &str, tag: Option<&str>) -> String {
    match tag {
        Some(t) if !t.is_empty() => format!("{repo}:{t}"),
        _ => repo.to_owned(),
    }
}

pub async fn tag(api: &DockerApi, name: &str, q: &Query) -> Result<Reply> {
    let repo = q
        .get("repo")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad("repo is required"))?;
    let source = crate::images::find(api, name).await?;
    api.engine
        .tag_image(&source.id, &reference(repo, q.get("tag")))
        .await?;
    Ok(body::status(StatusCode::CREATED))
}

pub async fn commit(api: &DockerApi, q: &Query, req_body: Incoming) -> Result<Reply> {
    // The body may carry a container config to merge; its fields beyond
    // what `changes` expresses are not applied.
    let _ = body::read_json(req_body).await?;
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad("container is required"))?;
    let name = q
        .get("repo")
        .filter(|r| !r.is_empty())
        .map(|r| reference(r, q.get("tag")));
    // docker's CLI sends each --change as its own `changes` value (older
    // ones joined them with newlines).
    let changes = q
        .all("changes")
        .into_iter()
        .flat_map(|c| c.lines())
        .filter(|c| !c.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let opts = CommitOptions {
        name,
        changes,
        message: q.get("comment").unwrap_or_default().to_owned(),
        author: q.get("author").unwrap_or_default().to_owned(),
        pause: q.flag("pause", true),
    };
    let i = api.engine.commit_container(container, opts).await?;
    Ok(body::json_with(StatusCode::CREATED, &json!({ "Id": i.id })))
}

pub async fn export(api: &DockerApi, id: &str) -> Result<Reply> {
    let engine = api.engine.clone();
    let id = id.to_owned();
    stream_tar(move |tx| async move { engine.export_container(&id, tx).await.map(drop) }).await
}

pub async fn save(api: &DockerApi, names: Vec<String>) -> Result<Reply> {
    let mut refs = Vec::with_capacity(names.len());
    for n in names {
        // docker's names ("x:latest") as the store knows them.
        let i = crate::images::find(api, &n).await?;
        refs.push(if i.names.contains(&n) || i.id == n {
            n
        } else {
            match n.strip_suffix(":latest") {
                Some(short) if i.names.iter().any(|m| m == short) => short.to_owned(),
                _ => i.id,
            }
        });
    }
    let engine = api.engine.clone();
    stream_tar(move |tx| async move { engine.save_images(&refs, tx).await }).await
}

/// Answers with the tar stream `job` writes; an error before its first
/// bytes is the answer's status, a later one cuts the connection.
async fn stream_tar<F>(job: impl FnOnce(mpsc::Sender<Vec<u8>>) -> F) -> Result<Reply>
where
    F: Future<Output = std::result::Result<(), EngineError>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let mut task = tokio::spawn(job(tx));
    let first = tokio::select! {
        c = rx.recv() => c,
        r = &mut task => {
            r.map_err(|e| ApiError::Internal(format!("task: {e}")))??;
            rx.recv().await
        }
    };
    let (out_tx, out_rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        if let Some(c) = first
            && out_tx.send(Ok(Bytes::from(c))).await.is_err()
        {
            return;
        }
        while let Some(c) = rx.recv().await {
            if out_tx.send(Ok(Bytes::from(c))).await.is_err() {
                return; // the client went away: dropping rx stops the job
            }
        }
        let err = match task.await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        let _ = out_tx.send(Err(std::io::Error::other(err))).await;
    });
    Ok(body::stream_result(out_rx, TAR))
}

pub async fn load(api: &DockerApi, q: &Query, mut req_body: Incoming) -> Result<Reply> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(DEPTH);
    let (p_tx, _p_rx) = mpsc::channel(1);
    let engine = api.engine.clone();
    let mut job = tokio::spawn(async move { engine.load_images(rx, p_tx).await });
    let mut ended = None;
    loop {
        let frame = tokio::select! {
            r = &mut job => { ended = Some(r); break; }
            f = req_body.frame() => f,
        };
        match frame {
            None => break,
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data()
                    && !data.is_empty()
                    && tx.send(data.to_vec()).await.is_err()
                {
                    break;
                }
            }
            Some(Err(e)) => {
                // A truncated archive is never loaded.
                job.abort();
                let _ = job.await;
                return Err(ApiError::bad(format!("reading the archive: {e}")));
            }
        }
    }
    drop(tx);
    let images = match ended {
        Some(r) => r,
        None => job.await,
    }
    .map_err(|e| ApiError::Internal(format!("load task: {e}")))??;
    let _quiet = q.flag("quiet", false); // the names are printed either way, as docker does
    let mut out = String::new();
    for i in images {
        let lines: Vec<String> = if i.names.is_empty() {
            vec![format!("Loaded image ID: {}\n", i.id)]
        } else {
            crate::images::repo_tags(&i)
                .into_iter()
                .map(|n| format!("Loaded image: {n}\n"))
                .collect()
        };
        for l in lines {
            out.push_str(&json!({ "stream": l }).to_string());
            out.push('\n');
        }
    }
    let mut r = http::Response::new(body::full(out));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
