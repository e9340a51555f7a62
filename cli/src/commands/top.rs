//! `quilt top`: the processes of a container.

use quilt_proto::v1::{ProcessInfo, TopContainerRequest};

use crate::args::IdArg;
use crate::client::Client;
use crate::error::CliError;
use crate::output::stream::print_stdout;
use crate::output::table::render;

pub const TOP_HEADERS: [&str; 7] = ["PID", "CPID", "PPID", "UID", "STAT", "TIME", "COMMAND"];

/// CPU time as [H:]MM:SS.
fn cpu_time(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

pub fn top_row(p: &ProcessInfo) -> Vec<String> {
    let uid = if p.uid == p.container_uid {
        p.uid.to_string()
    } else {
        // A private user namespace: the container's view, then the host's.
        format!("{} ({})", p.container_uid, p.uid)
    };
    vec![
        p.pid.to_string(),
        p.container_pid.to_string(),
        p.ppid.to_string(),
        uid,
        p.state.clone(),
        cpu_time(p.cpu_time_ns),
        p.command.clone(),
    ]
}

pub async fn top(client: &mut Client, args: IdArg) -> Result<u8, CliError> {
    let r = client
        .top_container(TopContainerRequest { id: args.id })
        .await?
        .into_inner();
    let rows: Vec<Vec<String>> = r.processes.iter().map(top_row).collect();
    print_stdout(&render(&TOP_HEADERS, &rows))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows() {
        assert_eq!(cpu_time(61_500_000_000), "01:01");
        assert_eq!(cpu_time(3_725_000_000_000), "1:02:05");
        let p = ProcessInfo {
            pid: 4242,
            container_pid: 1,
            ppid: 4240,
            uid: 100_000,
            container_uid: 0,
            state: "S".into(),
            cpu_time_ns: 0,
            rss_bytes: 0,
            command: "sleep 60".into(),
        };
        assert_eq!(
            top_row(&p),
            ["4242", "1", "4240", "0 (100000)", "S", "00:00", "sleep 60"]
        );
    }
}
