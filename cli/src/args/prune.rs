//! `quilt container prune`.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Remove every stopped container (created, exited, failed).
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Only containers with this label (KEY=VALUE), or created before a
    /// time (until=10m, an RFC 3339 time or unix seconds). Repeatable.
    #[arg(long = "filter", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
}
