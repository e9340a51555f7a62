//! Exec: docker creates an exec (`POST /containers/{id}/exec`), then starts
//! it (`POST /exec/{id}/start`), attached on a hijacked connection or
//! detached. The engine runs execs from their start, so a created one waits
//! here, in a bounded in-memory table, until it is started; from then on
//! its state is the engine's (`list_execs`).
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::inspect::cut;
use crate::mux::{self, Channel};
use crate::query::Query;
use crate::server::DockerApi;
use bytes::Bytes;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use quilt_sync_engine::{ExecEvent, ExecExit, ExecInput, ExecSpec, State};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Execs remembered (created or started); the oldest are forgotten.
const MAX_EXECS: usize = 4096;

#[derive(Debug, Clone)]
struct Entry {
    container_id: String,
    spec: ExecSpec,
    attach_stdout: bool,
    attach_stderr: bool,
    /// Set once started: the engine's exec id and the command's input.
    engine_id: Option<String>,
    input: Option<mpsc::Sender<ExecInput>>,
    /// How it ended, as the attached stream saw it.
    exit: Option<ExecExit>,
}

/// The execs docker's clients created, by docker exec id.
#[derive(Debug, Default)]
pub struct ExecTable {
    inner: Mutex<(HashMap<String, Entry>, VecDeque<String>)>,
}

impl ExecTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<String, Entry>, VecDeque<String>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, id: String, e: Entry) {
        let mut g = self.lock();
        g.0.insert(id.clone(), e);
        g.1.push_back(id);
        while g.1.len() > MAX_EXECS {
            if let Some(old) = g.1.pop_front() {
                g.0.remove(&old);
            }
        }
    }

    fn get(&self, id: &str) -> Result<Entry> {
        self.lock()
            .0
            .get(id)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("No such exec instance: {}", cut(id))))
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.lock().0.get_mut(id) {
            f(e);
        }
    }
}

fn new_id() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("kernel random source");
    hex::encode(b)
}

fn flag(v: &Value, k: &str) -> Result<bool> {
    match &v[k] {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(ApiError::bad(format!("{k} must be true or false"))),
    }
}

fn strings(v: &Value, k: &str) -> Result<Vec<String>> {
    match &v[k] {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad(format!("{k} must be a list of strings"))),
        _ => Err(ApiError::bad(format!("{k} must be a list of strings"))),
    }
}

/// `[height, width]`, if given.
fn console_size(v: &Value) -> (u16, u16) {
    let dim = |i: usize| {
        v["ConsoleSize"][i]
            .as_u64()
            .map_or(0, |n| n.min(u64::from(u16::MAX)) as u16)
    };
    (dim(0), dim(1))
}

