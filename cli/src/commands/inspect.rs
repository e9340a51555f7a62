//! `quilt status` (one-line JSON) and `quilt inspect` (pretty JSON).

use quilt_proto::v1::{Container, GetContainerRequest};

use crate::args::{IdArg, InspectArgs};
use crate::client::Client;
use crate::error::CliError;
use crate::output::docker::inspect_value;
use crate::output::json::{ContainerView, compact, pretty};
use crate::output::stream::print_stdout;
use crate::output::template::Format as Template;

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

/// One id: its JSON object; several: a JSON array; --format: the template
/// rendered once per container (docker's keys and Quilt's own).
pub async fn inspect(client: &mut Client, args: InspectArgs) -> Result<u8, CliError> {
    let format = args
        .format
        .as_deref()
        .map(|t| Template::parse(t, &[]))
        .transpose()?;
    let mut containers = Vec::with_capacity(args.ids.len());
    for id in &args.ids {
        containers.push(get(client, id.clone()).await?);
    }
    let text = match (&format, containers.as_slice()) {
        (Some(f), _) => {
            let mut out = String::new();
            for c in &containers {
                out.push_str(&f.render(&inspect_value(c))?);
            }
            out
        }
        (None, [one]) => format!("{}\n", pretty(&ContainerView::from(one))?),
        (None, many) => {
            let views: Vec<ContainerView> = many.iter().map(ContainerView::from).collect();
            format!("{}\n", pretty(&views)?)
        }
    };
    print_stdout(&text)?;
    Ok(0)
}
