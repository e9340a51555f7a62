//! Command-line grammar of the detached-exec commands (`exec-wait`,
//! `exec-kill`, `exec-logs`).

use clap::Args;

#[derive(Debug, Args)]
pub struct ExecIdArg {
    /// Exec id (or a unique prefix), as printed by `quilt exec -d`.
    #[arg(value_name = "EXEC_ID")]
    pub exec_id: String,
}

#[derive(Debug, Args)]
pub struct ExecKillArgs {
    /// Signal name or number (default: KILL).
    #[arg(short = 's', long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,

    #[arg(value_name = "EXEC_ID")]
    pub exec_id: String,
}

#[derive(Debug, Args)]
pub struct ExecLogsArgs {
    /// Keep streaming until the exec has exited.
    #[arg(short = 'f', long)]
    pub follow: bool,

    #[arg(value_name = "EXEC_ID")]
    pub exec_id: String,
}
