//! `quilt volume ...`.

use clap::Subcommand;

use super::values::parse_label;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a named volume.
    Create {
        #[arg(value_name = "NAME")]
        name: String,
        /// Label KEY=VALUE (repeatable).
        #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// List volumes.
    Ls {
        /// Print JSON (one array) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print volumes as pretty JSON.
    Inspect {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
    /// Remove volumes and their data.
    Rm {
        /// Remove even while containers use it.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
}
