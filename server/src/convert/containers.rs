//! quilt.v1.ContainerService messages: containers, states, exits, events,
//! logs and mounts.
use super::{non_empty, ts};
use quilt_proto::v1 as pb;
use quilt_sync_engine::model::{
    DeviceMapping, IdleAction, Lifetime, RestartPolicy, Seccomp, Security, Ulimit, UsernsMode,
};
use quilt_sync_engine::{
    Container, CreateSpec, Event, EventFilter, ExitInfo, ListView, LogLine, LogStream, MountSource,
    MountSpec, State, WaitResult,
};
use tonic::Status;

pub fn state(s: State) -> pb::ContainerState {
    match s {
        State::Created => pb::ContainerState::Created,
        State::Starting => pb::ContainerState::Starting,
        State::Running => pb::ContainerState::Running,
        State::Paused => pb::ContainerState::Paused,
        State::Exited => pb::ContainerState::Exited,
        State::Failed => pb::ContainerState::Failed,
        State::Removing => pb::ContainerState::Removing,
        State::Lost => pb::ContainerState::Lost,
    }
}

pub fn state_from(s: pb::ContainerState) -> Option<State> {
    Some(match s {
        pb::ContainerState::Unspecified => return None,
        pb::ContainerState::Created => State::Created,
        pb::ContainerState::Starting => State::Starting,
        pb::ContainerState::Running => State::Running,
        pb::ContainerState::Paused => State::Paused,
        pb::ContainerState::Exited => State::Exited,
        pb::ContainerState::Failed => State::Failed,
        pb::ContainerState::Removing => State::Removing,
        pb::ContainerState::Lost => State::Lost,
    })
}

pub fn exit_status(
    state_: State,
    exit: Option<&ExitInfo>,
    reason: Option<&str>,
) -> Option<pb::ExitStatus> {
    if exit.is_none() && reason.is_none() {
        return None;
    }
    Some(pb::ExitStatus {
        exit_code: exit.map_or(0, |e| e.exit_code),
        signal: exit.map_or(0, |e| e.signal),
        oom_killed: exit.is_some_and(|e| e.oom_killed),
        state: state(state_) as i32,
        failure_reason: reason.unwrap_or_default().to_owned(),
        finished_at: exit.and_then(|e| e.finished_at_ns).map(ts),
    })
}

pub fn container(c: &Container) -> pb::Container {
    container_in(c, ListView::Full)
}

/// `c` as a view shows it: the summary leaves out its env, mounts and
/// security.
pub fn container_in(c: &Container, view: ListView) -> pb::Container {
    let full = view == ListView::Full;
    pb::Container {
        id: c.id.clone(),
        node: c.node.clone().unwrap_or_default(),
        name: c.name.clone(),
        image: c.image.clone(),
        command: c.command.clone(),
        env: if full { c.env.clone() } else { Vec::new() },
        working_dir: c.working_dir.clone(),
        hostname: c.hostname.clone(),
        resources: Some(pb::Resources {
            memory_mb: c.memory_mb,
            cpus: c.cpus,
            pids_limit: c.pids_limit,
            disk_bytes: c.disk_bytes,
        }),
        network: super::networks::mode(c.network) as i32,
        network_settings: super::networks::settings(c).map(Box::new),
        egress: c
            .net
            .egress
            .as_ref()
            .map(|e| Box::new(super::networks::egress(e))),
        stdio: (c.stdio != Default::default()).then_some(pb::Stdio {
            tty: c.stdio.tty,
            open_stdin: c.stdio.open_stdin,
            stdin_once: c.stdio.stdin_once,
        }),
        auto_remove: c.auto_remove,
        labels: c.labels.clone().into_iter().collect(),
        state: state(c.state) as i32,
        pid: c.pid.unwrap_or(0),
        exit: exit_status(c.state, c.exit.as_ref(), c.failure_reason.as_deref()).map(Box::new),
        created_at: Some(ts(c.created_at_ns)),
        started_at: c.started_at_ns.map(ts),
        finished_at: c.finished_at_ns.map(ts),
        failure_reason: c.failure_reason.clone().unwrap_or_default(),
        init: c.init,
        mounts: match full {
            true => c.mounts.iter().map(mount).collect(),
            false => Vec::new(),
        },
        security: full.then(|| Box::new(security(&c.security))),
        restart: Some(pb::RestartPolicy {
            name: c.restart.name().to_owned(),
            max_retries: c.restart.max(),
        }),
        restart_count: c.restart_count,
        lifetime: Some(Box::new(pb::Lifetime {
            ttl_ms: ns_to_ms(c.lifetime.ttl_ns),
            idle_timeout_ms: ns_to_ms(c.lifetime.idle_timeout_ns),
            idle_action: c.lifetime.idle_action.as_str().to_owned(),
            expires_at: c.lifetime.expires_at_ns.map(ts),
            last_activity: c.lifetime.last_activity_ns.map(ts),
        })),
    }
}

