//! `quilt logs`.

use clap::Args;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep streaming until the container exits.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Only the last N lines ("all": every line).
    #[arg(short = 'n', long, value_name = "N", value_parser = parse_tail)]
    pub tail: Option<Tail>,

    /// Prefix every line with its RFC 3339 timestamp.
    #[arg(short = 't', long)]
    pub timestamps: bool,

    /// Only lines written since then: a duration before now (10s, 5m,
    /// 1h30m), an RFC 3339 time or unix seconds.
    #[arg(long, value_name = "DURATION|TIME", value_parser = crate::since::parse_since)]
    pub since: Option<prost_types::Timestamp>,

    /// Only lines written before then (same forms as --since).
    #[arg(long, value_name = "DURATION|TIME", value_parser = crate::since::parse_since)]
    pub until: Option<prost_types::Timestamp>,

    #[arg(value_name = "ID")]
    pub id: String,
}

/// `--tail N` or `--tail all` (docker's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail(pub Option<u64>);

fn parse_tail(s: &str) -> Result<Tail, String> {
    if s == "all" {
        return Ok(Tail(None));
    }
    s.parse::<u64>()
        .map(|n| Tail(Some(n)))
        .map_err(|_| format!("expected a number of lines or \"all\", not {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::super::{Command, parse};
    use crate::error::parse_outcome;

    #[test]
    fn logs_options() {
        let cli = parse(&["logs", "-f", "--tail", "5", "-t", "a"]).unwrap();
        let Command::Logs(l) = cli.command else {
            panic!()
        };
        assert!(l.follow && l.timestamps);
        assert_eq!(l.tail, Some(super::Tail(Some(5))));
        let cli = parse(&["logs", "-n", "all", "--until", "10s", "a"]).unwrap();
        let Command::Logs(l) = cli.command else {
            panic!()
        };
        assert_eq!(l.tail, Some(super::Tail(None)));
        assert!(l.until.is_some());
        assert_eq!(l.since, None);

        let cli = parse(&["logs", "--since", "2026-11-23T19:00:00Z", "a"]).unwrap();
        let Command::Logs(l) = cli.command else {
            panic!()
        };
        assert_eq!(l.since.map(|t| t.seconds), Some(1_795_460_400));
        let err = parse(&["logs", "--since", "soon", "a"]).unwrap_err();
        assert_eq!(parse_outcome(&err).code, crate::error::EXIT_ENGINE);
    }
}
