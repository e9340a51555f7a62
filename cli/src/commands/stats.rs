//! `quilt stats`: resource usage of containers, once or every interval.

use std::io::IsTerminal;

use quilt_proto::v1::{ContainerStats, GetStatsRequest, StreamStatsRequest};
use serde::Serialize;

use crate::args::Format;
use crate::args::stats::StatsArgs;
use crate::client::Client;
use crate::error::CliError;
use crate::output::json::{compact, state_name};
use crate::output::stream::print_stdout;
use crate::output::table::{render, short_id};

pub const STATS_HEADERS: [&str; 8] = [
    "CONTAINER ID",
    "NAME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

/// Bytes in docker's style: 1.5MiB, 512B (binary units for memory).
pub fn bytes_binary(n: u64) -> String {
    human(n, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB"])
}

/// Bytes in decimal units, as docker prints I/O: 1.2MB.
pub fn bytes_decimal(n: u64) -> String {
    human(n, 1000.0, &["B", "kB", "MB", "GB", "TB"])
}

fn human(n: u64, base: f64, units: &[&str]) -> String {
    let mut v = n as f64;
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    if i == 0 {
        format!("{n}{}", units[0])
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            + units[i]
    }
}

/// The cells of one table row, in `STATS_HEADERS` order.
pub fn stats_row(s: &ContainerStats) -> Vec<String> {
    let net = if s.network_available {
        format!(
            "{} / {}",
            bytes_decimal(s.network_rx_bytes),
            bytes_decimal(s.network_tx_bytes)
        )
    } else {
        "-- / --".to_owned()
    };
    vec![
        short_id(&s.id).to_owned(),
        s.name.clone(),
        format!("{:.2}%", s.cpu_percent),
        format!(
            "{} / {}",
            bytes_binary(s.memory_usage_bytes),
            bytes_binary(s.memory_limit_bytes)
        ),
        format!("{:.2}%", s.memory_percent),
        net,
        format!(
            "{} / {}",
            bytes_decimal(s.block_read_bytes),
            bytes_decimal(s.block_write_bytes)
        ),
        s.pids_current.to_string(),
    ]
}

/// `--format json`: one object per container and sample, raw numbers.
#[derive(Debug, Serialize)]
pub struct StatsView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub state: &'static str,
    pub cpu_percent: f64,
    pub cpu_usage_ns: u64,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: u64,
    pub memory_percent: f64,
    pub pids: u64,
    pub pids_limit: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_rx_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_tx_bytes: Option<u64>,
}

impl<'a> From<&'a ContainerStats> for StatsView<'a> {
    fn from(s: &'a ContainerStats) -> Self {
        StatsView {
            id: &s.id,
            name: &s.name,
            state: state_name(s.state),
            cpu_percent: s.cpu_percent,
            cpu_usage_ns: s.cpu_usage_ns,
            memory_usage_bytes: s.memory_usage_bytes,
            memory_limit_bytes: s.memory_limit_bytes,
            memory_percent: s.memory_percent,
            pids: s.pids_current,
            pids_limit: s.pids_limit,
            block_read_bytes: s.block_read_bytes,
            block_write_bytes: s.block_write_bytes,
            network_rx_bytes: s.network_available.then_some(s.network_rx_bytes),
            network_tx_bytes: s.network_available.then_some(s.network_tx_bytes),
        }
    }
}

fn print_batch(stats: &[ContainerStats], format: Format, clear: bool) -> Result<(), CliError> {
    let text = match format {
        Format::Table => {
            let rows: Vec<Vec<String>> = stats.iter().map(stats_row).collect();
            let table = render(&STATS_HEADERS, &rows);
            // A terminal shows the latest sample in place, as docker does.
            if clear {
                format!("\x1b[2J\x1b[H{table}")
            } else {
                table
            }
        }
        Format::Json => {
            let mut out = String::new();
            for s in stats {
                out.push_str(&compact(&StatsView::from(s))?);
                out.push('\n');
            }
            out
        }
    };
    print_stdout(&text)?;
    Ok(())
}

pub async fn stats(client: &mut Client, args: StatsArgs) -> Result<u8, CliError> {
    if args.no_stream {
        let r = client
            .get_stats(GetStatsRequest {
                ids: args.ids,
                all: args.all,
                sample_ms: args.interval.unwrap_or(0),
            })
            .await?
            .into_inner();
        print_batch(&r.stats, args.format, false)?;
        return Ok(0);
    }
    let clear = args.format == Format::Table && std::io::stdout().is_terminal();
    let mut stream = client
        .stream_stats(StreamStatsRequest {
            ids: args.ids,
            all: args.all,
            interval_ms: args.interval.unwrap_or(0),
        })
        .await?
        .into_inner();
    while let Some(batch) = stream.message().await? {
        print_batch(&batch.stats, args.format, clear)?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes_binary(0), "0B");
        assert_eq!(bytes_binary(1023), "1023B");
        assert_eq!(bytes_binary(1536 * 1024), "1.5MiB");
        assert_eq!(bytes_binary(64 << 20), "64MiB");
        assert_eq!(bytes_decimal(1_234_000), "1.234MB");
        assert_eq!(bytes_decimal(999), "999B");
    }

    #[test]
    fn rows() {
        let s = ContainerStats {
            id: "0123456789abcdef0123".into(),
            name: "web".into(),
            cpu_percent: 50.0,
            memory_usage_bytes: 1 << 20,
            memory_limit_bytes: 64 << 20,
            memory_percent: 1.5625,
            pids_current: 3,
            ..Default::default()
        };
        assert_eq!(
            stats_row(&s),
            [
                "0123456789ab",
                "web",
                "50.00%",
                "1MiB / 64MiB",
                "1.56%",
                "-- / --",
                "0B / 0B",
                "3"
            ]
        );
    }
}
