//! JSON views of containers and events (`status`, `inspect`, `ps --format json`,
//! `events --format json`).

use std::collections::BTreeMap;

use quilt_proto::v1::{Container, ContainerState, Event, ExitStatus, NetworkMode};
use serde::Serialize;

use super::timefmt::{Fraction, rfc3339};

#[derive(Debug, Serialize)]
pub struct ContainerView {
    pub id: String,
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub hostname: String,
    pub resources: ResourcesView,
    pub network: &'static str,
    pub auto_remove: bool,
    pub init: bool,
    pub labels: BTreeMap<String, String>,
    pub state: &'static str,
    pub pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitView>,
    pub failure_reason: String,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<super::mounts::MountView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_settings: Option<NetworkSettingsView>,
    /// `no`, `on-failure`, `on-failure:N`, `always` or `unless-stopped`.
    pub restart_policy: String,
    pub restart_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<LifetimeView>,
    /// The egress policy (`default_action`, `allow`, `deny`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress: Option<serde_json::Value>,
    /// The node that runs it (a cluster).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
}

/// Where a container is on its network (`inspect`).
#[derive(Debug, Serialize)]
pub struct NetworkSettingsView {
    /// The network's name, or the container whose namespace it shares.
    pub network: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ip_address: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub prefix_length: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
    /// `HOST_IP:HOST_PORT->CTR_PORT/PROTO`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    /// `NAME:IP`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A published port as `ps` and `port` show it.
pub fn port_text(p: &quilt_proto::v1::PortMapping) -> String {
    format!(
        "{}:{}->{}/{}",
        p.host_ip, p.host_port, p.container_port, p.protocol
    )
}

impl From<&quilt_proto::v1::NetworkSettings> for NetworkSettingsView {
    fn from(n: &quilt_proto::v1::NetworkSettings) -> Self {
        NetworkSettingsView {
            network: n.network.clone(),
            ip_address: n.ip_address.clone(),
            prefix_length: n.prefix_length,
            gateway: n.gateway.clone(),
            mac_address: n.mac_address.clone(),
            ports: n.ports.iter().map(port_text).collect(),
            dns: n.dns.clone(),
            extra_hosts: n
                .extra_hosts
                .iter()
                .map(|h| format!("{}:{}", h.name, h.ip))
                .collect(),
            aliases: n.aliases.clone(),
        }
    }
}

/// The TTL and idle timeout, when the container has either.
#[derive(Debug, Serialize)]
pub struct LifetimeView {
    pub ttl_ms: u64,
    pub expires_at: Option<String>,
    pub idle_timeout_ms: u64,
    pub idle_action: String,
    pub last_activity: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ResourcesView {
    pub memory_mb: i64,
    pub cpus: f64,
    pub pids_limit: i64,
}

#[derive(Debug, Serialize)]
pub struct ExitView {
    pub exit_code: i32,
    pub signal: i32,
    pub oom_killed: bool,
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub time: Option<String>,
    pub action: String,
    pub id: String,
    pub name: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitView>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub failure_reason: String,
}

/// Lowercase name of a state on the wire, e.g. "running"; "unknown" when
/// unset or not a state this CLI knows.
pub fn state_name(state: i32) -> &'static str {
    match ContainerState::try_from(state) {
        Ok(ContainerState::Unspecified) | Err(_) => "unknown",
        Ok(s) => s.name(),
    }
}

/// Parses a state a user typed: its lowercase or proto name, in any case
/// (never "unspecified").
pub fn parse_state(name: &str) -> Option<ContainerState> {
    ContainerState::from_name(name).filter(|s| *s != ContainerState::Unspecified)
}

/// The states a user can type, for messages: "created, starting, ... or
/// removing".
pub fn state_names() -> String {
    let names: Vec<&str> = ContainerState::values()
        .filter(|s| *s != ContainerState::Unspecified)
        .map(ContainerState::name)
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// "none", "host", "bridge" or "container" (unset means none).
pub fn network_name(mode: i32) -> &'static str {
    match NetworkMode::try_from(mode) {
        Ok(m @ (NetworkMode::Host | NetworkMode::Bridge | NetworkMode::Container)) => m.name(),
        _ => NetworkMode::None.name(),
    }
}

fn time(ts: Option<&prost_types::Timestamp>) -> Option<String> {
    ts.map(|t| rfc3339(t, Fraction::Trimmed))
}

impl From<&ExitStatus> for ExitView {
    fn from(exit: &ExitStatus) -> Self {
        ExitView {
            exit_code: exit.exit_code,
            signal: exit.signal,
            oom_killed: exit.oom_killed,
        }
    }
}

impl From<&Container> for ContainerView {
    fn from(c: &Container) -> Self {
        let r = c.resources.unwrap_or_default();
        // A FAILED container's reason may only be in its exit status.
        let failure_reason = if c.failure_reason.is_empty() {
            c.exit
                .as_ref()
                .map(|e| e.failure_reason.clone())
                .unwrap_or_default()
        } else {
            c.failure_reason.clone()
        };
        ContainerView {
            id: c.id.clone(),
            name: c.name.clone(),
            image: c.image.clone(),
            command: c.command.clone(),
            env: c.env.clone(),
            working_dir: c.working_dir.clone(),
            hostname: c.hostname.clone(),
            resources: ResourcesView {
                memory_mb: r.memory_mb,
                cpus: r.cpus,
                pids_limit: r.pids_limit,
            },
            network: network_name(c.network),
            auto_remove: c.auto_remove,
            init: c.init,
            labels: c
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            state: state_name(c.state),
            pid: c.pid,
            exit: c.exit.as_deref().map(ExitView::from),
            failure_reason,
            created_at: time(c.created_at.as_ref()),
            started_at: time(c.started_at.as_ref()),
            finished_at: time(
                c.finished_at
                    .as_ref()
                    .or(c.exit.as_ref().and_then(|e| e.finished_at.as_ref())),
            ),
            mounts: c
                .mounts
                .iter()
                .map(super::mounts::MountView::from)
                .collect(),
            network_settings: c.network_settings.as_deref().map(NetworkSettingsView::from),
            egress: c
                .egress
                .as_deref()
                .map(crate::commands::network::policy_view),
            node: c.node.clone(),
            restart_policy: match &c.restart {
                Some(r) if r.name == "on-failure" && r.max_retries > 0 => {
                    format!("on-failure:{}", r.max_retries)
                }
                Some(r) if !r.name.is_empty() => r.name.clone(),
                _ => "no".to_owned(),
            },
            restart_count: c.restart_count,
            lifetime: c
                .lifetime
                .as_ref()
                .filter(|l| l.ttl_ms > 0 || l.idle_timeout_ms > 0 || l.expires_at.is_some())
                .map(|l| LifetimeView {
                    ttl_ms: l.ttl_ms,
                    expires_at: time(l.expires_at.as_ref()),
                    idle_timeout_ms: l.idle_timeout_ms,
                    idle_action: l.idle_action.clone(),
                    last_activity: time(l.last_activity.as_ref()),
                }),
        }
    }
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        EventView {
            time: time(e.time.as_ref()),
            action: e.action.clone(),
            id: e.container_id.clone(),
            name: e.name.clone(),
            state: state_name(e.state),
            exit: e.exit.as_ref().map(ExitView::from),
            failure_reason: e
                .exit
                .as_ref()
                .map(|x| x.failure_reason.clone())
                .unwrap_or_default(),
        }
    }
}

