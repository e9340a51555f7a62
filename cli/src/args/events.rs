//! `quilt events`.

use clap::Args;

use super::Format;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Output format: one text line or one JSON object per event.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Only matching events: container=ID|NAME, event=ACTION (repeatable;
    /// values of one key are alternatives).
    #[arg(short = 'f', long = "filter", value_name = "KEY=VALUE", value_parser = parse_filter)]
    pub filters: Vec<EventFilter>,

    /// Begin with the remembered events from this time: 10m, an RFC 3339
    /// time or unix seconds.
    #[arg(long, value_name = "TIME", value_parser = crate::since::parse_since)]
    pub since: Option<prost_types::Timestamp>,

    /// End the stream at this time (same forms as --since).
    #[arg(long, value_name = "TIME", value_parser = crate::since::parse_until)]
    pub until: Option<prost_types::Timestamp>,

    /// Only events of this container.
    #[arg(value_name = "ID")]
    pub id: Option<String>,
}

/// One `--filter` of `events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    Container(String),
    Event(String),
}

fn parse_filter(s: &str) -> Result<EventFilter, String> {
    match s.split_once('=') {
        Some(("container", v)) if !v.is_empty() => Ok(EventFilter::Container(v.to_owned())),
        Some(("event", v)) if !v.is_empty() => Ok(EventFilter::Event(v.to_owned())),
        _ => Err("expected container=ID|NAME or event=ACTION".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, parse};
    use super::EventFilter;

    #[test]
    fn events_filters() {
        let cli = parse(&[
            "events",
            "-f",
            "container=web",
            "--filter",
            "event=exited",
            "--since",
            "10m",
        ])
        .unwrap();
        let Command::Events(e) = cli.command else {
            panic!()
        };
        assert_eq!(
            e.filters,
            [
                EventFilter::Container("web".into()),
                EventFilter::Event("exited".into())
            ]
        );
        assert!(e.since.is_some() && e.until.is_none());
        assert!(parse(&["events", "--filter", "colour=red"]).is_err());
        assert!(parse(&["events", "--filter", "event="]).is_err());
        assert!(parse(&["events", "--until", "yesterday-ish"]).is_err());
    }
}
