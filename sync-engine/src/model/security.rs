//! What a container may do beyond its resources: its user, capabilities,
//! limits, seccomp profile, devices, GPUs and user namespace, as requested
//! (and stored, as JSON, in its row). The runtime's view, with everything
//! resolved and compiled, is built from it at start.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Security {
    /// "UID[:GID]" or "NAME[:GROUP]"; None: root.
    pub user: Option<String>,
    /// A read-only root filesystem.
    pub read_only: bool,
    /// Capability names added to, and dropped from, the default set
    /// (normalised: "NET_ADMIN", or "ALL").
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub ulimits: Vec<Ulimit>,
    pub seccomp: Seccomp,
    pub devices: Vec<DeviceMapping>,
    /// NVIDIA GPUs: "all", a count or "device=0,1"; None: no GPU.
    pub gpus: Option<String>,
    pub userns: UsernsMode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Without the RLIMIT_ prefix, lower-case ("nofile").
    pub name: String,
    /// u64::MAX (RLIM_INFINITY): unlimited (-1 on the wire).
    pub soft: u64,
    pub hard: u64,
}

/// The seccomp filter of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Seccomp {
    /// The built-in default profile (docker's policy).
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile in docker's JSON format (kept as given).
    Custom(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    pub host_path: String,
    pub container_path: String,
    /// Some of "rwm", in that order.
    pub permissions: String,
}

/// Whether the container gets a user namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsernsMode {
    /// The daemon's default (--userns-default).
    #[default]
    Default,
    /// None: container root is host root (with docker's restrictions).
    Host,
    /// Container root is an unprivileged host user of a range of its own.
    Private,
}

impl UsernsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UsernsMode::Default => "",
            UsernsMode::Host => "host",
            UsernsMode::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<UsernsMode> {
        Some(match s {
            "" => UsernsMode::Default,
            "host" => UsernsMode::Host,
            "private" | "auto" => UsernsMode::Private,
            _ => return None,
        })
    }
}

/// The host ids a container with a private user namespace is given: its ids
/// 0..size are host ids host_id..host_id+size (uids and gids alike). One
/// per container, never shared, released when it is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub host_id: u32,
    pub size: u32,
}

impl IdRange {
    /// The ids of a container: 65536, as a full range of 16-bit ids.
    pub const SIZE: u32 = 65536;
}
