//! Exec RPCs: interactive/streaming exec and detached execs.
//!
//! Exec: the first request frame is `start`; the others are relayed to the
//! command by a task until the client half-closes (= no more input, not a
//! cancel) or goes away. The response is `started`, then the output and,
//! last, `exit`. Dropping the response stream (client gone) kills an
//! attached exec (the engine notices its receiver is gone).
use super::BoxStream;
use crate::convert;
use crate::status::{from_request_stream, to_status};
use quilt_proto::v1 as pb;
use quilt_proto::v1::exec_request::Frame as In;
use quilt_proto::v1::exec_response::Frame as Out;
use quilt_sync_engine::Engine;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status};

pub async fn exec(
    engine: &Engine,
    peers: &crate::forward::Peers,
    mut input: tonic::Streaming<pb::ExecRequest>,
) -> Result<Response<BoxStream<pb::ExecResponse>>, Status> {
    let Some(pb::ExecRequest {
        frame: Some(In::Start(start)),
    }) = input.message().await.map_err(from_request_stream)?
    else {
        return Err(Status::invalid_argument(
            "the first Exec frame must be `start`",
        ));
    };
    if let Some(node) = peers.owner(&start.container_id).await {
        // The container's node runs the command: the start frame and the
        // rest of the client's frames go there, its answer comes back.
        let first = pb::ExecRequest {
            frame: Some(In::Start(start)),
        };
        let rest = input.filter_map(|m| m.ok());
        let answer = peers
            .client(&node)
            .await?
            .exec(tokio_stream::once(first).chain(rest))
            .await?;
        return Ok(Response::new(Box::pin(answer.into_inner())));
    }
    let session = engine
        .exec_start(convert::exec_spec(start))
        .await
        .map_err(to_status)?;
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
                Ok(Some(pb::ExecRequest { frame: Some(f) })) => match convert::exec_input(f) {
                    Some(item) => item,
                    None => continue,
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
            frame: Some(convert::exec_frame(ev)),
        })
    });
    let stream = tokio_stream::iter([Ok(started)]).chain(frames);
    Ok(Response::new(Box::pin(stream)))
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
        execs: list.iter().map(convert::exec_info).collect(),
    })
}

pub async fn wait_exec(
    engine: &Engine,
    req: pb::WaitExecRequest,
) -> Result<pb::WaitExecResponse, Status> {
    let i = engine.wait_exec(&req.exec_id).await.map_err(to_status)?;
    Ok(pb::WaitExecResponse {
        exec: Some(convert::exec_info(&i)),
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
) -> Result<Response<BoxStream<pb::ExecResponse>>, Status> {
    let rx = engine
        .exec_logs(&req.exec_id, req.follow)
        .await
        .map_err(to_status)?;
    let stream = ReceiverStream::new(rx).map(|ev| {
        Ok(pb::ExecResponse {
            frame: Some(convert::exec_frame(ev.map_err(to_status)?)),
        })
    });
    Ok(Response::new(Box::pin(stream)))
}
