//! Command-line grammar of `quilt` (clap derive definitions).
//!
//! Commands that take a workload argv (`run`, `create`, `exec`) use a
//! trailing var arg: every word after IMAGE (or ID) belongs to the command,
//! even when it looks like a flag, and `--` is optional.

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

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

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and start a container, attached to its output unless -d.
    #[command(override_usage = "quilt run [OPTIONS] IMAGE [--] CMD [ARG]...")]
    Run(RunArgs),
    /// Create a container (started in the background unless --no-start); prints its id.
    #[command(override_usage = "quilt create [OPTIONS] IMAGE [--] CMD [ARG]...")]
    Create(CreateArgs),
    /// Start a created, exited or failed container.
    Start(IdsArgs),
    /// Stop containers (SIGTERM, then SIGKILL after the timeout).
    Stop(StopArgs),
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
    /// Print a container as pretty JSON.
    Inspect(IdArg),
    /// Stream container state changes.
    Events(EventsArgs),
    /// List the execs of a container.
    #[command(name = "exec-ls")]
    ExecLs(IdArg),
    /// Wait for an exec to exit and print its exit code.
    #[command(name = "exec-wait")]
    ExecWait(crate::exec_args::ExecIdArg),
    /// Send a signal to an exec'd command.
    #[command(name = "exec-kill")]
    ExecKill(crate::exec_args::ExecKillArgs),
    /// Print the output of an exec.
    #[command(name = "exec-logs")]
    ExecLogs(crate::exec_args::ExecLogsArgs),
    /// Copy files between a container (running or stopped) and the host:
    /// `quilt cp SRC ID:DIR` or `quilt cp ID:PATH DIR`.
    Cp(CpArgs),
    /// Manage named volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage images: import, build from host programs, list, inspect, remove.
    #[command(subcommand)]
    Image(crate::image_args::ImageCommand),
}

/// Options shared by `run` and `create`.
#[derive(Debug, Clone, Args)]
pub struct ContainerSpec {
    /// Name of the container (generated when omitted).
    #[arg(long)]
    pub name: Option<String>,

    /// Environment variable KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<String>,

    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// Memory limit in MiB (0: no limit).
    #[arg(long, value_name = "MB", allow_negative_numbers = true)]
    pub memory: Option<i64>,

    /// CPU limit in cores, e.g. 0.5 (0: no limit).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub cpus: Option<f64>,

    /// Maximum number of processes (0: no limit).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids: Option<i64>,

    /// Hostname of the container (defaults to its name).
    #[arg(long)]
    pub hostname: Option<String>,

    /// Network mode.
    #[arg(long, value_enum, value_name = "MODE")]
    pub network: Option<NetworkArg>,

    /// Remove the container once it has exited.
    #[arg(long)]
    pub rm: bool,

    /// Run an init as PID 1 that reaps zombies and forwards signals (the
    /// command then runs as PID 2).
    #[arg(long)]
    pub init: bool,

    /// Label KEY=VALUE (repeatable; KEY alone means an empty value).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// Mount a named volume or a host path: NAME:/PATH[:ro] or
    /// /HOST/PATH:/PATH[:ro] (repeatable).
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,

    /// Mount a tmpfs: /PATH[:size=64m][,ro] (repeatable).
    #[arg(long = "tmpfs", value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,

    /// IMAGE ("default", a rootfs tarball or directory) followed by the
    /// command and its arguments, passed exactly.
    #[arg(
        value_names = ["IMAGE", "CMD"],
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub argv: Vec<String>,
}

impl ContainerSpec {
    /// The IMAGE word, as typed.
    pub fn image(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    /// The workload argv after IMAGE, without a leading `--` separator.
    pub fn command(&self) -> &[String] {
        strip_separator(self.argv.get(1..).unwrap_or_default())
    }
}

/// Drops one leading `--` (the optional separator before a command).
pub fn strip_separator(words: &[String]) -> &[String] {
    match words.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => words,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkArg {
    /// Private network namespace with loopback only.
    None,
    /// Share the host's network namespace.
    Host,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short = 'd', long)]
    pub detach: bool,

