//! `quilt create` and `quilt run`.

use crate::args::container::{CreateArgs, RunArgs};
use crate::client::{self, Client};
use crate::error::CliError;
use crate::output::stream::print_stdout;
use quilt_proto::v1::{CreateContainerRequest, CreateContainerResponse, StartContainerRequest};

use super::attach;
use super::attach_input::InputOptions;
use super::spec::create_request;

/// Creates the container; when its image is missing and looks like a
/// registry reference, pulls it first and tries again (as docker does).
async fn create_pulling(
    target: &client::Target,
    client: &mut Client,
    request: CreateContainerRequest,
) -> Result<CreateContainerResponse, CliError> {
    match client.create_container(request.clone()).await {
        Ok(r) => Ok(r.into_inner()),
        Err(s)
            if s.code() == tonic::Code::NotFound
                && s.message().starts_with("no such image")
                && quilt_registry::looks_like_reference(&request.image) =>
        {
            eprintln!("image {} is not here: pulling it", request.image);
            super::pull::pull_image(target, &request.image, None, false).await?;
            Ok(client.create_container(request).await?.into_inner())
        }
        Err(s) => Err(s.into()),
    }
}

/// Creates the container (started in the background unless --no-start) and
/// prints its full id.
pub async fn create(
    target: &client::Target,
    client: &mut Client,
    args: CreateArgs,
) -> Result<u8, CliError> {
    let request = create_request(&args.spec, args.no_start)?;
    let created = create_pulling(target, client, request).await?;
    print_stdout(&format!("{}\n", created.id))?;
    Ok(0)
}

/// With -d: creates, starts and prints the id once running; otherwise creates the container stopped, attaches
/// to its output, starts it and exits with its exit code.
pub async fn run(
    target: &client::Target,
    client: &mut Client,
    args: RunArgs,
) -> Result<u8, CliError> {
    // Created stopped either way: detached, StartContainer returns once the
    // workload runs (or reports why it could not start), as docker's run -d.
    let mut request = create_request(&args.spec, true)?;
    let input = InputOptions {
        stdin: args.spec.interactive,
        tty: args.spec.tty,
        // A terminal's stdin is never closed by the end of ours (docker's).
        close_at_eof: !args.spec.tty,
        detach_keys: args.spec.detach_keys.clone().unwrap_or_default(),
    };
    if !args.detach {
        if input.stdin && input.tty && !super::exec_tty::stdin_is_tty() {
            return Err(CliError::engine(
                "the input device is not a TTY: -t with -i needs a terminal on stdin (drop -t to pipe input)",
            ));
        }
        // Attached with -i: the end of this input closes the container's
        // stdin (docker's StdinOnce).
        if let Some(stdio) = request.stdio.as_mut() {
            stdio.stdin_once = stdio.open_stdin;
        }
    }
    let auto_remove = request.auto_remove;
    let priority = request.priority;
    let created = create_pulling(target, client, request).await?;
    if args.detach {
        let started = client
            .start_container(StartContainerRequest {
                id: created.id.clone(),
                priority,
            })
            .await;
        if let Err(status) = started {
            return Err(attach::start_failed(client, &created.id, auto_remove, &status).await);
        }
        print_stdout(&format!("{}\n", created.id))?;
        return Ok(0);
    }
    attach::start_attached(client, &created.id, auto_remove, priority, &input).await
}
