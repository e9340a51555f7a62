//! `quilt ps`.

use clap::Args;

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

    /// Output format: table, json, or a Go template such as
    /// '{{.ID}} {{.Names}}' ('table ...' adds a header line).
    #[arg(long, default_value = "table", value_parser = parse_format)]
    pub format: PsFormat,

    /// Only the N most recently created containers (any state).
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,

    /// Only the most recently created container (any state).
    #[arg(short = 'l', long)]
    pub latest: bool,

    /// Filter: state=STATE, name=SUBSTRING, label=KEY or label=KEY=VALUE (repeatable).
    #[arg(long = "filter", value_name = "FILTER", value_parser = parse_filter)]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsFormat {
    Table,
    Json,
    Template(String),
}

fn parse_format(s: &str) -> Result<PsFormat, String> {
    Ok(match s {
        "table" => PsFormat::Table,
        "json" => PsFormat::Json,
        t if t.contains("{{") => PsFormat::Template(t.to_owned()),
        other => {
            return Err(format!(
                "unknown format {other:?} (table, json or a template such as '{{{{.ID}}}}')"
            ));
        }
    })
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
        assert_eq!(p.format, PsFormat::Json);
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