/// One line of JSON.
pub fn compact<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(value)
}

/// Indented JSON.
pub fn pretty<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;
    use quilt_proto::v1::Resources;
    use serde_json::Value;

    fn sample() -> Container {
        Container {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            image: "default".into(),
            command: vec!["sh".into(), "-c".into(), "exit 7".into()],
            env: vec!["A=1".into()],
            working_dir: "/".into(),
            hostname: "web".into(),
            resources: Some(Resources {
                memory_mb: 64,
                cpus: 0.5,
                pids_limit: 10,
                disk_bytes: 0,
            }),
            network: NetworkMode::Host as i32,
            network_settings: None,
            auto_remove: true,
            init: false,
            mounts: Vec::new(),
            security: None,
            restart: None,
            restart_count: 0,
            lifetime: None,
            egress: None,
            stdio: None,
            node: String::new(),
            labels: [
                ("b".to_owned(), "2".to_owned()),
                ("a".to_owned(), "1".to_owned()),
            ]
            .into_iter()
            .collect(),
            state: ContainerState::Exited as i32,
            pid: 0,
            exit: Some(Box::new(ExitStatus {
                exit_code: 7,
                signal: 0,
                oom_killed: false,
                state: ContainerState::Exited as i32,
                failure_reason: String::new(),
                finished_at: None,
            })),
            created_at: Some(Timestamp {
                seconds: 1_714_564_800,
                nanos: 0,
            }),
            started_at: Some(Timestamp {
                seconds: 1_714_564_801,
                nanos: 250_000_000,
            }),
            finished_at: None,
            failure_reason: String::new(),
        }
    }

    #[test]
    fn container_json_shape() {
        let v: Value = serde_json::to_value(ContainerView::from(&sample())).unwrap();
        assert_eq!(v["id"], "0123456789abcdef");
        assert_eq!(v["command"], serde_json::json!(["sh", "-c", "exit 7"]));
        assert_eq!(v["resources"]["memory_mb"], 64);
        assert_eq!(v["resources"]["cpus"], 0.5);
        assert_eq!(v["resources"]["pids_limit"], 10);
        assert_eq!(v["network"], "host");
        assert_eq!(v["auto_remove"], true);
        assert_eq!(v["labels"]["a"], "1");
        assert_eq!(v["state"], "exited");
        assert_eq!(v["exit"]["exit_code"], 7);
        assert_eq!(v["exit"]["signal"], 0);
        assert_eq!(v["exit"]["oom_killed"], false);
        assert_eq!(v["created_at"], "2024-05-01T12:00:00Z");
        assert_eq!(v["started_at"], "2024-05-01T12:00:01.25Z");
        assert_eq!(v["finished_at"], Value::Null);
        assert_eq!(v["failure_reason"], "");
    }

    #[test]
    fn exit_is_omitted_when_absent() {
        let mut c = sample();
        c.exit = None;
        c.state = ContainerState::Running as i32;
        c.network = NetworkMode::Unspecified as i32;
        let text = compact(&ContainerView::from(&c)).unwrap();
        assert!(!text.contains("\"exit\""), "{text}");
        assert!(!text.contains('\n'));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["state"], "running");
        assert_eq!(v["network"], "none");
        // Keys keep the documented order.
        assert!(text.starts_with("{\"id\":"), "{text}");
    }

    #[test]
    fn failure_reason_falls_back_to_exit_status() {
        let mut c = sample();
        c.state = ContainerState::Failed as i32;
        if let Some(e) = c.exit.as_mut() {
            e.exit_code = 127;
            e.failure_reason = "executable not found".into();
        }
        let v: Value = serde_json::to_value(ContainerView::from(&c)).unwrap();
        assert_eq!(v["state"], "failed");
        assert_eq!(v["failure_reason"], "executable not found");
    }

    #[test]
    fn state_names_round_trip() {
        for s in [
            ContainerState::Created,
            ContainerState::Starting,
            ContainerState::Running,
            ContainerState::Exited,
            ContainerState::Failed,
            ContainerState::Removing,
            ContainerState::Paused,
            ContainerState::Lost,
        ] {
            assert_eq!(parse_state(state_name(s as i32)), Some(s));
        }
        assert_eq!(
            parse_state("CONTAINER_STATE_RUNNING"),
            Some(ContainerState::Running)
        );
        assert_eq!(parse_state("Up"), None);
        assert_eq!(parse_state("unspecified"), None);
        assert_eq!(state_name(99), "unknown");
        assert_eq!(state_name(ContainerState::Unspecified as i32), "unknown");
        assert_eq!(
            state_names(),
            "created, starting, running, exited, failed, removing, paused or lost"
        );
    }
}
