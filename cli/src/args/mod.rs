//! Command-line grammar of `quilt` (clap derive definitions), one file per
//! group of subcommands as in `commands/`, plus the checks clap cannot
//! express. What a parse error prints and exits with is `error.rs`'s.
//!
//! Commands that take a workload argv (`run`, `create`, `exec`) use a
//! trailing var arg: every word after IMAGE (or ID) belongs to the command,
//! even when it looks like a flag, and `--` is optional.

pub mod container;
pub mod cp;
pub mod events;
pub mod exec;
pub mod image;
pub mod lifecycle;
pub mod logs;
pub mod network;
pub mod prune;
pub mod ps;
pub mod registry;
pub mod stats;
pub mod values;
pub mod volume;

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use container::{CreateArgs, RunArgs};
use cp::CpArgs;
use events::EventsArgs;
use exec::{ExecArgs, ExecIdArg, ExecKillArgs, ExecLogsArgs};
use image::ImageCommand;
use lifecycle::{AttachArgs, IdsArgs, KillArgs, RmArgs, StartArgs, StopArgs};
use logs::LogsArgs;
use network::NetworkCommand;
use prune::ContainerCommand;
use ps::PsArgs;
use registry::{LoginArgs, LogoutArgs, PullArgs};
use stats::{LifetimeArgs, StatsArgs};
use volume::VolumeCommand;

/// Default path of quiltd's gRPC socket.
pub const DEFAULT_SOCKET: &str = "/run/quilt/quilt.sock";

#[derive(Debug, Parser)]
#[command(
    name = "quilt",
    version,
    about = "Command-line client for the Quilt container engine",
    arg_required_else_help = true,
    propagate_version = true
)]
pub struct Cli {
    /// Path of quiltd's Unix socket.
    #[arg(long, global = true, env = "QUILT_SOCKET", default_value = DEFAULT_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,

