//! Exec RPCs: interactive/streaming exec and detached execs.
//!
//! Exec: the first request frame is `start`; the others are relayed to the
//! command by a task until the client half-closes (= no more input, not a
//! cancel) or goes away. The response is `started`, then the output and,
//! last, `exit`. Dropping the response stream (client gone) kills an
//! attached exec (the engine notices its receiver is gone).
use crate::convert;
use crate::convert::non_empty;
use crate::service::Stream_;
use crate::status::to_status;
use quilt_proto::v1 as pb;
use quilt_proto::v1::exec_request::Frame as In;
use quilt_proto::v1::exec_response::Frame as Out;
use quilt_sync_engine::{Engine, ExecEvent, ExecExit, ExecInfo, ExecInput, ExecSpec};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};

/// Terminal sizes are u16 in the kernel; larger values are clamped.
fn dim(v: u32) -> u16 {
    v.min(u32::from(u16::MAX)) as u16
}

pub async fn exec(
    engine: &Engine,
    mut input: tonic::Streaming<pb::ExecRequest>,
) -> Result<Response<Stream_<pb::ExecResponse>>, Status> {
    let Some(pb::ExecRequest {
        frame: Some(In::Start(start)),
    }) = input.message().await?
    else {
        return Err(Status::invalid_argument(
            "the first Exec frame must be `start`",
        ));
    };
    let size = start.terminal_size.unwrap_or_default();
    let spec = ExecSpec {
        container: start.container_id,
        argv: start.command,
        env: start.env,
        workdir: non_empty(start.working_dir),
        tty: start.tty,
        rows: dim(size.rows),
        cols: dim(size.cols),
        attach_stdin: start.attach_stdin && !start.detach,
        detach: start.detach,
    };
    let session = engine.exec_start(spec).await.map_err(to_status)?;
    let started = pb::ExecResponse {
        frame: Some(Out::Started(pb::ExecStarted {
            exec_id: session.id.clone(),
        })),
    };
    let Some(output) = session.output else {
        // Detached: the command's stdin is closed (the input sender drops).
        return Ok(Response::new(Box::pin(tokio_stream::iter([Ok(started)]))));
    };
    let tx = session.input;
    tokio::spawn(async move {
        loop {
            let item = match input.message().await {
                Ok(Some(pb::ExecRequest { frame: Some(f) })) => match f {
                    In::Stdin(b) => ExecInput::Stdin(b),
                    In::Resize(s) => ExecInput::Resize {
                        rows: dim(s.rows),
                        cols: dim(s.cols),
                    },
                    In::Signal(s) => ExecInput::Signal(s),
                    In::CloseStdin(true) => ExecInput::CloseStdin,
                    In::CloseStdin(false) | In::Start(_) => continue,
                },
                Ok(Some(pb::ExecRequest { frame: None })) => continue,
                // Half-close or a broken transport: no more input.
                Ok(None) | Err(_) => break,
            };
            if tx.send(item).await.is_err() {
                break;
            }
        }
    });
    let frames = ReceiverStream::new(output).map(|ev| {
        Ok(pb::ExecResponse {
            frame: Some(event_frame(ev)),
        })
    });
    let stream = tokio_stream::iter([Ok(started)]).chain(frames);
    Ok(Response::new(Box::pin(stream)))
}

fn event_frame(ev: ExecEvent) -> Out {
    match ev {
        ExecEvent::Stdout(b) => Out::Stdout(b),
        ExecEvent::Stderr(b) => Out::Stderr(b),
        ExecEvent::Exit(e) => Out::Exit(exit(&e)),
    }
}

fn exit(e: &ExecExit) -> pb::ExecExit {
    pb::ExecExit {
        exit_code: e.exit_code,
        signal: e.signal,
        oom_killed: e.oom_killed,
    }
}

fn info(i: &ExecInfo) -> pb::ExecInfo {
    pb::ExecInfo {
        exec_id: i.id.clone(),
        container_id: i.container_id.clone(),
        command: i.command.clone(),
        tty: i.tty,
        detached: i.detached,
        running: i.running,
        exit: i.exit.as_ref().map(exit),
        started_at: Some(convert::ts(i.started_at_ns)),
        finished_at: i.finished_at_ns.map(convert::ts),
    }
}

pub async fn list_execs(
    engine: &Engine,
    req: pb::ListExecsRequest,
) -> Result<pb::ListExecsResponse, Status> {
    let list = engine
        .list_execs(&req.container_id)
        .await
        .map_err(to_status)?;
    Ok(pb::ListExecsResponse {
        execs: list.iter().map(info).collect(),
    })
}

pub async fn wait_exec(
    engine: &Engine,
    req: pb::WaitExecRequest,
) -> Result<pb::WaitExecResponse, Status> {
    let i = engine.wait_exec(&req.exec_id).await.map_err(to_status)?;
    Ok(pb::WaitExecResponse {
        exec: Some(info(&i)),
    })
}

pub async fn kill_exec(
    engine: &Engine,
    req: pb::KillExecRequest,
) -> Result<pb::KillExecResponse, Status> {
    engine
        .kill_exec(&req.exec_id, &req.signal)
        .await
        .map_err(to_status)?;
    Ok(pb::KillExecResponse {})
}

pub async fn exec_logs(
    engine: &Engine,
    req: pb::ExecLogsRequest,
) -> Result<Response<Stream_<pb::ExecResponse>>, Status> {
    let rx = engine
        .exec_logs(&req.exec_id, req.follow)
        .await
        .map_err(to_status)?;
    let stream = ReceiverStream::new(rx).map(|ev| {
        Ok(pb::ExecResponse {
            frame: Some(event_frame(ev.map_err(to_status)?)),
        })
    });
    Ok(Response::new(Box::pin(stream)))
}
