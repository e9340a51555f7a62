//! Containers in docker's shapes: `/containers/{id}/json` and the entries
//! of `/containers/json`.
use crate::time::{ZERO, rfc3339, rfc3339_opt};
use quilt_sync_engine::model::Seccomp;
use quilt_sync_engine::{Container, MountSource, Network, State};
use serde_json::{Value, json};

/// At most 128 characters of client input, for messages.
pub fn cut(s: &str) -> String {
    s.chars().take(128).collect()
}

/// docker's status word for a state (docker has no "starting" nor "failed").
pub fn status(s: State) -> &'static str {
    match s {
        State::Created | State::Starting => "created",
        State::Running => "running",
        State::Paused => "paused",
        State::Exited | State::Failed => "exited",
        State::Removing => "removing",
        // docker's word for a container that cannot be brought back as is.
        State::Lost => "dead",
    }
}

/// The exit code docker reports: the workload's, 128+N when a signal ended
/// it, 125..127 when it could not start.
pub fn exit_code(c: &Container) -> i64 {
    match &c.exit {
        Some(e) if e.signal != 0 && e.exit_code == 0 => 128 + i64::from(e.signal),
        Some(e) => i64::from(e.exit_code),
        None if c.state == State::Failed => 125,
        None => 0,
    }
}

/// HostConfig.NetworkMode: `none`, `host`, the network's name, or
/// `container:ID`.
fn network_mode(c: &Container) -> String {
    match c.network {
        Network::Host => "host".into(),
        Network::None => "none".into(),
        Network::Bridge => c.net.network.clone(),
        Network::Container => format!("container:{}", c.net.peer),
    }
}

fn mounts(c: &Container) -> Vec<Value> {
    c.mounts
        .iter()
        .map(|m| {
            let (ty, name, source) = match &m.source {
                MountSource::Volume(n) => ("volume", n.as_str(), String::new()),
                MountSource::Bind(p) => ("bind", "", p.clone()),
                MountSource::Tmpfs { .. } => ("tmpfs", "", String::new()),
            };
            json!({
                "Type": ty, "Name": name, "Source": source, "Destination": m.target,
                "Driver": if ty == "volume" { "local" } else { "" },
                "Mode": if m.read_only { "ro" } else { "" }, "RW": !m.read_only,
                "Propagation": if ty == "bind" { "rprivate" } else { "" },
            })
        })
        .collect()
}

fn binds(c: &Container) -> Vec<String> {
    c.mounts
        .iter()
        .filter_map(|m| {
            let src = match &m.source {
                MountSource::Volume(n) => n.clone(),
                MountSource::Bind(p) => p.clone(),
                MountSource::Tmpfs { .. } => return None,
            };
            Some(format!(
                "{src}:{}{}",
                m.target,
                if m.read_only { ":ro" } else { "" }
            ))
        })
        .collect()
}

fn tmpfs(c: &Container) -> serde_json::Map<String, Value> {
    c.mounts
        .iter()
        .filter_map(|m| match m.source {
            MountSource::Tmpfs { size_bytes } => {
                let mut o = vec![if m.read_only {
                    "ro".to_owned()
                } else {
                    "rw".to_owned()
                }];
                if size_bytes > 0 {
                    o.push(format!("size={size_bytes}"));
                }
                Some((m.target.clone(), Value::String(o.join(","))))
            }
            _ => None,
        })
        .collect()
}

