//! `quilt events`.

use clap::Args;

use super::Format;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Output format: one text line or one JSON object per event.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Only events of this container.
    #[arg(value_name = "ID")]
    pub id: Option<String>,
}
