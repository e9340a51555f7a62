//! Engine model <-> quilt.v1 wire types.
use quilt_proto::v1 as pb;
use quilt_sync_engine::{
    Container, Event, ExitInfo, LogLine, LogStream, MountSource, MountSpec, Network, State, Volume,
    WaitResult,
};

/// An optional string field: proto3 sends "" for unset.
pub fn non_empty<S: AsRef<str>>(s: S) -> Option<S> {
    (!s.as_ref().is_empty()).then_some(s)
}

pub fn ts(ns: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ns.div_euclid(1_000_000_000),
        nanos: ns.rem_euclid(1_000_000_000) as i32,
    }
}

/// A wire timestamp as unix nanoseconds (saturating far outside i64's range).
pub fn ts_ns(t: &prost_types::Timestamp) -> i64 {
    (t.seconds as i128 * 1_000_000_000 + t.nanos as i128).clamp(i64::MIN as i128, i64::MAX as i128)
        as i64
}

pub fn state(s: State) -> pb::ContainerState {
    match s {
        State::Created => pb::ContainerState::Created,
        State::Starting => pb::ContainerState::Starting,
        State::Running => pb::ContainerState::Running,
        State::Exited => pb::ContainerState::Exited,
        State::Failed => pb::ContainerState::Failed,
        State::Removing => pb::ContainerState::Removing,
    }
}

pub fn state_from(s: pb::ContainerState) -> Option<State> {
    Some(match s {
        pb::ContainerState::Unspecified => return None,
        pb::ContainerState::Created => State::Created,
        pb::ContainerState::Starting => State::Starting,
        pb::ContainerState::Running => State::Running,
        pb::ContainerState::Exited => State::Exited,
        pb::ContainerState::Failed => State::Failed,
        pb::ContainerState::Removing => State::Removing,
    })
}

fn network(n: Network) -> pb::NetworkMode {
    match n {
        Network::None => pb::NetworkMode::None,
        Network::Host => pb::NetworkMode::Host,
    }
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
    pb::Container {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        command: c.command.clone(),
        env: c.env.clone(),
        working_dir: c.working_dir.clone(),
        hostname: c.hostname.clone(),
        resources: Some(pb::Resources {
            memory_mb: c.memory_mb,
            cpus: c.cpus,
            pids_limit: c.pids_limit,
        }),
        network: network(c.network) as i32,
        auto_remove: c.auto_remove,
        labels: c.labels.clone().into_iter().collect(),
        state: state(c.state) as i32,
        pid: c.pid.unwrap_or(0),
        exit: exit_status(c.state, c.exit.as_ref(), c.failure_reason.as_deref()),
        created_at: Some(ts(c.created_at_ns)),
        started_at: c.started_at_ns.map(ts),
        finished_at: c.finished_at_ns.map(ts),
        failure_reason: c.failure_reason.clone().unwrap_or_default(),
        init: c.init,
        mounts: c.mounts.iter().map(mount).collect(),
    }
}

pub fn wait_result(w: &WaitResult) -> pb::ExitStatus {
    exit_status(w.state, w.exit.as_ref(), w.failure_reason.as_deref()).unwrap_or(pb::ExitStatus {
        state: state(w.state) as i32,
        ..Default::default()
    })
}

pub fn event(e: &Event) -> pb::Event {
    pb::Event {
        container_id: e.container_id.clone(),
        name: e.name.clone(),
        state: state(e.state) as i32,
        time: Some(ts(e.time_ns)),
        exit: exit_status(e.state, e.exit.as_ref(), e.failure_reason.as_deref()),
        action: e.action.to_owned(),
    }
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
pub fn mounts_from(m: &[pb::Mount]) -> Result<Vec<MountSpec>, tonic::Status> {
    m.iter()
        .map(|m| {
            let source = match &m.source {
                Some(pb::mount::Source::Volume(n)) => MountSource::Volume(n.clone()),
                Some(pb::mount::Source::HostPath(p)) => MountSource::Bind(p.clone()),
                Some(pb::mount::Source::Tmpfs(t)) => MountSource::Tmpfs {
                    size_bytes: t.size_bytes,
                },
                None => {
                    return Err(tonic::Status::invalid_argument(format!(
                        "mount {:?} has no source",
                        m.target
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

pub fn volume(v: &Volume) -> pb::Volume {
    pb::Volume {
        name: v.name.clone(),
        created_at: Some(ts(v.created_at_ns)),
        labels: v.labels.clone().into_iter().collect(),
        used_by: v.used_by.clone(),
    }
}