    /// Talk to quiltd's TCP listener instead (TLS): tcp://HOST:PORT.
    #[arg(
        long,
        global = true,
        env = "QUILT_HOST",
        value_name = "tcp://HOST:PORT"
    )]
    pub host: Option<String>,

    /// PEM CA certificate(s) to verify the TCP listener with.
    #[arg(
        long,
        global = true,
        env = "QUILT_TLS_CA",
        value_name = "PEM",
        requires = "host"
    )]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate and key (mutual TLS).
    #[arg(long, global = true, env = "QUILT_TLS_CERT", value_name = "PEM", requires_all = ["host", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, global = true, env = "QUILT_TLS_KEY", value_name = "PEM", requires_all = ["host", "tls_cert"])]
    pub tls_key: Option<PathBuf>,

    /// The server name to verify in the listener's certificate (the host
    /// part of --host when omitted).
    #[arg(
        long,
        global = true,
        env = "QUILT_TLS_SERVER_NAME",
        value_name = "NAME",
        requires = "host"
    )]
    pub tls_server_name: Option<String>,

    /// A file holding the bearer token of the TCP listener.
    #[arg(
        long,
        global = true,
        env = "QUILT_TOKEN_FILE",
        value_name = "FILE",
        requires = "host"
    )]
    pub token_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and start a container, attached to its output unless -d.
    #[command(
        override_usage = "quilt run [OPTIONS] IMAGE [--] [CMD [ARG]...]",
        disable_help_flag = true
    )]
    Run(RunArgs),
    /// Create a container (started in the background unless --no-start); prints its id.
    #[command(
        override_usage = "quilt create [OPTIONS] IMAGE [--] [CMD [ARG]...]",
        disable_help_flag = true
    )]
    Create(CreateArgs),
    /// Start a created, exited or failed container.
    Start(StartArgs),
    /// Attach to a running container: its output from now on and, when it
    /// was created with -i, its stdin (detach with ctrl-p ctrl-q).
    Attach(AttachArgs),
    /// Stop containers (SIGTERM, then SIGKILL after the timeout).
    Stop(StopArgs),
    /// Stop containers (as `stop`), then start them again.
    Restart(StopArgs),
    /// Send a signal to containers.
    Kill(KillArgs),
    /// Remove containers.
    Rm(RmArgs),
    /// Wait for containers to exit and print their exit codes.
    Wait(IdsArgs),
    /// Print the output of a container.
    Logs(LogsArgs),
    /// Run a command in a running container.
    #[command(override_usage = "quilt exec [OPTIONS] ID [--] CMD [ARG]...")]
    Exec(ExecArgs),
    /// List containers.
    Ps(PsArgs),
    /// Print a container as single-line JSON.
    Status(IdArg),
    /// Print containers as pretty JSON (several ids: a JSON array), or
    /// through a --format template.
    Inspect(InspectArgs),
    /// Stream container state changes.
    Events(EventsArgs),
    /// List the execs of a container.
    #[command(name = "exec-ls")]
    ExecLs(IdArg),
    /// Wait for an exec to exit and print its exit code.
    #[command(name = "exec-wait")]
    ExecWait(ExecIdArg),
    /// Send a signal to an exec'd command.
    #[command(name = "exec-kill")]
    ExecKill(ExecKillArgs),
    /// Print the output of an exec.
    #[command(name = "exec-logs")]
    ExecLogs(ExecLogsArgs),
    /// Copy files between a container (running or stopped) and the host:
    /// `quilt cp SRC ID:DIR` or `quilt cp ID:PATH DIR`.
    Cp(CpArgs),
    /// Freeze every process of running containers.
    Pause(IdsArgs),
    /// Thaw paused containers.
    Unpause(IdsArgs),
    /// Show the resource usage of containers (CPU, memory, network, block I/O, pids).
    Stats(StatsArgs),
    /// List the processes of a running container.
    Top(IdArg),
    /// Keep a container alive: a new TTL from now (--ttl) and/or activity
    /// for its idle timeout (--touch); prints its deadlines as JSON.
    Lifetime(LifetimeArgs),
    /// Manage containers: prune.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage named volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Rename a container (its hostname stays).
    Rename {
        #[arg(value_name = "CONTAINER")]
        id: String,
        #[arg(value_name = "NEW_NAME")]
        name: String,
    },
    /// Show the daemon's version, host and counts.
    Info {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Show the client's and the daemon's versions.
    Version,
    /// List images (`image ls`).
    Images {
        #[arg(long, value_enum, default_value = "table")]
        format: image::ImageFormat,
    },
    /// Remove images (`image rm`).
    Rmi {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
    },
    /// Give an image another name (`image tag`).
    Tag(image::TagArgs),
    /// Write images as a `docker save` archive (`image save`).
    Save(image::SaveArgs),
    /// Load images from an archive (`image load`).
    Load(image::LoadArgs),
    /// Make an image of a container's files and settings.
    Commit(image::CommitArgs),
    /// Write a container's root filesystem as a tar stream.
    Export(image::ExportArgs),
    /// Manage bridge networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// List a container's published ports (HOST_IP:HOST_PORT->PORT/PROTO).
    Port(IdArg),
    /// Manage images: import, build from host programs, list, inspect,
    /// remove, prune, tag, save, load.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The daemon's health (`system info`) and disk use (`system df`).
    #[command(subcommand)]
    System(SystemCommand),
    /// Warm pools: containers of an image kept prepared, adopted by a
    /// `run` of the same shape (network none, no volumes, no terminal).
    #[command(subcommand)]
    Pool(PoolCommand),
    /// The nodes of the cluster (quiltd daemons sharing PostgreSQL).
    #[command(subcommand)]
    Node(NodeCommand),
    /// Pull an image from a registry (prints its id).
    Pull(PullArgs),
    /// Store credentials for a registry in ~/.docker/config.json (or
    /// $DOCKER_CONFIG/config.json), used by `pull`, `run` and `create`.
    Login(LoginArgs),
    /// Remove a registry's stored credentials.
    Logout(LogoutArgs),
}

