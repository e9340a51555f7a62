//! `quilt start|stop|kill|rm|wait`.

use clap::Args;

#[derive(Debug, Args)]
pub struct IdsArgs {
    /// Container ids, unique id prefixes or names.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output (and exit with its exit code).
    #[arg(short = 'a', long)]
    pub attach: bool,

    /// Attach the container's stdin (it was created with -i).
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// The keys that detach from an attached terminal (`ctrl-p,ctrl-q`).
    #[arg(long, value_name = "KEYS", value_parser = quilt_proto::detach_keys::parse)]
    pub detach_keys: Option<quilt_proto::detach_keys::DetachKeys>,

    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach stdin (output only).
    #[arg(long)]
    pub no_stdin: bool,

    /// The keys that detach from an attached terminal (`ctrl-p,ctrl-q`).
    #[arg(long, value_name = "KEYS", value_parser = quilt_proto::detach_keys::parse)]
    pub detach_keys: Option<quilt_proto::detach_keys::DetachKeys>,

    /// Container id, unique id prefix or name.
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait after SIGTERM before SIGKILL (server default: 10).
    #[arg(short = 't', long = "time", value_name = "SECS")]
    pub timeout: Option<u32>,

    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal name ("KILL", "SIGTERM") or number.
    #[arg(short = 's', long = "signal", default_value = "KILL")]
    pub signal: String,

    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill the container first if it is running.
    #[arg(short = 'f', long)]
    pub force: bool,

    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::super::{Command, parse};

    #[test]
    fn lifecycle_commands() {
        let cli = parse(&["stop", "-t", "3", "a", "b"]).unwrap();
        let Command::Stop(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.timeout, Some(3));
        assert_eq!(s.ids, ["a", "b"]);

        let cli = parse(&["kill", "a"]).unwrap();
        let Command::Kill(k) = cli.command else {
            panic!()
        };
        assert_eq!(k.signal, "KILL");

        let cli = parse(&["kill", "-s", "TERM", "a"]).unwrap();
        let Command::Kill(k) = cli.command else {
            panic!()
        };
        assert_eq!(k.signal, "TERM");

        let cli = parse(&["rm", "-f", "a"]).unwrap();
        let Command::Rm(r) = cli.command else {
            panic!()
        };
        assert!(r.force);
        assert!(parse(&["rm"]).is_err());
    }
}
