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
    /// Replace a container's egress policy (live when it runs: open
    /// connections it no longer allows are cut) and print it as JSON;
    /// with no option, print it. Entries: CIDR, address, domain or
    /// *.domain, optionally :PORT.
    Policy {
        #[arg(value_name = "CONTAINER")]
        id: String,
        /// What no entry allows: allowed (allow, the default) or refused.
        #[arg(long = "default", value_name = "allow|deny", value_parser = ["allow", "deny"])]
        default: Option<String>,
        /// Allowed (repeatable).
        #[arg(long = "allow", value_name = "ENTRY")]
        allow: Vec<String>,
        /// Refused (repeatable; wins over --allow).
        #[arg(long = "deny", value_name = "ENTRY")]
        deny: Vec<String>,
    },
    /// Remove networks (refused while a container is on one).
    Rm {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
}
