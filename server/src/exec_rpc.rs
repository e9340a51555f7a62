//! Exec RPCs: interactive/streaming exec and detached execs.
use crate::service::Stream_;
use crate::status::to_status;
use quilt_proto::v1 as pb;
use quilt_proto::v1::exec_request::Frame as In;
use quilt_proto::v1::exec_response::Frame as Out;
use quilt_sync_engine::Engine;
use tonic::{Response, Status};

/// Runs the command to completion and streams its output and exit.
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
    let working_dir = (!start.working_dir.is_empty()).then_some(start.working_dir);
    let out = engine
        .exec(&start.container_id, start.command, start.env, working_dir)
        .await
        .map_err(to_status)?;
    let frames = [
        Out::Started(pb::ExecStarted {
            exec_id: String::new(),
        }),
        Out::Stdout(out.stdout),
        Out::Stderr(out.stderr),
        Out::Exit(pb::ExecExit {
            exit_code: out.exit_code,
            signal: 0,
            oom_killed: false,
        }),
    ];
    let stream = tokio_stream::iter(
        frames
            .into_iter()
            .map(|f| Ok(pb::ExecResponse { frame: Some(f) })),
    );
    Ok(Response::new(Box::pin(stream)))
}

pub async fn list_execs(
    _engine: &Engine,
    _req: pb::ListExecsRequest,
) -> Result<pb::ListExecsResponse, Status> {
    Err(Status::unimplemented("ListExecs is not implemented yet"))
}

pub async fn wait_exec(
    _engine: &Engine,
    _req: pb::WaitExecRequest,
) -> Result<pb::WaitExecResponse, Status> {
    Err(Status::unimplemented("WaitExec is not implemented yet"))
}

pub async fn kill_exec(
    _engine: &Engine,
    _req: pb::KillExecRequest,
) -> Result<pb::KillExecResponse, Status> {
    Err(Status::unimplemented("KillExec is not implemented yet"))
}

pub async fn exec_logs(
    _engine: &Engine,
    _req: pb::ExecLogsRequest,
) -> Result<Response<Stream_<pb::ExecResponse>>, Status> {
    Err(Status::unimplemented("ExecLogs is not implemented yet"))
}
