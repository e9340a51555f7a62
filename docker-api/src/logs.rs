//! GET /containers/{id}/logs and POST /containers/{id}/attach: a
//! container's output from the engine's log files, multiplexed (main
//! processes never have a TTY here), optionally followed until it exits.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::mux::{self, Channel};
use crate::query::Query;
use crate::server::DockerApi;
use bytes::Bytes;
use http::Request;
use hyper::body::Incoming;
use quilt_sync_engine::{LogItem, LogStream};
use tokio::sync::mpsc;

/// Which records to send and how.
#[derive(Debug, Clone, Copy)]
struct Pick {
    stdout: bool,
    stderr: bool,
    timestamps: bool,
    until_ns: Option<i64>,
}

fn streams(q: &Query) -> Result<(bool, bool)> {
    let (o, e) = (q.flag("stdout", false), q.flag("stderr", false));
    if !o && !e {
        return Err(ApiError::bad(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    Ok((o, e))
}

fn time_param(q: &Query, k: &str) -> Result<Option<i64>> {
    match q.get(k).filter(|s| !s.is_empty() && *s != "0") {
        None => Ok(None),
        Some(s) => crate::time::parse_unix(s).map(Some).ok_or_else(|| {
            ApiError::bad(format!(
                "invalid {k} {:?}: unix seconds expected",
                crate::inspect::cut(s)
            ))
        }),
    }
}

pub async fn logs(api: &DockerApi, id: &str, q: &Query) -> Result<Reply> {
    let (stdout, stderr) = streams(q)?;
    let follow = q.flag("follow", false);
    let tail = match q.get("tail") {
        None | Some("" | "all") => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| {
            ApiError::bad(format!(
                "invalid tail {:?}: a number or \"all\"",
                crate::inspect::cut(t)
            ))
        })?),
    }
    // docker: a negative tail is "all".
    .and_then(|t| u64::try_from(t).ok());
    let since = time_param(q, "since")?;
    let until_ns = time_param(q, "until")?;
    let c = crate::containers::get(api, id).await?;
    let rx = api.engine.logs(&c.id, follow, tail, since).await?;
    let (tx, out) = mpsc::channel(16);
    let pick = Pick {
        stdout,
        stderr,
        timestamps: q.flag("timestamps", false),
        until_ns,
    };
    tokio::spawn(pump(rx, tx, pick));
    Ok(body::stream(out, mux::RAW_STREAM))
}

/// Relays log records as frames until the records end, the client goes
/// away, or a record is past `until`.
async fn pump(
    mut rx: mpsc::Receiver<quilt_sync_engine::Result<LogItem>>,
    tx: mpsc::Sender<Bytes>,
    pick: Pick,
) {
    while let Some(item) = rx.recv().await {
        let line = match item {
            Ok(LogItem::Line(l)) => l,
            Ok(LogItem::Exit(_)) => break,
            Err(e) => {
                tracing::debug!(error = %e, "docker api: log stream ended");
                break;
            }
        };
        if pick.until_ns.is_some_and(|u| line.ts_ns > u) {
            break;
        }
        let ch = match line.stream {
            LogStream::Stdout if pick.stdout => Channel::Stdout,
            LogStream::Stderr if pick.stderr => Channel::Stderr,
            _ => continue,
        };
        let data = if pick.timestamps {
            let mut d = crate::time::rfc3339(line.ts_ns).into_bytes();
            d.push(b' ');
            d.extend_from_slice(&line.data);
            d
        } else {
            line.data
        };
        if tx.send(mux::frame(ch, &data)).await.is_err() {
            break;
        }
    }
}

/// Attaches to the output (stdout/stderr) of a container: with `stream`,
/// what it writes from now on until it exits (it may not have started
/// yet); with `logs`, what it wrote before too. Its main process has no
/// stdin here: input sent on the connection is read and dropped.
pub async fn attach(
    api: &DockerApi,
    id: &str,
    q: &Query,
    mut req: Request<Incoming>,
) -> Result<Reply> {
    let (stdout, stderr) = streams(q)?;
    let stream = q.flag("stream", false);
    let with_logs = q.flag("logs", false);
    if !stream && !with_logs {
        return Err(ApiError::bad("attach: ask for stream=1 and/or logs=1"));
    }
    let c = crate::containers::get(api, id).await?;
    let since = if with_logs {
        None
    } else {
        Some(quilt_sync_engine::now_ns())
    };
    let rx = api.engine.logs(&c.id, stream, None, since).await?;
    let (reply, hijacked) = mux::hijack(&mut req);
    let pick = Pick {
        stdout,
        stderr,
        timestamps: false,
        until_ns: None,
    };
    let mut stdin = hijacked.stdin;
    tokio::spawn(async move {
        // Nothing reads the main process's stdin: drain what arrives.
        while stdin.recv().await.is_some() {}
    });
    tokio::spawn(pump(rx, hijacked.out, pick));
    Ok(reply)
}
