//! GET /containers/{id}/logs and POST /containers/{id}/attach: a
//! container's output from the engine's log files, multiplexed (raw when it
//! has a terminal), optionally followed until it exits; attach also carries
//! input to a container created with `OpenStdin`.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::mux::{self, Channel};
use crate::query::Query;
use crate::server::DockerApi;
use bytes::Bytes;
use http::Request;
use hyper::body::Incoming;
use quilt_proto::detach_keys::{self, Matcher};
use quilt_sync_engine::{LogItem, LogStream};
use tokio::sync::{mpsc, oneshot};

/// Which records to send and how.
#[derive(Debug, Clone, Copy)]
struct Pick {
    stdout: bool,
    stderr: bool,
    timestamps: bool,
    until_ns: Option<i64>,
    /// A terminal's output: one stream, sent as it is (no frame headers).
    raw: bool,
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
                "invalid {k} {}: unix seconds expected",
                quilt_sync_engine::echo(s)
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
                "invalid tail {}: a number or \"all\"",
                quilt_sync_engine::echo(t)
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
        raw: c.stdio.tty,
    };
    tokio::spawn(pump(rx, tx, pick, None));
    Ok(body::stream(out, mux::RAW_STREAM))
}

/// Relays log records as frames until the records end, the client goes
/// away, or a record is past `until`.
async fn pump(
    mut rx: mpsc::Receiver<quilt_sync_engine::Result<LogItem>>,
    tx: mpsc::Sender<Bytes>,
    pick: Pick,
    detached: Option<oneshot::Receiver<()>>,
) {
    let detach = async move {
        if let Some(d) = detached
            && d.await.is_ok()
        {
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::pin!(detach);
    loop {
        let item = tokio::select! {
            item = rx.recv() => item,
            () = &mut detach => None,
        };
        let Some(item) = item else { break };
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
        let out = if pick.raw {
            Bytes::from(data)
        } else {
            mux::frame(ch, &data)
        };
        if tx.send(out).await.is_err() {
            break;
        }
    }
}

/// Attaches to the output (stdout/stderr) of a container: with `stream`,
/// what it writes from now on until it exits (it may not have started
/// yet); with `logs`, what it wrote before too. With `stdin` and a container
/// created with `OpenStdin`, what the client sends goes to its stdin (or
/// terminal); the client's end of input closes it when it was created with
/// `StdinOnce`, and otherwise only detaches.
pub async fn attach(
    api: &DockerApi,
    id: &str,
    q: &Query,
    mut req: Request<Incoming>,
) -> Result<Reply> {
    let want_stdin = q.flag("stdin", false);
    let (stdout, stderr) = (q.flag("stdout", false), q.flag("stderr", false));
    if !stdout && !stderr && !want_stdin {
        return Err(ApiError::bad(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let stream = q.flag("stream", false);
    let with_logs = q.flag("logs", false);
    if !stream && !with_logs {
        return Err(ApiError::bad("attach: ask for stream=1 and/or logs=1"));
    }
    let c = crate::containers::get(api, id).await?;
    let input = want_stdin && c.stdio.open_stdin;
    let since = if with_logs {
        None
    } else {
        Some(quilt_sync_engine::now_ns())
    };
    let rx = if stdout || stderr {
        Some(api.engine.logs(&c.id, stream, None, since).await?)
    } else {
        None
    };
    let (reply, hijacked) = mux::hijack(&mut req);
    let pick = Pick {
        stdout,
        stderr,
        timestamps: false,
        until_ns: None,
        raw: c.stdio.tty,
    };
    let stdin = hijacked.stdin;
    // On a terminal, typing the detach keys ends the attach (not the
    // container), as docker's daemon does.
    let keys = match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => detach_keys::parse(k).map_err(ApiError::bad)?,
        None => Default::default(),
    };
    let (detach_tx, detached) = oneshot::channel();
    let matcher = (input && c.stdio.tty).then(|| Matcher::new(keys));
    if input {
        let (engine, id) = (api.engine.clone(), c.id.clone());
        let out = hijacked.out.clone();
        tokio::spawn(async move {
            // Waits for the start (docker's run: attach, then start); gives
            // up once the client has gone.
            let gone = async move { out.closed().await };
            match engine.attach_input(&id, gone).await {
                Ok(input) => relay_stdin(stdin, input, matcher, detach_tx).await,
                Err(e) => tracing::debug!(error = %e, "docker api: attach stdin"),
            }
        });
    } else {
        tokio::spawn(drain(stdin));
    }
    match rx {
        Some(rx) => {
            tokio::spawn(pump(rx, hijacked.out, pick, Some(detached)));
        }
        None => {
            // Input only: the connection lasts as long as the workload does.
            let engine = api.engine.clone();
            let id = c.id.clone();
            let out = hijacked.out;
            tokio::spawn(async move {
                tokio::select! {
                    _ = engine.wait(&id) => {}
                    () = out.closed() => {}
                    Ok(()) = detached => {}
                }
                drop(out);
            });
        }
    }
    Ok(reply)
}

/// Nothing reads input the client sends: drain it.
async fn drain(mut stdin: mpsc::Receiver<Bytes>) {
    while stdin.recv().await.is_some() {}
}

/// The client's input to the workload; at its end, stdin is closed when the
/// container was created with `StdinOnce` and has no terminal.
async fn relay_stdin(
    mut stdin: mpsc::Receiver<Bytes>,
    mut input: quilt_sync_engine::AttachInput,
    mut matcher: Option<Matcher>,
    detached: oneshot::Sender<()>,
) {
    while let Some(chunk) = stdin.recv().await {
        let (data, detach) = match matcher.as_mut() {
            Some(m) => {
                let fed = m.feed(&chunk);
                (fed.send, fed.detach)
            }
            None => (chunk.to_vec(), false),
        };
        if input.stdin(&data).await.is_err() {
            return drain(stdin).await;
        }
        if detach {
            let _ = detached.send(());
            return;
        }
    }
    // As docker's daemon: the end of input closes a pipe (StdinOnce), but
    // on a terminal it only ends the attach (docker's CLI half-closes when
    // it reads its detach keys itself).
    if input.tty {
        let _ = detached.send(());
    } else if input.stdin_once {
        let _ = input.close_stdin().await;
    }
}

/// POST /containers/{id}/resize: the size of its terminal.
pub async fn resize(api: &DockerApi, id: &str, q: &Query) -> Result<Reply> {
    let dim = |k: &str| -> Result<u16> {
        let v = q
            .int(k)?
            .ok_or_else(|| ApiError::bad(format!("{k} is required")))?;
        u16::try_from(v).map_err(|_| ApiError::bad(format!("{k} {v} is out of range")))
    };
    let (rows, cols) = (dim("h")?, dim("w")?);
    let c = crate::containers::get(api, id).await?;
    api.engine.resize_terminal(&c.id, rows, cols).await?;
    Ok(body::status(http::StatusCode::OK))
}
