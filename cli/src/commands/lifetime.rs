//! `quilt lifetime`: move a container's TTL deadline, count as activity.

use quilt_proto::v1::UpdateLifetimeRequest;

use crate::args::stats::LifetimeArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::output::json::{ContainerView, compact};
use crate::output::stream::print_stdout;

pub async fn lifetime(client: &mut Client, args: LifetimeArgs) -> Result<u8, CliError> {
    if args.ttl.is_none() && !args.touch {
        return Err(CliError::engine("nothing to do: give --ttl and/or --touch"));
    }
    let c = client
        .update_lifetime(UpdateLifetimeRequest {
            id: args.id,
            ttl_ms: args.ttl,
            touch: args.touch,
        })
        .await?
        .into_inner()
        .container
        .ok_or_else(|| CliError::engine("no container in the reply"))?;
    let view = ContainerView::from(&c);
    print_stdout(&format!("{}\n", compact(&view.lifetime)?))?;
    Ok(0)
}
