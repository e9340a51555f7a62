//! `quilt logs`.

use quilt_proto::v1::{GetLogsRequest, get_logs_response::Item};

use crate::args::logs::LogsArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::output::stream::{LogPrinter, Sink};

/// Prints the captured output; with -f keeps following until the container
/// has exited.
pub async fn logs(client: &mut Client, args: LogsArgs) -> Result<u8, CliError> {
    let mut stream = client
        .get_logs(GetLogsRequest {
            id: args.id,
            follow: args.follow,
            tail: args.tail,
            since: args.since,
        })
        .await?
        .into_inner();
    let mut printer = LogPrinter::new(Sink::stdio(), args.timestamps);
    let mut exited = false;
    while let Some(response) = stream.message().await? {
        match response.item {
            Some(Item::Entry(entry)) => printer.print(&entry)?,
            Some(Item::Exit(_)) => {
                exited = true;
                break;
            }
            None => {}
        }
    }
    if args.follow && !exited {
        return Err(CliError::engine(
            "the log stream ended before the container exited (did quiltd stop?)",
        ));
    }
    Ok(0)
}