pub async fn create(api: &DockerApi, id: &str, body: Incoming) -> Result<Reply> {
    let v = body::read_json(body).await?;
    if !v.is_object() {
        return Err(ApiError::bad("the exec config must be a JSON object"));
    }
    let c = crate::containers::get(api, id).await?;
    if !matches!(c.state, State::Running | State::Starting) && !c.is_queued() {
        return Err(ApiError::Conflict(format!(
            "Container {} is not running",
            c.id
        )));
    }
    if flag(&v, "Privileged")? {
        return Err(ApiError::bad("privileged execs are not supported"));
    }
    if v["DetachKeys"].as_str().is_some_and(|k| !k.is_empty()) {
        return Err(ApiError::bad("DetachKeys is not supported for execs"));
    }
    let argv = strings(&v, "Cmd")?;
    if argv.is_empty() {
        return Err(ApiError::bad("No exec command specified"));
    }
    let (rows, cols) = console_size(&v);
    let spec = ExecSpec {
        container: c.id.clone(),
        argv,
        env: strings(&v, "Env")?,
        workdir: v["WorkingDir"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        tty: flag(&v, "Tty")?,
        rows,
        cols,
        attach_stdin: flag(&v, "AttachStdin")?,
        detach: false,
        user: v["User"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    };
    let id = new_id();
    api.execs.insert(
        id.clone(),
        Entry {
            container_id: c.id,
            spec,
            attach_stdout: flag(&v, "AttachStdout")?,
            attach_stderr: flag(&v, "AttachStderr")?,
            engine_id: None,
            input: None,
            exit: None,
        },
    );
    Ok(body::json_with(StatusCode::CREATED, &json!({ "Id": id })))
}

pub async fn start(api: &DockerApi, id: &str, req: Request<Incoming>) -> Result<Reply> {
    let mut e = api.execs.get(id)?;
    let (parts, body) = req.into_parts();
    let mut req = Request::from_parts(parts, ());
    if e.engine_id.is_some() {
        return Err(ApiError::Conflict(format!(
            "Exec {} has already been started",
            cut(id)
        )));
    }
    // Taken now: a second start of the same exec is refused.
    api.execs.update(id, |x| x.engine_id = Some(String::new()));
    let v = match body::read_json(body).await {
        Ok(v) => v,
        Err(err) => {
            api.execs.update(id, |x| x.engine_id = None);
            return Err(err);
        }
    };
    let detach = flag(&v, "Detach")?;
    if v["Tty"].as_bool().is_some_and(|t| t != e.spec.tty) {
        api.execs.update(id, |x| x.engine_id = None);
        return Err(ApiError::bad(
            "Tty must be the same as when the exec was created",
        ));
    }
    let (rows, cols) = console_size(&v);
    if rows > 0 && cols > 0 {
        (e.spec.rows, e.spec.cols) = (rows, cols);
    }
    e.spec.detach = detach;
    let session = match api.engine.exec_start(e.spec.clone()).await {
        Ok(s) => s,
        Err(err) => {
            api.execs.update(id, |x| x.engine_id = None);
            return Err(err.into());
        }
    };
    let input = session.input.clone();
    api.execs.update(id, |x| {
        x.engine_id = Some(session.id.clone());
        x.input = Some(input);
    });
    let Some(mut output) = session.output else {
        return Ok(body::status(StatusCode::OK));
    };
    let (reply, hijacked) = mux::hijack(&mut req);
    let tty = e.spec.tty;
    // Input: the client's bytes to the command's stdin, then its end.
    let mut stdin = hijacked.stdin;
    let tx = session.input;
    let attach_stdin = e.spec.attach_stdin;
    tokio::spawn(async move {
        while let Some(chunk) = stdin.recv().await {
            if attach_stdin && tx.send(ExecInput::Stdin(chunk.to_vec())).await.is_err() {
                return;
            }
        }
        if attach_stdin {
            let _ = tx.send(ExecInput::CloseStdin).await;
        }
    });
    let out = hijacked.out;
    let (want_out, want_err) = (e.attach_stdout, e.attach_stderr);
    let table = api.execs.clone();
    let docker_id = id.to_owned();
    tokio::spawn(async move {
        while let Some(ev) = output.recv().await {
            let (ch, data) = match ev {
                ExecEvent::Stdout(d) if want_out => (Channel::Stdout, d),
                ExecEvent::Stderr(d) if want_err => (Channel::Stderr, d),
                ExecEvent::Stdout(_) | ExecEvent::Stderr(_) => continue,
                ExecEvent::Exit(x) => {
                    table.update(&docker_id, |e| e.exit = Some(x));
                    break;
                }
            };
            let chunk = if tty {
                Bytes::from(data)
            } else {
                mux::frame(ch, &data)
            };
            if out.send(chunk).await.is_err() {
                break; // the client went away: dropping `output` kills the command
            }
        }
    });
    Ok(reply)
}

pub async fn resize(api: &DockerApi, id: &str, q: &Query) -> Result<Reply> {
    let e = api.execs.get(id)?;
    let dim = |k: &str| -> Result<u16> {
        let v = q
            .int(k)?
            .ok_or_else(|| ApiError::bad(format!("{k} is required")))?;
        u16::try_from(v).map_err(|_| ApiError::bad(format!("{k} {v} is out of range")))
    };
    let (rows, cols) = (dim("h")?, dim("w")?);
    match e.input {
        Some(input) => {
            let _ = input.send(ExecInput::Resize { rows, cols }).await;
        }
        None => api
            .execs
            .update(id, |x| (x.spec.rows, x.spec.cols) = (rows, cols)),
    }
    Ok(body::status(StatusCode::OK))
}

pub async fn inspect(api: &DockerApi, id: &str) -> Result<Reply> {
    let e = api.execs.get(id)?;
    let mut running = false;
    let mut exit = e.exit;
    if let Some(eid) = e.engine_id.as_deref().filter(|s| !s.is_empty())
        && exit.is_none()
    {
        match api.engine.list_execs(&e.container_id).await {
            Ok(list) => {
                if let Some(info) = list.iter().find(|i| i.id == eid) {
                    running = info.running;
                    exit = info.exit;
                }
            }
            // The container is gone: so is the exec's state.
            Err(quilt_sync_engine::EngineError::NotFound(_)) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let (entrypoint, args) = e
        .spec
        .argv
        .split_first()
        .map_or((String::new(), Vec::new()), |(p, a)| {
            (p.clone(), a.to_vec())
        });
    Ok(body::json(&json!({
        "ID": id,
        "Running": running,
        "ExitCode": exit.map(|x| x.exit_code),
        "ProcessConfig": {
            "tty": e.spec.tty,
            "entrypoint": entrypoint,
            "arguments": args,
            "privileged": false,
            "user": e.spec.user.clone().unwrap_or_default(),
        },
        "OpenStdin": e.spec.attach_stdin,
        "OpenStderr": e.attach_stderr,
        "OpenStdout": e.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": "",
        "Pid": 0,
    })))
}
