//! The contract between the daemon and `quilt-shim`: what to run and where.
//! The daemon serialises these as JSON on the shim's standard input.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Exit codes in the docker tradition: setup failed, cannot execute, not found.
pub const EXIT_SETUP: i32 = 125;
pub const EXIT_CANNOT_EXEC: i32 = 126;
pub const EXIT_NOT_FOUND: i32 = 127;
/// A gated start's workload that was never let go (see
/// [`ContainerConfig::gated`]): its daemon closed the gate, or died,
/// before recording the container. Never recorded as an exit.
pub const EXIT_ABANDONED: i32 = 124;

/// The PATH a container gets unless it sets its own.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which cgroup hierarchy the host uses and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupLayout {
    /// Unified hierarchy (cgroup2) mounted at `root` (usually /sys/fs/cgroup).
    V2 { root: PathBuf },
    /// Legacy hierarchies: one directory per controller under `root`
    /// (`root/memory`, `root/cpu`, `root/pids`).
    V1 { root: PathBuf },
}

/// Limits applied to a container's cgroup. `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// CPU limit as a fraction of cores (0.5 = half a core).
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
}

/// The cgroup a container (and everything exec'd into it) lives in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CgroupSpec {
    pub layout: CgroupLayout,
    /// Relative path below the hierarchy root, e.g. `quilt/<container id>`.
    pub path: String,
    pub limits: Limits,
    /// A memory cgroup of its own even without a memory limit. On v1 a
    /// container that may mount the memory hierarchy itself (in a user
    /// namespace, or with CAP_SYS_ADMIN) would otherwise find there, at its
    /// cgroup namespace's root, the group it shares with the others and
    /// their processes; on v2 a warm pool's container needs one for the
    /// limit its adopter may set.
    #[serde(default)]
    pub own_memory: bool,
}

/// Everything `quilt-shim run` needs to start one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    /// The container's own directory (DATA_DIR/containers/<id>). The shim
    /// creates `upper/`, `work/`, `rootfs/` (overlay mount point),
    /// `container.log` and, when the workload has exited, `exit.json` there.
    pub dir: PathBuf,
    /// Read-only lower layer: the prepared image rootfs.
    pub image_rootfs: PathBuf,
    /// The root's overlay is mounted `volatile`: nothing written to its
    /// upper layer is ever synced (fsync in the container returns at once,
    /// and unmounting it does not sync the whole file system under it).
    /// For a container removed when it exits, whose writable layer goes
    /// with it. The kernel refuses a second mount of that layer until the
    /// mark it leaves is removed (`shim::common::clear_volatile_mark`,
    /// done before each mount of it).
    #[serde(default)]
    pub volatile_rootfs: bool,
    /// argv of the workload; argv[0] is looked up in the container's PATH
    /// when it has no slash.
    pub argv: Vec<String>,
    /// Complete environment ("K=V"), already built by the daemon.
    pub env: Vec<String>,
    /// Working directory inside the container (created if missing).
    pub workdir: String,
    pub hostname: String,
    /// false = private network namespace with loopback up; true = host network.
    pub host_network: bool,
    /// A network namespace made ready by the daemon (its bind-mounted nsfs
    /// file): the shim joins it (setns) instead of making one. Loopback is
    /// up there already; with a bridge network `eth0` is configured too.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// Run a minimal init as PID 1 (the workload becomes PID 2): it reaps
    /// orphaned zombies and forwards signals to the workload.
    #[serde(default)]
    pub init: bool,
    pub cgroup: CgroupSpec,
    /// Rotate `container.log` once it would grow past this many bytes.
    /// `None` or 0: no cap (the file grows without bound).
    #[serde(default)]
    pub log_max_bytes: Option<u64>,
    /// How many log files to keep, `container.log` included: rotation
    /// keeps `container.log.1` .. `container.log.<N-1>`. `None`, 0 or 1:
    /// no rotated file is kept (the full file is dropped and started anew).
    #[serde(default)]
    pub log_max_files: Option<u32>,
    /// Volumes, bind mounts and tmpfs mounts, made before the rootfs becomes the root.
    #[serde(default)]
    pub mounts: Vec<crate::mounts::MountConfig>,
    /// What the workload may do: user, capabilities, limits, seccomp,
    /// devices, user namespace.
    #[serde(default)]
    pub security: SecurityConfig,
    /// The workload's standard streams (docker's `-t` and `-i`).
    #[serde(default)]
    pub stdio: StdioConfig,
    /// The mount namespace to start from (see [`crate::mntns`]): the
    /// daemon's template, as `/proc/PID/fd/N`, entered once the network
    /// namespace is joined. None: the shim's own.
    #[serde(default)]
    pub mount_ns: Option<PathBuf>,
    /// A read-only sysfs in that namespace (see
    /// [`crate::mntns::Template::sysfs`]) that a container whose network
    /// namespace has only loopback binds as its /sys instead of mounting one
    /// of its own (never with the host's network or a user namespace). Used
    /// only when it is a sysfs mount.
    #[serde(default)]
    pub shared_sysfs: Option<PathBuf>,
    /// A warm pool's container (see [`crate::launch::Prepared`]): the shim
    /// prepares everything up to the workload's own settings, reports
    /// [`StartReport::Prepared`] and waits for the config of the container
    /// that adopts it on its stdin.
    #[serde(default)]
    pub pooled: bool,
    /// A start made while the daemon still records the container (see
    /// [`crate::launch::start_gated`], and for a pooled container's
    /// adopter [`crate::launch::Prepared::send_gated`]): PID 1 sets up,
    /// then waits for one byte on the shim's stdin before its execve. The
    /// end of stdin instead abandons the start: PID 1 exits, and the shim
    /// reports [`EXIT_ABANDONED`] and leaves the container's cgroup and
    /// directory to the daemon (see [`crate::launch::Gated::abandon`]).
    #[serde(default)]
    pub gated: bool,
}

