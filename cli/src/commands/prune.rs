//! `quilt container prune`: remove stopped containers, after a confirmation.

use std::io::{BufRead, IsTerminal, Write};

use quilt_proto::v1::PruneContainersRequest;

use crate::args::prune::{ContainerCommand, PruneArgs};
use crate::client::Client;
use crate::commands::stats::bytes_decimal;
use crate::error::CliError;
use crate::output::stream::print_stdout;

pub async fn container(client: &mut Client, cmd: ContainerCommand) -> Result<u8, CliError> {
    match cmd {
        ContainerCommand::Prune(args) => prune(client, args).await,
    }
}

/// The request for `--filter label=K=V` / `label=K` / `until=TIME`.
fn request(filters: &[String]) -> Result<PruneContainersRequest, CliError> {
    let mut r = PruneContainersRequest::default();
    for f in filters {
        match f.split_once('=') {
            Some(("label", kv)) if !kv.is_empty() => {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                r.labels.insert(k.to_owned(), v.to_owned());
            }
            Some(("until", t)) => {
                r.until = Some(crate::since::parse_until(t).map_err(CliError::engine)?);
            }
            _ => {
                return Err(CliError::engine(format!(
                    "invalid filter {f:?} (expected label=KEY[=VALUE] or until=TIME)"
                )));
            }
        }
    }
    Ok(r)
}

async fn prune(client: &mut Client, args: PruneArgs) -> Result<u8, CliError> {
    let req = request(&args.filters)?;
    if !args.force {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::engine(
                "container prune removes every stopped container: confirm with -f",
            ));
        }
        eprint!(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let r = client.prune_containers(req).await?.into_inner();
    let mut out = String::new();
    if !r.removed.is_empty() {
        out.push_str("Deleted Containers:\n");
        for id in &r.removed {
            out.push_str(id);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        bytes_decimal(r.reclaimed_bytes)
    ));
    print_stdout(&out)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let r = request(&["label=team=a".into(), "label=x".into()]).unwrap();
        assert_eq!(r.labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(r.labels.get("x").map(String::as_str), Some(""));
        assert!(request(&["until=10m".into()]).unwrap().until.is_some());
        assert!(request(&["colour=red".into()]).is_err());
        assert!(request(&["until=whenever".into()]).is_err());
    }
}
