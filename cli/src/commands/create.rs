//! `quilt create` and `quilt run`.

use crate::args::container::{CreateArgs, RunArgs};
use crate::client::Client;
use crate::error::CliError;
use crate::output::stream::print_stdout;
use quilt_proto::v1::StartContainerRequest;

use super::attach;
use super::spec::create_request;

/// Creates the container (started in the background unless --no-start) and
/// prints its full id.
pub async fn create(client: &mut Client, args: CreateArgs) -> Result<u8, CliError> {
    let request = create_request(&args.spec, args.no_start)?;
    let created = client.create_container(request).await?.into_inner();
    print_stdout(&format!("{}\n", created.id))?;
    Ok(0)
}

/// With -d: creates, starts and prints the id once running; otherwise creates the container stopped, attaches
/// to its output, starts it and exits with its exit code.
pub async fn run(client: &mut Client, args: RunArgs) -> Result<u8, CliError> {
    // Created stopped either way: detached, StartContainer returns once the
    // workload runs (or reports why it could not start), as docker's run -d.
    let request = create_request(&args.spec, true)?;
    let auto_remove = request.auto_remove;
    let priority = request.priority;
    let created = client.create_container(request).await?.into_inner();
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
    attach::start_attached(client, &created.id, auto_remove, priority).await
}
