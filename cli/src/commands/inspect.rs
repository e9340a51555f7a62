//! `quilt status` (one-line JSON) and `quilt inspect` (pretty JSON).

use quilt_proto::v1::{Container, GetContainerRequest};

use crate::args::IdArg;
use crate::client::Client;
use crate::error::CliError;
use crate::output::json::{ContainerView, compact, pretty};
use crate::output::stream::print_stdout;

async fn get(client: &mut Client, id: String) -> Result<Container, CliError> {
    client
        .get_container(GetContainerRequest { id: id.clone() })
        .await?
        .into_inner()
        .container
        .ok_or_else(|| CliError::engine(format!("no such container: {id}")))
}

pub async fn status(client: &mut Client, args: IdArg) -> Result<u8, CliError> {
    let container = get(client, args.id).await?;
    print_stdout(&format!("{}\n", compact(&ContainerView::from(&container))?))?;
    Ok(0)
}

pub async fn inspect(client: &mut Client, args: IdArg) -> Result<u8, CliError> {
    let container = get(client, args.id).await?;
    print_stdout(&format!("{}\n", pretty(&ContainerView::from(&container))?))?;
    Ok(0)
}
