//! `quilt exec`.

use quilt_proto::v1::ExecRequest;

use crate::args::ExecArgs;
use crate::client::Client;
use crate::error::{CliError, exit_code_byte};
use crate::output::stream::{Sink, Target};

/// Runs the command in the container, relays its output and exits with its
/// exit code.
pub async fn exec(client: &mut Client, args: ExecArgs) -> Result<u8, CliError> {
    let response = client
        .exec(ExecRequest {
            id: args.id().to_owned(),
            command: args.command().to_vec(),
            env: args.env.clone(),
            working_dir: args.workdir.clone().unwrap_or_default(),
        })
        .await?
        .into_inner();
    let mut sink = Sink::stdio();
    sink.write(Target::Stdout, &response.stdout)?;
    sink.write(Target::Stderr, &response.stderr)?;
    Ok(exit_code_byte(response.exit_code))
}