// One container, for the commands that take exactly one.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Container id, unique id prefix or name.
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Headline figures (start queue, starter utilization, time to running,
    /// store writes) rated healthy / plan / act / emergency.
    Info {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Disk use of images, layers, containers and volumes.
    Df,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List the nodes: lease, address, capacity and load.
    Ls {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Keep SIZE containers of IMAGE prepared (0 removes the pool).
    Set(PoolArgs),
    /// Remove the pool of IMAGE (its prepared containers end).
    Rm(PoolShapeArgs),
    /// List the pools: size, ready, hits, misses, last error.
    Ls {
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Args)]
pub struct PoolShapeArgs {
    /// The image its containers run.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Containers with --init.
    #[arg(long)]
    pub init: bool,
    /// Containers with --read-only.
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Debug, Args)]
pub struct PoolArgs {
    #[command(flatten)]
    pub shape: PoolShapeArgs,
    /// How many to keep prepared.
    #[arg(value_name = "SIZE")]
    pub size: u32,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A Go template, e.g. '{{.State.Status}}' or '{{json .Config}}'
    /// (docker's inspect keys and Quilt's own).
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    pub format: Option<String>,

    /// Container ids, unique id prefixes or names.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

// The output format of `ps` and `events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Drops one leading `--` (the optional separator before a command).
pub fn strip_separator(words: &[String]) -> &[String] {
    match words.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => words,
    }
}

impl Cli {
    /// Parses `args` (including the program name) and applies the checks
    /// clap cannot express: no flag-like IMAGE or ID in front of a command,
    /// and a non-empty command after an optional `--` for exec (run and
    /// create may take theirs from the image).
    pub fn parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args)?;
        let (sub, first, command) = match &cli.command {
            Command::Run(r) => ("run", r.spec.image(), r.spec.command()),
            Command::Create(c) => ("create", c.spec.image(), c.spec.command()),
            Command::Exec(e) => ("exec", e.id(), e.command()),
            _ => return Ok(cli),
        };
        if first.starts_with('-') && first != "-" {
            return Err(usage_error(
                sub,
                ErrorKind::UnknownArgument,
                format!("unexpected argument '{first}' found"),
            ));
        }
        if command.is_empty() && sub == "exec" {
            return Err(usage_error(
                sub,
                ErrorKind::MissingRequiredArgument,
                "a command is required after ID".into(),
            ));
        }
        Ok(cli)
    }
}

/// A clap error carrying the usage of subcommand `sub`.
fn usage_error(sub: &str, kind: ErrorKind, message: String) -> clap::Error {
    let mut cmd = Cli::command();
    cmd.build();
    match cmd.find_subcommand_mut(sub) {
        Some(sub_cmd) => sub_cmd.error(kind, message),
        None => cmd.error(kind, message),
    }
}

/// Parses `quilt ARGS...` the way `main` does (for unit tests).
#[cfg(test)]
pub(crate) fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::parse_args(std::iter::once("quilt").chain(args.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn command_is_required_for_exec_only() {
        // run and create may take the image's command (the daemon refuses
        // an image without one).
        assert!(parse(&["run", "default"]).is_ok());
        assert!(parse(&["create", "default", "--"]).is_ok());
        let err = parse(&["exec", "c1"]).unwrap_err();
        assert!(
            err.to_string().contains("a command is required after ID"),
            "{err}"
        );
        assert_eq!(
            parse(&["run"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        let err = parse(&["exec", "c1", "--"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn socket_option_and_default() {
        let cli = parse(&["--socket", "/tmp/q.sock", "ps"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/q.sock"));
        let cli = parse(&["ps", "--socket", "/tmp/q2.sock"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/q2.sock"));
    }
}
