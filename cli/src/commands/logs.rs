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
            tail: args.tail.and_then(|t| t.0),
            since: args.since,
        })
        .await?
        .into_inner();
    let mut printer = LogPrinter::new(Sink::stdio(), args.timestamps);
    let mut exited = false;
    // With --until, following ends at that time even if nothing is written.
    let deadline = args.until.as_ref().filter(|_| args.follow).map(|u| {
        let at = std::time::UNIX_EPOCH
            + std::time::Duration::new(u.seconds.max(0) as u64, u.nanos.max(0) as u32);
        let left = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        tokio::time::Instant::now() + left
    });
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, stream.message()).await {
                Ok(m) => m?,
                Err(_) => {
                    exited = true;
                    break;
                }
            },
            None => stream.message().await?,
        };
        let Some(response) = next else { break };
        match response.item {
            Some(Item::Entry(entry)) => {
                // Entries come in time order: the first one past --until ends it.
                if let (Some(until), Some(at)) = (&args.until, &entry.timestamp)
                    && (at.seconds, at.nanos) > (until.seconds, until.nanos)
                {
                    exited = true;
                    break;
                }
                printer.print(&entry)?
            }
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