    #[command(flatten)]
    pub spec: ContainerSpec,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Only store the container; start it later with `quilt start`.
    #[arg(long)]
    pub no_start: bool,

    #[command(flatten)]
    pub spec: ContainerSpec,
}

#[derive(Debug, Args)]
pub struct IdArg {
    /// Container id, unique id prefix or name.
    #[arg(value_name = "ID")]
    pub id: String,
}

#[derive(Debug, Args)]
pub struct IdsArgs {
    /// Container ids, unique id prefixes or names.
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
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
pub struct CpArgs {
    /// A host path, or ID:PATH in the container.
    #[arg(value_name = "SRC")]
    pub src: String,
    /// ID:DIR in the container, or a host directory.
    #[arg(value_name = "DST")]
    pub dst: String,
}

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

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill the container first if it is running.
    #[arg(short = 'f', long)]
    pub force: bool,

    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep streaming until the container exits.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,

    /// Prefix every line with its RFC 3339 timestamp.
    #[arg(short = 't', long)]
    pub timestamps: bool,

    /// Only lines written since then: a duration before now (10s, 5m,
    /// 1h30m), an RFC 3339 time or unix seconds.
    #[arg(long, value_name = "DURATION|TIME", value_parser = crate::since::parse_since)]
    pub since: Option<prost_types::Timestamp>,

    #[arg(value_name = "ID")]
    pub id: String,
}

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

    /// Extra environment variable KEY=VALUE (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<String>,

    /// Working directory for the command.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

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

    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Filter: state=STATE, name=SUBSTRING, label=KEY or label=KEY=VALUE (repeatable).
    #[arg(long = "filter", value_name = "FILTER", value_parser = parse_filter)]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    State(String),
    Name(String),
    Label(String, Option<String>),
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Output format: one text line or one JSON object per event.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,

    /// Only events of this container.
    #[arg(value_name = "ID")]
    pub id: Option<String>,
}

impl Cli {
    /// Parses `args` (including the program name) and applies the checks
    /// clap cannot express: no flag-like IMAGE or ID in front of a command,
    /// and a non-empty command after an optional `--`.
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
        if command.is_empty() {
            return Err(usage_error(
                sub,
                ErrorKind::MissingRequiredArgument,
                format!(
                    "a command is required after {}",
                    if sub == "exec" { "ID" } else { "IMAGE" }
                ),
            ));
        }
        Ok(cli)
    }
}

/// What to print, where, and the exit code for a clap "error" (which also
/// covers `--help` and `--version`).
#[derive(Debug, PartialEq, Eq)]
pub struct ParseOutcome {
    pub code: u8,
    pub text: String,
    pub to_stdout: bool,
}

/// `--help`/`--version` print to stdout and exit 0; every other parse
/// error is a usage error: `quilt: <message>` (plus usage) on stderr, 125.
pub fn parse_outcome(err: &clap::Error) -> ParseOutcome {
    let rendered = err.render().to_string();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ParseOutcome {
            code: 0,
            text: rendered,
            to_stdout: true,
        },
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ParseOutcome {
            code: crate::error::EXIT_ENGINE,
            text: rendered,
            to_stdout: false,
        },
        _ => ParseOutcome {
            code: crate::error::EXIT_ENGINE,
            text: match rendered.strip_prefix("error: ") {
                Some(rest) => format!("quilt: {rest}"),
                None => rendered,
            },
            to_stdout: false,
        },
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

/// Accepts `KEY=VALUE` with a non-empty key.
pub fn parse_env(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((key, _)) if !key.is_empty() => Ok(s.to_owned()),
        Some(_) => Err("the variable name must not be empty".to_owned()),
        None => Err("expected KEY=VALUE".to_owned()),
    }
}

