//! `quilt exec`.

use quilt_proto::v1::exec_request::Frame as In;
use quilt_proto::v1::exec_response::Frame as Out;
use quilt_proto::v1::{ExecRequest, ExecStart};

use crate::args::ExecArgs;
use crate::client::Client;
use crate::error::{CliError, exit_code_byte};
use crate::output::stream::{Sink, Target};

/// Runs the command in the container, relays its output and exits with its
/// exit code (the stream's final `exit` frame).
pub async fn exec(client: &mut Client, args: ExecArgs) -> Result<u8, CliError> {
    let start = ExecRequest {
        frame: Some(In::Start(ExecStart {
            container_id: args.id().to_owned(),
            command: args.command().to_vec(),
            env: args.env.clone(),
            working_dir: args.workdir.clone().unwrap_or_default(),
            ..Default::default()
        })),
    };
    let mut stream = client.exec(tokio_stream::iter([start])).await?.into_inner();
    let mut sink = Sink::stdio();
    while let Some(frame) = stream.message().await? {
        match frame.frame {
            Some(Out::Stdout(b)) => sink.write(Target::Stdout, &b)?,
            Some(Out::Stderr(b)) => sink.write(Target::Stderr, &b)?,
            Some(Out::Exit(e)) => return Ok(exit_code_byte(e.exit_code)),
            Some(Out::Started(_)) | None => {}
        }
    }
    Err(CliError::engine(
        "the exec stream ended without an exit status",
    ))
}
