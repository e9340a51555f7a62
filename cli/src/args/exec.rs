//! `quilt exec`, and the detached-exec commands (`exec-wait`,
//! `exec-kill`, `exec-logs`; `exec-ls` takes an [`IdArg`](super::IdArg)).

use clap::Args;

use super::{strip_separator, values};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open and send it to the command.
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Run the command on a pseudo-terminal (raw mode, window size follows).
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Run in the background and print the exec id.
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Extra environment variable KEY=VALUE, or KEY alone for the
    /// caller's value (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]", value_parser = values::parse_env)]
    pub env: Vec<String>,

    /// Working directory for the command.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// Run as this user: UID[:GID] or NAME[:GROUP] of the container.
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// The container (id, id prefix or name) followed by the command and its
    /// arguments, passed exactly.
    #[arg(
        value_names = ["ID", "CMD"],
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub argv: Vec<String>,
}

impl ExecArgs {
    /// The container id, prefix or name.
    pub fn id(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    /// The command argv, without a leading `--` separator.
    pub fn command(&self) -> &[String] {
        strip_separator(self.argv.get(1..).unwrap_or_default())
    }
}

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

#[cfg(test)]
mod tests {
    use super::super::{Command, parse};

    #[test]
    fn exec_argv_is_preserved() {
        let cli = parse(&[
            "exec", "-e", "A=1", "-w", "/", "c1", "--", "sh", "-c", "echo $A",
        ])
        .unwrap();
        let Command::Exec(e) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(e.id(), "c1");
        assert_eq!(e.env, ["A=1"]);
        assert_eq!(e.workdir.as_deref(), Some("/"));
        assert_eq!(e.command(), ["sh", "-c", "echo $A"]);

        let cli = parse(&["exec", "c1", "ls", "-la", "-e"]).unwrap();
        let Command::Exec(e) = cli.command else {
            panic!("not exec")
        };
        assert_eq!(e.command(), ["ls", "-la", "-e"]);
    }
}