fn ns_to_ms(ns: i64) -> u64 {
    u64::try_from(ns / 1_000_000).unwrap_or(0)
}

/// A lifetime from the wire (checked for range by the engine).
fn lifetime_from(l: Option<pb::Lifetime>) -> Result<Lifetime, Status> {
    let l = l.unwrap_or_default();
    let ns = |what: &str, ms: u64| {
        i64::try_from(ms)
            .ok()
            .and_then(|ms| ms.checked_mul(1_000_000))
            .ok_or_else(|| Status::invalid_argument(format!("the {what} is too long")))
    };
    Ok(Lifetime {
        ttl_ns: ns("ttl", l.ttl_ms)?,
        idle_timeout_ns: ns("idle timeout", l.idle_timeout_ms)?,
        idle_action: IdleAction::parse(&l.idle_action).ok_or_else(|| {
            Status::invalid_argument(format!(
                "invalid idle action {} (expected stop or pause)",
                quilt_sync_engine::echo(&l.idle_action)
            ))
        })?,
        expires_at_ns: None,
        last_activity_ns: None,
    })
}

/// A restart policy from the wire: unset or an empty name is "no".
fn restart_from(r: Option<pb::RestartPolicy>) -> Result<RestartPolicy, Status> {
    let r = r.unwrap_or_default();
    RestartPolicy::from_parts(&r.name, r.max_retries).map_err(Status::invalid_argument)
}

pub fn wait_result(w: &WaitResult) -> pb::ExitStatus {
    exit_status(w.state, w.exit.as_ref(), w.failure_reason.as_deref()).unwrap_or(pb::ExitStatus {
        state: state(w.state) as i32,
        ..Default::default()
    })
}

pub fn event(e: &Event) -> pb::Event {
    pb::Event {
        container_id: e.container_id.to_string(),
        name: e.name.to_string(),
        state: state(e.state) as i32,
        time: Some(ts(e.time_ns)),
        exit: exit_status(e.state, e.exit.as_ref(), e.failure_reason.as_deref()),
        action: e.action.to_owned(),
    }
}

/// The filters and time bounds of a WatchEventsRequest (unix ns).
pub fn event_query(
    r: &pb::WatchEventsRequest,
) -> Result<(EventFilter, Option<i64>, Option<i64>), Status> {
    for a in &r.actions {
        if a.is_empty() || a.len() > 64 {
            return Err(Status::invalid_argument(format!(
                "invalid event action {}",
                quilt_sync_engine::echo(a)
            )));
        }
    }
    if r.containers.len() > 1000 || r.actions.len() > 100 {
        return Err(Status::invalid_argument("too many event filters"));
    }
    let since = r.since.as_ref().map(super::ts_ns);
    let until = r.until.as_ref().map(super::ts_ns);
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(Status::invalid_argument("until is before since"));
    }
    Ok((
        EventFilter {
            containers: r.containers.clone(),
            actions: r.actions.clone(),
        },
        since,
        until,
    ))
}

pub fn log_line(l: LogLine) -> pb::LogEntry {
    pb::LogEntry {
        timestamp: Some(ts(l.ts_ns)),
        stream: match l.stream {
            LogStream::Stdout => pb::LogStream::Stdout,
            LogStream::Stderr => pb::LogStream::Stderr,
        } as i32,
        data: l.data,
        partial: l.partial,
    }
}

