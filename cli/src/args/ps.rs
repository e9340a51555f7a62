//! `quilt ps`.

use clap::Args;

use super::Format;

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default: only created, starting and running).
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Only print container ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Do not truncate ids and commands.
    #[arg(long)]
    pub no_trunc: bool,

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Filter: state=STATE, name=SUBSTRING, label=KEY or label=KEY=VALUE (repeatable).
    #[arg(long = "filter", value_name = "FILTER", value_parser = parse_filter)]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    State(String),
    Name(String),
    Label(String, Option<String>),
}

/// Accepts `state=..`, `name=..`, `label=KEY` and `label=KEY=VALUE`.
pub fn parse_filter(s: &str) -> Result<Filter, String> {
    let Some((kind, value)) = s.split_once('=') else {
        return Err("expected state=STATE, name=NAME or label=KEY[=VALUE]".to_owned());
    };
    match kind {
        "state" | "status" => Ok(Filter::State(value.to_ascii_lowercase())),
        "name" => Ok(Filter::Name(value.to_owned())),
        "label" => {
            let (key, val) = match value.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (value, None),
            };
            if key.is_empty() {
                return Err("the label key must not be empty".to_owned());
            }
            Ok(Filter::Label(key.to_owned(), val))
        }
        other => Err(format!(
            "unknown filter {other:?} (expected state, name or label)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Command, parse};
    use super::*;

    #[test]
    fn ps_filters() {
        let cli = parse(&[
            "ps",
            "-a",
            "--format",
            "json",
            "--filter",
            "state=Running",
            "--filter",
            "name=web",
            "--filter",
            "label=a=b=c",
            "--filter",
            "label=k",
        ])
        .unwrap();
        let Command::Ps(p) = cli.command else {
            panic!()
        };
        assert!(p.all);
        assert_eq!(p.format, Format::Json);
        assert_eq!(
            p.filters,
            [
                Filter::State("running".into()),
                Filter::Name("web".into()),
                Filter::Label("a".into(), Some("b=c".into())),
                Filter::Label("k".into(), None),
            ]
        );
        assert!(parse(&["ps", "--filter", "bogus=1"]).is_err());
        assert!(parse(&["ps", "--filter", "state"]).is_err());
    }
}
