//! `quilt logs`.

use clap::Args;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep streaming until the container exits.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,

    /// Prefix every line with its RFC 3339 timestamp.
    #[arg(short = 't', long)]
    pub timestamps: bool,

    /// Only lines written since then: a duration before now (10s, 5m,
    /// 1h30m), an RFC 3339 time or unix seconds.
    #[arg(long, value_name = "DURATION|TIME", value_parser = crate::since::parse_since)]
    pub since: Option<prost_types::Timestamp>,

    #[arg(value_name = "ID")]
    pub id: String,
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
        assert_eq!(l.tail, Some(5));
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