impl ContainerConfig {
    /// What a pooled container has fixed before it is adopted: everything
    /// but the workload's command, environment, working directory, hostname
    /// and user, and the cgroup's limits (a pooled container is prepared
    /// with the default pids limit at most; the adopter's are applied on
    /// adoption, and one it goes without is lifted). Two configs of the same shape
    /// differ in nothing else.
    pub fn pool_shape(&self) -> ContainerConfig {
        let mut s = self.clone();
        s.argv.clear();
        s.env.clear();
        s.workdir.clear();
        s.hostname.clear();
        s.security.user = None;
        s.cgroup.limits = Limits::default();
        // A pooled container has a memory cgroup of its own whatever its
        // adopter asks (see `CgroupSpec::own_memory`).
        s.cgroup.own_memory = false;
        s.pooled = false;
        // An adopter handed over while its row is inserted waits at a gate
        // (see `launch::Prepared::send_gated`).
        s.gated = false;
        // A pooled root is never volatile: its adopter may keep its layer.
        s.volatile_rootfs = false;
        s
    }

    /// Whether `other` may adopt a container prepared from `self`.
    pub fn adoptable_by(&self, other: &ContainerConfig) -> bool {
        self.pool_shape() == other.pool_shape()
    }
}

/// How the workload's standard streams are wired. By default stdin is
/// /dev/null and stdout and stderr are pipes into the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StdioConfig {
    /// A pseudo-terminal of the container's own devpts on stdin, stdout and
    /// stderr (its controlling terminal); its output is logged as stdout.
    pub tty: bool,
    /// Keep stdin open: a pipe (or, with `tty`, the terminal) that clients
    /// feed through the attach socket (see [`crate::attach`]).
    pub open_stdin: bool,
}

impl StdioConfig {
    /// Whether the shim serves an attach socket for this container.
    pub fn attachable(&self) -> bool {
        self.tty || self.open_stdin
    }
}

/// The containment of a workload, resolved by the daemon for the shim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecurityConfig {
    /// "UID[:GID]" or "NAME[:GROUP]", names looked up by the shim in the
    /// container's own /etc/passwd and /etc/group. None: root.
    pub user: Option<String>,
    /// Mount the root filesystem read-only.
    pub read_only_rootfs: bool,
    /// The workload's capabilities, by number: its bounding set and, for
    /// root, its effective and permitted sets (another user gets none, as
    /// with docker). None: docker's default set.
    pub capabilities: Option<Vec<u8>>,
    /// setrlimit right before execve, exactly (checked by the daemon; the
    /// shim raises its own hard limits first so that a child in a user
    /// namespace can set them).
    pub rlimits: Vec<Rlimit>,
    /// The compiled seccomp filter, installed right before execve (in the
    /// workload, under `--init` in PID 1 too, and in every exec'd command).
    /// None: no filter.
    pub seccomp: Option<SeccompFilter>,
    /// Host device nodes given to the container, beyond the default ones
    /// (null, zero, full, random, urandom, tty, console, ptmx, pts).
    pub devices: Vec<DeviceNode>,
    /// NVIDIA driver files (`--gpus`); None: no GPU.
    pub gpu: Option<GpuConfig>,
    /// User namespace: container ids 0..size map to host ids from
    /// host_uid/host_gid; the image, volumes and binds are idmapped mounts
    /// of that mapping. None: no user namespace.
    pub idmap: Option<IdMap>,
    /// Bytes the container may write to its layer; None: no limit.
    pub disk_limit_bytes: Option<u64>,
}

/// A seccomp filter compiled by the daemon for the native architecture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompFilter {
    /// The kernel's `struct sock_filter` array as hex: 8 bytes an
    /// instruction, code (u16) and k (u32) little-endian.
    pub bpf: String,
    /// The filter refuses every keyring call (`keyctl`, `add_key`,
    /// `request_key`) whatever its arguments: the workload needs no session
    /// keyring of its own (see `shim::common::session_keyring`).
    #[serde(default)]
    pub keyring_refused: bool,
}

/// One resource limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// "nofile", "nproc", ... (RLIMIT_ without prefix, lower-case).
    pub resource: String,
    /// u64::MAX: unlimited (RLIM_INFINITY).
    pub soft: u64,
    pub hard: u64,
}

