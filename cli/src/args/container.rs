//! `quilt run` and `quilt create`: the container options they share.

use clap::Args;

use super::{strip_separator, values};

/// Options shared by `run` and `create`.
#[derive(Debug, Clone, Args)]
pub struct ContainerSpec {
    /// Name of the container (generated when omitted).
    #[arg(long)]
    pub name: Option<String>,

    /// Environment variable KEY=VALUE, or KEY alone to pass the caller's
    /// value of KEY (left out when unset) (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]", value_parser = values::parse_env)]
    pub env: Vec<String>,

    /// Read environment variables from a file: one KEY=VALUE or KEY per
    /// line, `#` comments and blank lines ignored (repeatable; -e wins).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<std::path::PathBuf>,

    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,

    /// Memory limit: a size such as 512m or 1g (k, m, g are powers of
    /// 1024; a plain number is MiB); 0: no limit.
    #[arg(short = 'm', long, value_name = "SIZE", allow_negative_numbers = true, value_parser = values::parse_memory_mib)]
    pub memory: Option<i64>,

    /// CPU limit in cores, e.g. 0.5 (0: no limit).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub cpus: Option<f64>,

    /// Maximum number of processes (0: no limit).
    #[arg(
        long,
        visible_alias = "pids-limit",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub pids: Option<i64>,

    /// Hostname of the container (defaults to its name).
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,