/// GET /containers/{id}/json.
pub fn container(c: &Container) -> Value {
    let s = &c.security;
    let (path, args) = match c.command.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let running = c.state == State::Running;
    json!({
        "Id": c.id,
        "Created": rfc3339(c.created_at_ns),
        "Path": path,
        "Args": args,
        "State": {
            "Status": status(c.state),
            "Running": running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": c.exit.as_ref().is_some_and(|e| e.oom_killed),
            "Dead": false,
            "Pid": if running { c.pid.unwrap_or(0) } else { 0 },
            "ExitCode": exit_code(c),
            "Error": c.failure_reason.clone().unwrap_or_default(),
            "StartedAt": rfc3339_opt(c.started_at_ns),
            "FinishedAt": if running { ZERO.to_owned() } else { rfc3339_opt(c.finished_at_ns) },
        },
        "Image": c.image,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": "",
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": binds(c),
            "NetworkMode": network_mode(c),
            "PortBindings": crate::networks::ports(c),
            "RestartPolicy": { "Name": c.restart.name(), "MaximumRetryCount": c.restart.max() },
            "AutoRemove": c.auto_remove,
            "CapAdd": s.cap_add,
            "CapDrop": s.cap_drop,
            "Init": c.init,
            "ReadonlyRootfs": s.read_only,
            "SecurityOpt": match &s.seccomp {
                Seccomp::Default => Vec::<String>::new(),
                Seccomp::Unconfined => vec!["seccomp=unconfined".to_owned()],
                Seccomp::Custom(_) => vec!["seccomp=custom".to_owned()],
            },
            "Tmpfs": tmpfs(c),
            "UsernsMode": s.userns.as_str(),
            "Memory": c.memory_mb * 1024 * 1024,
            "NanoCpus": (c.cpus * 1e9).round() as i64,
            "PidsLimit": c.pids_limit,
            "Devices": s.devices.iter().map(|d| json!({
                "PathOnHost": d.host_path, "PathInContainer": d.container_path,
                "CgroupPermissions": d.permissions,
            })).collect::<Vec<_>>(),
            "Ulimits": s.ulimits.iter().map(|u| {
                let wire = |v: u64| i64::try_from(v).unwrap_or(-1);
                json!({ "Name": u.name, "Soft": wire(u.soft), "Hard": wire(u.hard) })
            }).collect::<Vec<_>>(),
            "LogConfig": { "Type": "json-file", "Config": {} },
            "Privileged": false,
            "PublishAllPorts": false,
        },
        "GraphDriver": { "Name": "overlay", "Data": null },
        "Mounts": mounts(c),
        "Config": {
            "Hostname": c.hostname,
            "Domainname": "",
            "User": s.user.clone().unwrap_or_default(),
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "Tty": c.stdio.tty,
            "OpenStdin": c.stdio.open_stdin,
            "StdinOnce": c.stdio.stdin_once,
            "Env": c.env,
            "Cmd": c.command,
            "Image": c.image,
            "Volumes": null,
            "WorkingDir": c.working_dir,
            "Entrypoint": null,
            "OnBuild": null,
            "Labels": c.labels,
        },
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": false,
            "Ports": {},
            "SandboxKey": "",
            "Gateway": "",
            "IPAddress": "",
            "IPPrefixLen": 0,
            "MacAddress": "",
            "Networks": {},
        },
    })
}

/// "Up 3 seconds", "Exited (0) 2 minutes ago", "Created".
fn human_status(c: &Container, now_ns: i64) -> String {
    let ago = |ns: Option<i64>| {
        let secs = ns.map_or(0, |t| (now_ns - t).max(0) / 1_000_000_000);
        match secs {
            0 => "Less than a second".to_owned(),
            1 => "1 second".to_owned(),
            s if s < 60 => format!("{s} seconds"),
            s if s < 120 => "About a minute".to_owned(),
            s if s < 3600 => format!("{} minutes", s / 60),
            s if s < 7200 => "About an hour".to_owned(),
            s => format!("{} hours", s / 3600),
        }
    };
    match c.state {
        State::Created | State::Starting => "Created".to_owned(),
        State::Running => format!("Up {}", ago(c.started_at_ns)),
        State::Paused => format!("Up {} (Paused)", ago(c.started_at_ns)),
        State::Exited | State::Failed => {
            format!("Exited ({}) {} ago", exit_code(c), ago(c.finished_at_ns))
        }
        State::Removing => "Removal In Progress".to_owned(),
        State::Lost => "Dead (its node is down)".to_owned(),
    }
}

/// One entry of GET /containers/json.
pub fn summary(c: &Container, now_ns: i64) -> Value {
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image,
        "ImageID": c.image,
        "Command": c.command.join(" "),
        "Created": c.created_at_ns / 1_000_000_000,
        "Ports": c.net.ports.iter().map(|p| json!({
            "IP": p.host_ip.to_string(),
            "PrivatePort": p.container_port,
            "PublicPort": p.host_port,
            "Type": p.proto.as_str(),
        })).collect::<Vec<_>>(),
        "Labels": c.labels,
        "State": status(c.state),
        "Status": human_status(c, now_ns),
        "HostConfig": { "NetworkMode": network_mode(c) },
        "NetworkSettings": { "Networks": if c.network == Network::Bridge {
            json!({ c.net.network.clone(): crate::networks::endpoint(c, "") })
        } else {
            json!({})
        } },
        "Mounts": mounts(c),
    })
}