/// Character or block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceKind {
    #[serde(rename = "c")]
    Char,
    #[serde(rename = "b")]
    Block,
}

impl DeviceKind {
    /// 'c' or 'b', as the device cgroup and `ls -l` write it.
    pub fn letter(self) -> char {
        match self {
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        }
    }
}

/// A host device node given to the container: the host's node is bind
/// mounted at `path` (never mknod'ed, so it also works in a user namespace)
/// and the device cgroup allows `access` on `kind major:minor`. The shim
/// refuses the node if what it finds at `host_path` is not that device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    /// Absolute, normalised path inside the container.
    pub path: String,
    /// The host's node (canonical path, no symlink in it).
    pub host_path: String,
    pub kind: DeviceKind,
    pub major: u32,
    pub minor: u32,
    /// Some of "rwm", in that order.
    pub access: String,
}

/// The NVIDIA driver's user-space files a GPU container gets, all mounted
/// read-only at their host paths, and what the dynamic loader needs to
/// find the libraries. The GPUs' device nodes are in
/// `SecurityConfig::devices`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuConfig {
    /// NVIDIA_VISIBLE_DEVICES of the workload: the GPUs' indices, comma
    /// separated.
    pub visible_devices: String,
    /// Libraries, tools and the firmware directory (canonical host paths).
    pub files: Vec<String>,
    /// Symbolic links made in the container (a library's soname pointing
    /// at its file, /usr/bin/<tool> at a tool kept elsewhere).
    pub links: Vec<Symlink>,
    /// The libraries' directories: written to /etc/ld.so.conf.d and
    /// appended to LD_LIBRARY_PATH.
    pub library_dirs: Vec<String>,
}

/// A symbolic link `path` -> `target` (relative to `path`'s directory, or
/// an absolute path inside the container).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Symlink {
    pub path: String,
    pub target: String,
}

/// A user namespace mapping of one contiguous range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub host_uid: u32,
    pub host_gid: u32,
    pub size: u32,
}

/// Everything `quilt-shim exec` needs to run a command in a running container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecConfig {
    /// Host PID of the container's PID 1.
    pub pid: i32,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub cgroup: CgroupSpec,
    /// Run the command on a new pseudo-terminal of the container's devpts.
    #[serde(default)]
    pub tty: bool,
    /// Initial terminal size (rows, cols) when `tty`; 0 = leave the default.
    #[serde(default)]
    pub rows: u16,
    #[serde(default)]
    pub cols: u16,
    /// Connect the STDIN frames to the command; otherwise its stdin is
    /// /dev/null (or, with a tty, the terminal with nothing typed).
    #[serde(default)]
    pub attach_stdin: bool,
    /// The container's supervisor: `pid` must still be its child once the
    /// namespaces are open (guards against pid reuse: the command must never
    /// run in the namespaces of an unrelated process). Required: the helper
    /// refuses a config without it.
    #[serde(default)]
    pub shim_pid: Option<i32>,
    /// The command's user, capabilities, limits and seccomp filter: the
    /// container's (with `user` replaced when the exec names one).
    #[serde(default)]
    pub security: SecurityConfig,
    /// A detached exec: the helper writes its frames (PID, output, EXIT) to
    /// this file itself instead of the daemon's pipe, reads nothing after
    /// the config, and does not depend on the daemon (it outlives it).
    #[serde(default)]
    pub detached_log: Option<PathBuf>,
}

/// Output bytes an exec's frame file keeps; PID and EXIT frames always fit.
pub const EXEC_LOG_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// What the shim leaves in `exit.json` when the workload has exited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit code; 128 + signal when killed by a signal.
    pub exit_code: i32,
    /// Signal that killed the workload, 0 if it exited.
    pub signal: i32,
    pub oom_killed: bool,
    /// Unix time in nanoseconds when the exit was observed.
    pub finished_at_ns: i64,
    /// Set when the supervisor ended the workload itself (its disk budget
    /// was exceeded): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed_because: Option<String>,
}

/// The line `quilt-shim run` prints on its stdout, as JSON, then closes
/// stdout (a pooled container prints `Prepared` first, then the line of
/// its adoption).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StartReport {
    /// The workload has been exec'd inside its namespaces.
    Started {
        /// PID of the shim (the supervisor), for pidfd monitoring.
        shim_pid: i32,
        /// Host PID of the container's PID 1.
        pid: i32,
        /// Start time of the shim (field 22 of /proc/PID/stat), to guard
        /// against PID reuse when a restarted daemon adopts it.
        shim_start_time: u64,
    },
    /// A pooled container is ready for adoption (see
    /// [`ContainerConfig::pooled`]); its PID 1 waits before its hostname.
    Prepared {
        shim_pid: i32,
        pid: i32,
        shim_start_time: u64,
    },
    /// The container could not start; nothing is left running.
    Failed {
        /// 126 = cannot execute, 127 = not found, 125 = any other setup error.
        exit_code: i32,
        message: String,
    },
}