    /// Keep STDIN open; `run` without -d attaches it (its end closes it).
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Allocate a terminal for the main process (with -i: an interactive
    /// shell; detach with ctrl-p ctrl-q).
    #[arg(short = 't', long)]
    pub tty: bool,

    /// The keys that detach from an attached terminal, as docker's
    /// (`ctrl-p,ctrl-q`; letters, `ctrl-@` .. `ctrl-_`, comma separated).
    #[arg(long, value_name = "KEYS", value_parser = quilt_proto::detach_keys::parse)]
    pub detach_keys: Option<quilt_proto::detach_keys::DetachKeys>,

    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// Network: none (loopback only, the default), bridge (the default
    /// network), NAME (a network of `quilt network create`),
    /// container:ID (share a running container's), or host.
    #[arg(long, value_name = "MODE", value_parser = values::parse_network)]
    pub network: Option<NetworkArg>,

    /// Publish a port: [IP:]HOSTPORT:CTRPORT[/tcp|udp], or CTRPORT[/proto]
    /// for a free host port (repeatable). The host address defaults to
    /// 127.0.0.1 (loopback only); 0.0.0.0 publishes on every address.
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:CTR[/PROTO]", value_parser = values::parse_port)]
    pub publish: Vec<values::PortSpec>,

    /// A name server for /etc/resolv.conf (repeatable). Default: on a
    /// bridge network, the network's own resolver (it answers the
    /// network's container names and aliases and forwards the rest);
    /// otherwise the host's.
    #[arg(long = "dns", value_name = "IP")]
    pub dns: Vec<String>,

    /// Another name for the container on its bridge network, answered by
    /// the network's resolver (repeatable, at most 32; DNS labels).
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_alias: Vec<String>,

    /// An /etc/hosts entry NAME:IP (repeatable).
    #[arg(long = "add-host", value_name = "NAME:IP", value_parser = values::parse_add_host)]
    pub add_host: Vec<(String, String)>,

    /// Egress policy (bridge networks): what no entry allows is allowed
    /// (allow, the default) or refused (deny).
    #[arg(long = "egress-default", value_name = "allow|deny", value_parser = ["allow", "deny"])]
    pub egress_default: Option<String>,

    /// Egress allowed to a CIDR, an address, a domain (example.com) or
    /// *.domain, optionally :PORT (repeatable); wins over the always-on
    /// deny set (private, link-local, metadata addresses).
    #[arg(long = "egress-allow", value_name = "ENTRY")]
    pub egress_allow: Vec<String>,

    /// Egress refused to a CIDR, an address or a domain, optionally :PORT
    /// (repeatable); wins over --egress-allow.
    #[arg(long = "egress-deny", value_name = "ENTRY")]
    pub egress_deny: Vec<String>,

    /// Remove the container once it has exited.
    #[arg(long)]
    pub rm: bool,

    /// Stop the container this long after it starts (and remove it with
    /// --rm): 30s, 10m, 2h.
    #[arg(long, value_name = "DURATION", value_parser = crate::since::parse_duration_ms)]
    pub ttl: Option<u64>,

    /// Stop (or pause, --idle-action) the container after this long without
    /// an exec, attach, logs follow or copy.
    #[arg(long, value_name = "DURATION", value_parser = crate::since::parse_duration_ms)]
    pub idle_timeout: Option<u64>,

    /// What the idle timeout does.
    #[arg(long, value_name = "ACTION", value_parser = ["stop", "pause"], requires = "idle_timeout")]
    pub idle_action: Option<String>,

    /// Restart policy: no, on-failure[:N], always or unless-stopped.
    #[arg(long, value_name = "POLICY", value_parser = values::parse_restart)]
    pub restart: Option<(String, u32)>,

    /// Run an init as PID 1 that reaps zombies and forwards signals (the
    /// command then runs as PID 2).
    #[arg(long)]
    pub init: bool,

    /// Label KEY=VALUE (repeatable; KEY alone means an empty value).
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = values::parse_label)]
    pub labels: Vec<(String, String)>,

    /// Mount a named volume or a host path: NAME:/PATH[:ro] or
    /// /HOST/PATH:/PATH[:ro] (repeatable).
    #[arg(short = 'v', long = "volume", value_name = "SRC:DST[:ro]")]
    pub volumes: Vec<String>,

    /// Mount a tmpfs: /PATH[:size=64m][,ro] (repeatable).
    #[arg(long = "tmpfs", value_name = "PATH[:OPTS]")]
    pub tmpfs: Vec<String>,

    /// Replace the image's entrypoint ("" clears it; the image's Cmd is then
    /// not used).
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,

    /// Run as this user: UID[:GID] or NAME[:GROUP] of the image (the
    /// image's User when omitted).
    #[arg(short = 'u', long = "user", value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Mount the root filesystem read-only (/tmp, /var/tmp and /run get a
    /// tmpfs unless mounted otherwise).
    #[arg(long)]
    pub read_only: bool,

    /// Add a capability to the default set, e.g. NET_ADMIN, or ALL (repeatable).
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a capability from the default set, or ALL (repeatable).
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// A resource limit: NAME=SOFT[:HARD], e.g. nofile=1024:2048 (repeatable).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]", value_parser = values::parse_ulimit)]
    pub ulimits: Vec<(String, i64, i64)>,

    /// Security options: seccomp=unconfined, seccomp=PROFILE.json,
    /// no-new-privileges (always on) (repeatable).
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,

    /// Give the container a host device: HOST[:CONTAINER][:rwm] (repeatable).
    #[arg(long = "device", value_name = "HOST[:CTR][:PERMS]")]
    pub devices: Vec<String>,

    /// NVIDIA GPUs: all, a count, or device=0,1.
    #[arg(long, value_name = "GPUS")]
    pub gpus: Option<String>,

    /// User namespace: host, or private (container root is an unprivileged
    /// host user); the daemon's default when omitted.
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,

    /// The start's class in the daemon's queue: interactive (default) or
    /// batch (bulk work: a fair share, after interactive starts).
    #[arg(long, value_name = "CLASS", value_parser = ["interactive", "batch"])]
    pub priority: Option<String>,

    /// In a cluster (nodes sharing PostgreSQL): run it on this node
    /// (`quilt node ls`); default: the least loaded live node.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,

    /// In a cluster: run it on a node with this label (KEY=VALUE, as
    /// `quilt node ls` shows; repeatable: all of them).
    #[arg(long = "node-label", value_name = "KEY=VALUE", value_parser = values::parse_label)]
    pub node_labels: Vec<(String, String)>,

    /// Storage options: size=SIZE caps what the container may write (its
    /// layer and logs), e.g. size=1g (repeatable).
    #[arg(long = "storage-opt", value_name = "OPT")]
    pub storage_opt: Vec<String>,

    /// IMAGE ("default", a rootfs tarball or directory, a stored image)
    /// followed by the command and its arguments, passed exactly (the
    /// image's Cmd when omitted).
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

pub use values::NetworkArg;

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

/// `run ARGS...` parsed: (--detach, the spec).
#[cfg(test)]
pub(crate) fn run_spec(args: &[&str]) -> (bool, ContainerSpec) {
    match super::parse(args).expect("parse").command {
        super::Command::Run(r) => (r.detach, r.spec),
        other => panic!("not run: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::super::{Command, parse};
    use super::*;

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
    fn docker_short_flags() {
        let (_, spec) = run_spec(&[
            "run",
            "-h",
            "myhost",
            "-m",
            "64m",
            "--pids-limit",
            "5",
            "default",
            "true",
        ]);
        assert_eq!(spec.hostname.as_deref(), Some("myhost"));
        assert_eq!(spec.memory, Some(64));
        assert_eq!(spec.pids, Some(5));
        let cli = parse(&["create", "-h", "h2", "-m", "1g", "default", "true"]).unwrap();
        let Command::Create(c) = cli.command else {
            panic!("not create")
        };
        assert_eq!(c.spec.hostname.as_deref(), Some("h2"));
        assert_eq!(c.spec.memory, Some(1024));
        // Help only with --help.
        let err = parse(&["run", "--help"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DisplayHelp);
        let err = parse(&["run", "-h"]).unwrap_err();
        assert_ne!(err.kind(), ErrorKind::DisplayHelp);
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
}
