//! Containers in the shape docker's CLI shows them (`docker inspect` keys,
//! `docker ps --format` fields), so that templates written for docker
//! (`{{.State.Status}}`, `{{json .Config}}`, `{{.Names}}`) work with
//! `quilt inspect --format` and `quilt ps --format`. Quilt's own field
//! names stay available next to them (`{{.state}}`, `{{.resources}}`).

use quilt_proto::v1::{Container, ContainerState};
use serde_json::{Value, json};

use super::json::{ContainerView, network_name};
use super::table::{command_text, created_text, short_id, status_text};
use super::timefmt::{Fraction, rfc3339};

/// Docker's name for a state (`docker inspect`'s State.Status).
pub fn docker_state(state: i32) -> &'static str {
    match ContainerState::try_from(state) {
        Ok(ContainerState::Created | ContainerState::Starting) => "created",
        Ok(ContainerState::Running) => "running",
        Ok(ContainerState::Removing) => "removing",
        Ok(ContainerState::Exited | ContainerState::Failed) => "exited",
        _ => "dead",
    }
}

/// Docker's zero time for a time not reached yet.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.map_or_else(|| ZERO_TIME.to_owned(), |t| rfc3339(t, Fraction::Nanos))
}

/// `docker inspect`'s keys for `c`, merged over Quilt's own view.
pub fn inspect_value(c: &Container) -> Value {
    let mut v = serde_json::to_value(ContainerView::from(c)).unwrap_or(Value::Null);
    let security = c.security.clone().unwrap_or_default();
    let resources = c.resources.unwrap_or_default();
    let exit = c.exit.clone().unwrap_or_default();
    let running = c.state == ContainerState::Running as i32;
    let docker = json!({
        "Id": c.id,
        "Name": format!("/{}", c.name),
        "Created": time(c.created_at.as_ref()),
        "Path": c.command.first().cloned().unwrap_or_default(),
        "Args": c.command.get(1..).unwrap_or_default(),
        "Image": c.image,
        "State": {
            "Status": docker_state(c.state),
            "Running": running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": exit.oom_killed,
            "Dead": false,
            "Pid": if running { c.pid } else { 0 },
            "ExitCode": exit.exit_code,
            "Error": c.failure_reason,
            "StartedAt": time(c.started_at.as_ref()),
            "FinishedAt": time(c.finished_at.as_ref()),
        },
        "Config": {
            "Hostname": c.hostname,
            "User": security.user,
            "Tty": c.stdio.as_ref().is_some_and(|s| s.tty),
            "OpenStdin": c.stdio.as_ref().is_some_and(|s| s.open_stdin),
            "StdinOnce": c.stdio.as_ref().is_some_and(|s| s.stdin_once),
            "Env": c.env,
            "Cmd": c.command,
            "Image": c.image,
            "WorkingDir": c.working_dir,
            "Labels": c.labels,
        },
        "HostConfig": {
            "Memory": resources.memory_mb.max(0) * 1024 * 1024,
            "NanoCpus": (resources.cpus.max(0.0) * 1e9) as i64,
            "PidsLimit": resources.pids_limit,
            "AutoRemove": c.auto_remove,
            "Init": c.init,
            "NetworkMode": network_name(c.network),
            "ReadonlyRootfs": security.read_only,
            "CapAdd": security.cap_add,
            "CapDrop": security.cap_drop,
        },
        "NetworkSettings": {"IPAddress": "", "Networks": {}},
    });
    merge(&mut v, docker);
    v
}

/// `docker ps --format`'s fields for `c`, merged over Quilt's own view.
pub fn ps_value(c: &Container, now: i64, trunc: bool) -> Value {
    let mut v = serde_json::to_value(ContainerView::from(c)).unwrap_or(Value::Null);
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let docker = json!({
        "ID": if trunc { short_id(&c.id).to_owned() } else { c.id.clone() },
        "Names": c.name,
        "Image": c.image,
        "Command": command_text(&c.command, trunc),
        "CreatedAt": time(c.created_at.as_ref()),
        "RunningFor": created_text(c, now),
        "Status": status_text(c, now),
        "State": docker_state(c.state),
        "Labels": labels.join(","),
        "Ports": "",
        "Mounts": c.mounts.iter().map(|m| m.target.clone()).collect::<Vec<_>>().join(","),
    });
    merge(&mut v, docker);
    v
}

/// Column titles of `docker ps --format 'table ...'`.
pub const PS_TITLES: [(&str, &str); 11] = [
    ("ID", "CONTAINER ID"),
    ("Names", "NAMES"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Labels", "LABELS"),
    ("Ports", "PORTS"),
    ("Mounts", "MOUNTS"),
];

fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (base, extra) {
        b.extend(e);
    }
}
