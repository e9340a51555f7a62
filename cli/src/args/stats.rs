//! `quilt stats`, `quilt top`, `quilt pause`, `quilt unpause` and `quilt
//! lifetime` (the operator's view of running containers).

use clap::Args;

use super::Format;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one sample and exit (default: a new sample every interval).
    #[arg(long)]
    pub no_stream: bool,

    /// Every container, not only running and paused ones (when no ID is given).
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Output format: a table, or one JSON object per container and sample.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Milliseconds between samples (and the CPU sample of --no-stream).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u32).range(100..=60000))]
    pub interval: Option<u32>,

    /// Containers (ids, unique id prefixes or names); none: all running.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LifetimeArgs {
    /// The TTL becomes this from now (0: none).
    #[arg(long, value_name = "DURATION", value_parser = crate::since::parse_duration_ms)]
    pub ttl: Option<u64>,

    /// Count as activity: the idle timeout starts again.
    #[arg(long)]
    pub touch: bool,

    /// Container id, unique id prefix or name.
    #[arg(value_name = "ID")]
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::super::{Command, Format, parse};

    #[test]
    fn stats_arguments() {
        let cli = parse(&["stats", "--no-stream", "-a", "--format", "json", "a", "b"]).unwrap();
        let Command::Stats(s) = cli.command else {
            panic!()
        };
        assert!(s.no_stream && s.all);
        assert_eq!(s.format, Format::Json);
        assert_eq!(s.ids, ["a", "b"]);
        assert!(parse(&["stats", "--interval", "10"]).is_err());
        assert!(parse(&["top"]).is_err());
        assert!(parse(&["pause"]).is_err());
        assert!(parse(&["unpause", "a", "b"]).is_ok());
    }
}