/// Accepts `KEY=VALUE` or `KEY` (empty value).
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (key, value) = s.split_once('=').unwrap_or((s, ""));
    if key.is_empty() {
        return Err("the label key must not be empty".to_owned());
    }
    Ok((key.to_owned(), value.to_owned()))
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
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::parse_args(std::iter::once("quilt").chain(args.iter().copied()))
    }

    fn run_spec(args: &[&str]) -> (bool, ContainerSpec) {
        match parse(args).expect("parse").command {
            Command::Run(r) => (r.detach, r.spec),
            other => panic!("not run: {other:?}"),
        }
    }

    #[test]
    fn parse_errors_exit_125_but_help_and_version_exit_0() {
        let out = parse_outcome(&parse(&["run", "-e", "FOO", "default", "true"]).unwrap_err());
        assert_eq!(out.code, 125);
        assert!(!out.to_stdout);
        assert!(
            out.text.starts_with("quilt: invalid value 'FOO'"),
            "{}",
            out.text
        );

        let out = parse_outcome(&parse(&["frobnicate"]).unwrap_err());
        assert_eq!(out.code, 125);
        assert!(out.text.starts_with("quilt: "), "{}", out.text);

        let out = parse_outcome(&parse(&["run", "--memory", "lots", "default", "x"]).unwrap_err());
        assert_eq!(out.code, 125);

        let out = parse_outcome(&parse(&[]).unwrap_err());
        assert_eq!(out.code, 125);
        assert!(out.text.contains("Usage:"));

        let out = parse_outcome(&parse(&["--help"]).unwrap_err());
        assert_eq!((out.code, out.to_stdout), (0, true));
        assert!(out.text.contains("Usage:"));
        let out = parse_outcome(&parse(&["run", "--help"]).unwrap_err());
        assert_eq!(out.code, 0);
        let out = parse_outcome(&parse(&["--version"]).unwrap_err());
        assert_eq!((out.code, out.to_stdout), (0, true));
        assert!(out.text.starts_with("quilt "));
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn trailing_argv_is_preserved() {
        let (_, spec) = run_spec(&["run", "default", "sh", "-c", "exit 7"]);
        assert_eq!(spec.image(), "default");
        assert_eq!(spec.command(), ["sh", "-c", "exit 7"]);

        let (_, spec) = run_spec(&["run", "default", "ls", "-la"]);
        assert_eq!(spec.command(), ["ls", "-la"]);
    }

    #[test]
    fn flags_after_image_belong_to_the_command() {
        let (detach, spec) = run_spec(&["run", "default", "echo", "--name", "x", "-d", "--rm"]);
        assert!(!detach);
        assert!(!spec.rm);
        assert_eq!(spec.name, None);
        assert_eq!(spec.command(), ["echo", "--name", "x", "-d", "--rm"]);

        let (_, spec) = run_spec(&["run", "default", "--help"]);
        assert_eq!(spec.command(), ["--help"]);

        let (_, spec) = run_spec(&["run", "default", "-la"]);
        assert_eq!(spec.command(), ["-la"]);
    }

    #[test]
    fn double_dash_is_optional() {
        let (_, spec) = run_spec(&["run", "default", "--", "sh", "-c", "echo hi"]);
        assert_eq!(spec.command(), ["sh", "-c", "echo hi"]);

        // A `--` inside the command is kept.
        let (_, spec) = run_spec(&["run", "default", "sh", "--", "x"]);
        assert_eq!(spec.command(), ["sh", "--", "x"]);

        let (_, spec) = run_spec(&["run", "default", "--", "--", "x"]);
        assert_eq!(spec.command(), ["--", "x"]);
    }

    #[test]
    fn flags_before_image_are_parsed() {
        let (detach, spec) = run_spec(&[
            "run",
            "-d",
            "--name",
            "web",
            "-e",
            "A=1",
            "--env",
            "B=x=y",
            "-w",
            "/tmp",
            "--memory",
            "64",
            "--cpus",
            "0.5",
            "--pids",
            "10",
            "--hostname",
            "h",
            "--network",
            "host",
            "--rm",
            "-l",
            "k=v",
            "--label",
            "solo",
            "./rootfs",
            "true",
        ]);
        assert!(detach);
        assert_eq!(spec.name.as_deref(), Some("web"));
        assert_eq!(spec.env, ["A=1", "B=x=y"]);
        assert_eq!(spec.workdir.as_deref(), Some("/tmp"));
        assert_eq!(spec.memory, Some(64));
        assert_eq!(spec.cpus, Some(0.5));
        assert_eq!(spec.pids, Some(10));
        assert_eq!(spec.hostname.as_deref(), Some("h"));
        assert_eq!(spec.network, Some(NetworkArg::Host));
        assert!(spec.rm);
        assert_eq!(
            spec.labels,
            [
                ("k".to_owned(), "v".to_owned()),
                ("solo".to_owned(), String::new())
            ]
        );
        assert_eq!(spec.image(), "./rootfs");
        assert_eq!(spec.command(), ["true"]);
    }

    #[test]
    fn negative_limits_are_accepted() {
        let (_, spec) = run_spec(&[
            "run", "--memory", "-5", "--cpus", "-0.5", "--pids", "-1", "default", "true",
        ]);
        assert_eq!(spec.memory, Some(-5));
        assert_eq!(spec.cpus, Some(-0.5));
        assert_eq!(spec.pids, Some(-1));

        let (_, spec) = run_spec(&["run", "--memory=-7", "default", "true"]);
        assert_eq!(spec.memory, Some(-7));
    }

    #[test]
    fn env_without_equals_is_a_usage_error() {
        let err = parse(&["run", "-e", "FOO", "default", "true"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let err = parse(&["exec", "-e", "=x", "c1", "true"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        // An empty value is fine.
        let (_, spec) = run_spec(&["run", "-e", "FOO=", "default", "true"]);
        assert_eq!(spec.env, ["FOO="]);
    }

    #[test]
    fn command_is_required() {
        assert!(parse(&["run", "default"]).is_err());
        assert!(parse(&["create", "default"]).is_err());
        let err = parse(&["exec", "c1"]).unwrap_err();
        assert!(
            err.to_string().contains("a command is required after ID"),
            "{err}"
        );
        let err = parse(&["run", "default"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("a command is required after IMAGE"),
            "{err}"
        );
        assert_eq!(
            parse(&["run"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        let err = parse(&["run", "default", "--"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        let err = parse(&["exec", "c1", "--"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn create_and_no_start() {
        let cli = parse(&[
            "create",
            "--no-start",
            "--name",
            "a",
            "default",
            "sleep",
            "1",
        ])
        .unwrap();
        let Command::Create(c) = cli.command else {
            panic!("not create")
        };
        assert!(c.no_start);
        assert_eq!(c.spec.name.as_deref(), Some("a"));
        assert_eq!(c.spec.command(), ["sleep", "1"]);
        // `create` has no -d.
        let err = parse(&["create", "-d", "default", "true"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
        assert!(err.to_string().contains("'-d'"), "{err}");
        let err = parse(&["exec", "-x", "c1", "true"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
    }

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

    #[test]
    fn socket_option_and_default() {
        let cli = parse(&["--socket", "/tmp/q.sock", "ps"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/q.sock"));
        let cli = parse(&["ps", "--socket", "/tmp/q2.sock"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/q2.sock"));
    }

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

        let cli = parse(&["logs", "-f", "--tail", "5", "-t", "a"]).unwrap();
        let Command::Logs(l) = cli.command else {
            panic!()
        };
        assert!(l.follow && l.timestamps);
        assert_eq!(l.tail, Some(5));
        assert_eq!(l.since, None);

        let cli = parse(&["logs", "--since", "2026-11-23T19:00:00Z", "a"]).unwrap();
        let Command::Logs(l) = cli.command else {
            panic!()
        };
        assert_eq!(l.since.map(|t| t.seconds), Some(1_795_460_400));
        let err = parse(&["logs", "--since", "soon", "a"]).unwrap_err();
        assert_eq!(parse_outcome(&err).code, crate::error::EXIT_ENGINE);
    }

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
        assert_eq!(p.format, Format::Json);
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