pub fn mount(m: &MountSpec) -> pb::Mount {
    pb::Mount {
        target: m.target.clone(),
        read_only: m.read_only,
        source: Some(match &m.source {
            MountSource::Volume(n) => pb::mount::Source::Volume(n.clone()),
            MountSource::Bind(p) => pb::mount::Source::HostPath(p.clone()),
            MountSource::Tmpfs { size_bytes } => pb::mount::Source::Tmpfs(pb::TmpfsMount {
                size_bytes: *size_bytes,
            }),
        }),
    }
}

/// The mounts of a CreateContainerRequest (checked further by the engine).
fn mounts_from(m: &[pb::Mount]) -> Result<Vec<MountSpec>, Status> {
    m.iter()
        .map(|m| {
            let source = match &m.source {
                Some(pb::mount::Source::Volume(n)) => MountSource::Volume(n.clone()),
                Some(pb::mount::Source::HostPath(p)) => MountSource::Bind(p.clone()),
                Some(pb::mount::Source::Tmpfs(t)) => MountSource::Tmpfs {
                    size_bytes: t.size_bytes,
                },
                None => {
                    return Err(Status::invalid_argument(format!(
                        "mount {} has no source",
                        quilt_sync_engine::echo(&m.target)
                    )));
                }
            };
            Ok(MountSpec {
                target: m.target.clone(),
                read_only: m.read_only,
                source,
            })
        })
        .collect()
}

/// The containment options of a request (checked further by the engine).
fn security_from(s: pb::Security) -> Result<Security, Status> {
    let userns = UsernsMode::parse(&s.userns).ok_or_else(|| {
        Status::invalid_argument(format!(
            "unknown user namespace mode {}: use \"host\" or \"private\"",
            quilt_sync_engine::echo(&s.userns)
        ))
    })?;
    let seccomp = match s.seccomp_profile.as_str() {
        "" => Seccomp::Default,
        "unconfined" => Seccomp::Unconfined,
        _ => Seccomp::Custom(s.seccomp_profile),
    };
    let ulimits = s
        .ulimits
        .into_iter()
        .map(|u| {
            // -1: unlimited (RLIM_INFINITY).
            let bound = |v: i64, which: &str| match v {
                -1 => Ok(u64::MAX),
                v => u64::try_from(v).map_err(|_| {
                    Status::invalid_argument(format!(
                        "ulimit {:?}: the {which} limit {v} is negative (use -1 for unlimited)",
                        u.name.chars().take(64).collect::<String>()
                    ))
                }),
            };
            Ok(Ulimit {
                soft: bound(u.soft, "soft")?,
                hard: bound(u.hard, "hard")?,
                name: u.name,
            })
        })
        .collect::<Result<_, Status>>()?;
    Ok(Security {
        user: non_empty(s.user),
        read_only: s.read_only,
        cap_add: s.cap_add,
        cap_drop: s.cap_drop,
        ulimits,
        seccomp,
        devices: s
            .devices
            .into_iter()
            .map(|d| DeviceMapping {
                container_path: if d.container_path.is_empty() {
                    d.host_path.clone()
                } else {
                    d.container_path
                },
                host_path: d.host_path,
                permissions: if d.permissions.is_empty() {
                    "rwm".into()
                } else {
                    d.permissions
                },
            })
            .collect(),
        gpus: non_empty(s.gpus),
        userns,
    })
}

/// The containment options as stored.
fn security(s: &Security) -> pb::Security {
    pb::Security {
        user: s.user.clone().unwrap_or_default(),
        read_only: s.read_only,
        cap_add: s.cap_add.clone(),
        cap_drop: s.cap_drop.clone(),
        ulimits: s
            .ulimits
            .iter()
            .map(|u| {
                let wire = |v: u64| i64::try_from(v).unwrap_or(-1);
                pb::Ulimit {
                    name: u.name.clone(),
                    soft: wire(u.soft),
                    hard: wire(u.hard),
                }
            })
            .collect(),
        seccomp_profile: match &s.seccomp {
            Seccomp::Default => String::new(),
            Seccomp::Unconfined => "unconfined".into(),
            Seccomp::Custom(p) => p.clone(),
        },
        devices: s
            .devices
            .iter()
            .map(|d| pb::DeviceMapping {
                host_path: d.host_path.clone(),
                container_path: d.container_path.clone(),
                permissions: d.permissions.clone(),
            })
            .collect(),
        gpus: s.gpus.clone().unwrap_or_default(),
        userns: s.userns.as_str().to_owned(),
    }
}

