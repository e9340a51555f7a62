//! `quilt network ...`.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network; prints its name.
    Create {
        #[arg(value_name = "NAME")]
        name: String,
        /// Its IPv4 subnet, e.g. 10.89.0.0/24 (default: a free /16).
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// No way out of the network (and no published ports).
        #[arg(long)]
        internal: bool,
    },
    /// List networks.
    Ls {
        /// Print JSON (one array) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print networks as pretty JSON.
    Inspect {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
    /// Remove networks (refused while a container is on one).
    Rm {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
}