/// StopContainer's timeout when none is given (docker's).
const DEFAULT_STOP_TIMEOUT: u32 = 10;
/// The longest StopContainer timeout accepted.
const MAX_STOP_TIMEOUT: u32 = 3600;

/// StopContainer's grace period before SIGKILL.
pub fn stop_timeout(seconds: Option<u32>) -> Result<std::time::Duration, Status> {
    let s = seconds.unwrap_or(DEFAULT_STOP_TIMEOUT);
    if s > MAX_STOP_TIMEOUT {
        return Err(Status::invalid_argument(format!(
            "stop timeout {s} s is too long: at most {MAX_STOP_TIMEOUT} s"
        )));
    }
    Ok(std::time::Duration::from_secs(s.into()))
}

/// A CreateContainerRequest as the engine's spec (checked further by the engine).
pub fn create_spec(r: pb::CreateContainerRequest) -> Result<CreateSpec, Status> {
    let res = r.resources.unwrap_or_default();
    let (network, net) = super::networks::request(&r)?;
    Ok(CreateSpec {
        network,
        net,
        mounts: mounts_from(&r.mounts)?,
        image: r.image,
        command: r.command,
        entrypoint: r.entrypoint.map(|e| e.argv),
        name: non_empty(r.name),
        env: r.env,
        working_dir: non_empty(r.working_dir),
        hostname: non_empty(r.hostname),
        memory_mb: res.memory_mb,
        cpus: res.cpus,
        pids_limit: res.pids_limit,
        auto_remove: r.auto_remove,
        labels: r.labels.into_iter().collect(),
        start: !r.no_start,
        init: r.init,
        disk_bytes: res.disk_bytes,
        security: security_from(r.security.unwrap_or_default())?,
        restart: restart_from(r.restart)?,
        lifetime: lifetime_from(r.lifetime)?,
        stdio: r
            .stdio
            .map(|s| quilt_sync_engine::Stdio {
                tty: s.tty,
                open_stdin: s.open_stdin,
                stdin_once: s.stdin_once,
            })
            .unwrap_or_default(),
        node: (!r.node.is_empty()).then_some(r.node),
        node_labels: r.node_labels.into_iter().collect(),
    })
}

/// The filters of a ListContainersRequest.
#[cfg(test)]
mod tests {
    use super::*;

    /// A value refused by name is echoed cut short, never whole: a client
    /// sending megabytes gets a message well under its 4 KiB.
    #[test]
    fn refused_values_are_echoed_short() {
        let long = "x".repeat(100_000);
        let events = pb::WatchEventsRequest {
            actions: vec![long.clone()],
            ..Default::default()
        };
        let lifetime = pb::Lifetime {
            idle_action: long.clone(),
            ..Default::default()
        };
        let security = pb::Security {
            userns: long.clone(),
            ..Default::default()
        };
        for err in [
            event_query(&events).map(drop).unwrap_err(),
            lifetime_from(Some(lifetime)).map(drop).unwrap_err(),
            security_from(security).map(drop).unwrap_err(),
        ] {
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(err.message().len() < 1024, "{} bytes", err.message().len());
            assert!(err.message().contains("100000 bytes"), "{}", err.message());
        }
    }

    /// The engine's stored state names and the wire enum's names agree, and
    /// the mapping is a bijection over every engine state.
    #[test]
    fn states_map_one_to_one() {
        for s in quilt_sync_engine::model::state::ALL {
            let wire = state(*s);
            assert_eq!(state_from(wire), Some(*s));
            let name = wire
                .as_str_name()
                .trim_start_matches("CONTAINER_STATE_")
                .to_ascii_lowercase();
            assert_eq!(name, s.as_str());
        }
        assert_eq!(state_from(pb::ContainerState::Unspecified), None);
    }
}
