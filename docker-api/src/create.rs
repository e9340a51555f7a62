//! POST /containers/create: docker's container config and HostConfig as the
//! engine's `CreateSpec`. Supported fields are translated; every other
//! field must be unset or at its default value, else the request is refused
//! (400) naming the field: nothing is accepted and silently ignored.
use crate::body::{self, Reply};
use crate::error::{ApiError, Result};
use crate::query::Query;
use crate::server::DockerApi;
use crate::unsupported;
use hyper::body::Incoming;
use quilt_sync_engine::MountSource;
use quilt_sync_engine::model::{DeviceMapping, Seccomp, Security, Ulimit, UsernsMode};
use quilt_sync_engine::{CreateSpec, MountSpec, Network, echo};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub async fn create(api: &DockerApi, q: &Query, body: Incoming) -> Result<Reply> {
    if let Some(p) = q.get("platform").filter(|p| !p.is_empty())
        && !p.starts_with("linux")
    {
        return Err(ApiError::bad(format!(
            "platform {} is not supported: only linux",
            echo(p)
        )));
    }
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned());
    let v = body::read_json(body).await?;
    let mut spec = spec(v, name)?;
    // In a cluster, on this node: the Docker API does not forward, and
    // docker's run is create, then start (and attach, wait) here.
    spec.node = api.engine.node_name();
    let c =
        api.engine
            .create(spec)
            .await
            .map_err(|e| match ApiError::from(e) {
                // docker's clients read "No such image" to offer a pull.
                ApiError::NotFound(m) if m.starts_with("no such image") => ApiError::NotFound(
                    format!("No such image: {}", m.trim_start_matches("no such image: ")),
                ),
                e => e,
            })?;
    Ok(body::json_with(
        http::StatusCode::CREATED,
        &json!({ "Id": c.id, "Warnings": [] }),
    ))
}

/// Whether a value is what docker's clients send for "unset".
pub fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_default),
    }
}

fn obj(v: Value, what: &str) -> Result<Map<String, Value>> {
    match v {
        Value::Object(o) => Ok(o),
        Value::Null => Ok(Map::new()),
        _ => Err(ApiError::bad(format!("{what} must be a JSON object"))),
    }
}

fn string(v: &Value, what: &str) -> Result<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::bad(format!("{what} must be a string"))),
    }
}

/// A list of strings; a single string is a one-element list (docker's
/// StrSlice).
fn strings(v: &Value, what: &str) -> Result<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad(format!("{what} must be a list of strings"))),
        _ => Err(ApiError::bad(format!("{what} must be a list of strings"))),
    }
}

fn int(v: &Value, what: &str) -> Result<i64> {
    match v {
        Value::Null => Ok(0),
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| ApiError::bad(format!("{what} must be an integer"))),
        _ => Err(ApiError::bad(format!("{what} must be an integer"))),
    }
}

fn flag(v: &Value, what: &str) -> Result<bool> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(ApiError::bad(format!("{what} must be true or false"))),
    }
}

fn string_map(v: &Value, what: &str) -> Result<BTreeMap<String, String>> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad(format!("{what} must map strings to strings"))),
        _ => Err(ApiError::bad(format!("{what} must be an object"))),
    }
}

/// The request body as the engine's spec.
pub fn spec(body: Value, name: Option<String>) -> Result<CreateSpec> {
    let mut cfg = obj(body, "the request body")?;
    let host = obj(
        cfg.remove("HostConfig").unwrap_or(Value::Null),
        "HostConfig",
    )?;
    let net_cfg = cfg.remove("NetworkingConfig").unwrap_or(Value::Null);
    let mut spec = CreateSpec {
        name,
        ..CreateSpec::new(String::new())
    };
    let mut entrypoint = None;
    let mut cmd = Vec::new();
    let mut network_disabled = false;
    for (k, v) in &cfg {
        let what = k.as_str();
        match what {
            "Image" => spec.image = image_ref(&string(v, what)?.unwrap_or_default()),
            "Cmd" => cmd = strings(v, what)?,
            // Set (even empty): replaces the image's; null: the image's.
            "Entrypoint" if !v.is_null() => entrypoint = Some(strings(v, what)?),
            "Entrypoint" => {}
            "Env" => spec.env = strings(v, what)?,
            "WorkingDir" => spec.working_dir = string(v, what)?,
            "User" => spec.security.user = string(v, what)?,
            "Labels" => spec.labels = string_map(v, what)?,
            "Hostname" => spec.hostname = string(v, what)?,
            "Tty" => spec.stdio.tty = flag(v, what)?,
            "OpenStdin" => spec.stdio.open_stdin = flag(v, what)?,
            "StdinOnce" => spec.stdio.stdin_once = flag(v, what)?,
            // Which streams the client will attach: a hint to the client itself.
            "AttachStdin" | "AttachStdout" | "AttachStderr" => {
                flag(v, what)?;
            }
            "NetworkDisabled" => network_disabled = flag(v, what)?,
            // Declarative only: what is published is HostConfig.PortBindings.
            "ExposedPorts" => {
                if !(v.is_null() || v.is_object()) {
                    return Err(ApiError::bad("Config.ExposedPorts must be an object"));
                }
            }
            "StopSignal" if !matches!(v.as_str(), None | Some("" | "SIGTERM" | "TERM" | "15")) => {
                return Err(unsupported::field("Config", what));
            }
            // The "none" health check is no health check.
            "Healthcheck" if v["Test"] == json!(["NONE"]) => {}
            _ if is_default(v) => {}
            _ => return Err(unsupported::field("Config", what)),
        }
    }
    if spec.image.is_empty() {
        return Err(ApiError::bad("Config.Image is required"));
    }
    // The engine applies docker's rules with the image's config.
    spec.entrypoint = entrypoint;
    spec.command = cmd;
    let default_mode = host
        .get("NetworkMode")
        .and_then(Value::as_str)
        .is_none_or(|m| matches!(m, "" | "default"));
    host_config(&mut spec, host)?;
    // docker's default network is a bridge; Quilt's is a private loopback
    // only one, unless ports are published (which need a bridge).
    if default_mode && !spec.net.ports.is_empty() {
        spec.network = Network::Bridge;
        spec.net.network = quilt_sync_engine::model::DEFAULT_NETWORK.into();
    }
    if network_disabled {
        spec.network = Network::None;
        spec.net = Default::default();
    }
    networking_config(&net_cfg, &mut spec)?;
    Ok(spec)
}

/// `busybox:latest` is stored as `busybox` when given without a tag.
fn image_ref(s: &str) -> String {
    s.strip_suffix(":latest").unwrap_or(s).to_owned()
}

fn host_config(spec: &mut CreateSpec, host: Map<String, Value>) -> Result<()> {
    let mut cpu_quota = 0;
    let mut cpu_period = 0;
    let mut memory = 0i64;
    let mut swap = 0i64;
    for (k, v) in &host {
        let what = k.as_str();
        match what {
            "Binds" => {
                for b in strings(v, what)? {
                    spec.mounts.push(bind(&b)?);
                }
            }
            "Mounts" => {
                if let Value::Array(a) = v {
                    for m in a {
                        spec.mounts.push(mount(m)?);
                    }
                } else if !v.is_null() {
                    return Err(ApiError::bad("HostConfig.Mounts must be a list"));
                }
            }
            "Tmpfs" => {
                for (target, opts) in string_map(v, what)? {
                    spec.mounts.push(tmpfs(&target, &opts)?);
                }
            }
            "Memory" => memory = int(v, what)?,
            "MemorySwap" => swap = int(v, what)?,
            "MemorySwappiness" if matches!(v.as_i64(), None | Some(-1)) => {}
            "NanoCpus" => {
                let n = int(v, what)?;
                if n < 0 {
                    return Err(ApiError::bad("HostConfig.NanoCpus must not be negative"));
                }
                spec.cpus = n as f64 / 1e9;
            }
            "CpuQuota" => cpu_quota = int(v, what)?,
            "CpuPeriod" => cpu_period = int(v, what)?,
            "PidsLimit" => {
                spec.pids_limit = match v {
                    Value::Null => 0,
                    // docker: 0 and -1 are "unlimited"; the engine's -1.
                    _ => match int(v, what)? {
                        0 | -1 => -1,
                        n if n < -1 => {
                            return Err(ApiError::bad(
                                "HostConfig.PidsLimit must be -1, 0 or positive",
                            ));
                        }
                        n => n,
                    },
                }
            }
            "AutoRemove" => spec.auto_remove = flag(v, what)?,
            "Init" => spec.init = flag(v, what)?,
            "CapAdd" => spec.security.cap_add = caps(v, what)?,
            "CapDrop" => spec.security.cap_drop = caps(v, what)?,
            "ReadonlyRootfs" => spec.security.read_only = flag(v, what)?,
            "Devices" => spec.security.devices = devices(v)?,
            "Ulimits" => spec.security.ulimits = ulimits(v)?,
            "SecurityOpt" => {
                for o in strings(v, what)? {
                    security_opt(&mut spec.security, &o)?;
                }
            }
            "UsernsMode" => {
                let m = v.as_str().unwrap_or_default();
                spec.security.userns = UsernsMode::parse(m).ok_or_else(|| {
                    ApiError::bad(format!(
                        "HostConfig.UsernsMode {}: use \"\", \"host\" or \"private\"",
                        echo(m)
                    ))
                })?;
            }
            "NetworkMode" => network_mode(spec, v.as_str().unwrap_or_default())?,
            "PortBindings" => spec.net.ports = port_bindings(v)?,
            "PublishAllPorts" if !is_default(v) => return Err(unsupported::publish_all()),
            "RestartPolicy" => {
                let n = v["Name"].as_str().unwrap_or_default();
                let max = v["MaximumRetryCount"].as_u64().unwrap_or(0);
                let max = u32::try_from(max).map_err(|_| {
                    ApiError::bad("HostConfig.RestartPolicy.MaximumRetryCount is too large")
                })?;
                spec.restart = quilt_sync_engine::model::RestartPolicy::from_parts(n, max)
                    .map_err(|e| ApiError::bad(format!("HostConfig.RestartPolicy: {e}")))?;
            }
            "LogConfig" => {
                let t = v["Type"].as_str().unwrap_or_default();
                if !matches!(t, "" | "json-file" | "local") || !is_default(&v["Config"]) {
                    return Err(ApiError::bad(format!(
                        "HostConfig.LogConfig: log driver {} with options is not supported (Quilt keeps each container's output in its own log files; leave LogConfig unset)",
                        echo(t)
                    )));
                }
            }
            // What docker's CLI sends by default.
            "ConsoleSize" | "OomKillDisable" => {}
            "CgroupnsMode" | "IpcMode"
                if matches!(v.as_str(), None | Some("" | "private" | "shareable")) => {}
            "Runtime" if matches!(v.as_str(), None | Some("" | "runc" | "quilt")) => {}
            "Isolation" if matches!(v.as_str(), None | Some("" | "default")) => {}
            _ if is_default(v) => {}
            _ => return Err(unsupported::field("HostConfig", what)),
        }
    }
    if memory < 0 {
        return Err(ApiError::bad("HostConfig.Memory must not be negative"));
    }
    spec.memory_mb = memory.div_euclid(1024 * 1024) + i64::from(memory % (1024 * 1024) != 0);
    // No swap limit of its own: only "unset", "unlimited" or "same as memory".
    if !(swap == 0 || swap == -1 || (memory > 0 && swap == memory)) {
        return Err(unsupported::field("HostConfig", "MemorySwap"));
    }
    match (cpu_quota, cpu_period) {
        (0, 0) => {}
        (q, p) if q > 0 && p > 0 && spec.cpus == 0.0 => spec.cpus = q as f64 / p as f64,
        (q, 0) if q > 0 && spec.cpus == 0.0 => spec.cpus = q as f64 / 100_000.0,
        _ => {
            return Err(ApiError::bad(
                "HostConfig.CpuQuota/CpuPeriod: give a positive quota (and period), or NanoCpus, not both",
            ));
        }
    }
    Ok(())
}

/// docker's network modes: `bridge` (Quilt's default bridge network), a
/// network's name, `container:ID`, `host` and `none`. docker's default
/// (`default` or empty) is Quilt's: a private loopback only network.
fn network_mode(spec: &mut CreateSpec, mode: &str) -> Result<()> {
    let (network, name, peer) = match mode {
        "" | "default" | "none" => (Network::None, "", ""),
        "host" => (Network::Host, "", ""),
        "bridge" => (
            Network::Bridge,
            quilt_sync_engine::model::DEFAULT_NETWORK,
            "",
        ),
        m => match m.strip_prefix("container:") {
            Some(peer) if !peer.is_empty() => (Network::Container, "", peer),
            Some(_) => return Err(ApiError::bad("network mode container: names no container")),
            None => (Network::Bridge, m, ""),
        },
    };
    spec.network = network;
    spec.net.network = name.to_owned();
    spec.net.peer = peer.to_owned();
    Ok(())
}

/// `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`. An empty HostIp is
/// 127.0.0.1 (Quilt's default; give 0.0.0.0 for every address), an empty
/// HostPort a free port.
fn port_bindings(v: &Value) -> Result<Vec<quilt_sync_engine::PortBinding>> {
    let what = "HostConfig.PortBindings";
    let Some(map) = v.as_object() else {
        return if v.is_null() {
            Ok(Vec::new())
        } else {
            Err(ApiError::bad(format!("{what} must be an object")))
        };
    };
    let mut out = Vec::new();
    for (key, binds) in map {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let container_port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
            ApiError::bad(format!("{what}: invalid container port {}", echo(key)))
        })?;
        let proto = quilt_sync_engine::PortProto::parse(proto)
            .map_err(|e| ApiError::bad(format!("{what} {}: {e}", echo(key))))?;
        let list: Vec<Value> = match binds {
            Value::Null => vec![Value::Null],
            Value::Array(a) if a.is_empty() => vec![Value::Null],
            Value::Array(a) => a.clone(),
            _ => {
                return Err(ApiError::bad(format!(
                    "{what} {} must be a list",
                    echo(key)
                )));
            }
        };
        for b in list {
            let host_ip = match b["HostIp"].as_str().unwrap_or_default() {
                "" => quilt_sync_engine::DEFAULT_PORT_HOST_IP,
                ip => ip.parse().map_err(|_| {
                    ApiError::bad(format!(
                        "{what} {}: HostIp {} is not an IPv4 address",
                        echo(key),
                        echo(ip)
                    ))
                })?,
            };
            let host_port = match b["HostPort"].as_str().unwrap_or_default() {
                "" => 0,
                p => p.parse().map_err(|_| {
                    ApiError::bad(format!(
                        "{what} {}: invalid HostPort {} (a port range is not supported)",
                        echo(key),
                        echo(p)
                    ))
                })?,
            };
            out.push(quilt_sync_engine::PortBinding {
                host_ip,
                host_port,
                container_port,
                proto,
            });
        }
    }
    Ok(out)
}

/// `EndpointsConfig`: at most the one network of NetworkMode; of its
/// settings, `Aliases` (more names on a bridge network's resolver).
fn networking_config(v: &Value, spec: &mut CreateSpec) -> Result<()> {
    let Some(eps) = v.get("EndpointsConfig").and_then(Value::as_object) else {
        return if v.is_null() || v.as_object().is_some_and(|o| o.values().all(is_default)) {
            Ok(())
        } else {
            Err(unsupported::field("NetworkingConfig", "?"))
        };
    };
    for (net, ep) in eps {
        let ours = match spec.network {
            Network::Bridge => {
                net == &spec.net.network
                    || (net == "bridge"
                        && spec.net.network == quilt_sync_engine::model::DEFAULT_NETWORK)
            }
            Network::None => matches!(net.as_str(), "default" | "none"),
            Network::Host => net == "host",
            Network::Container => false,
        };
        if !ours {
            return Err(ApiError::bad(format!(
                "NetworkingConfig.EndpointsConfig names {}, which is not the container's network (one network per container)",
                echo(net)
            )));
        }
        let mut ep = ep.as_object().cloned().unwrap_or_default();
        if let Some(aliases) = ep.remove("Aliases") {
            let aliases = strings(&aliases, "NetworkingConfig.EndpointsConfig.Aliases")?;
            if !aliases.is_empty() && spec.network != Network::Bridge {
                return Err(ApiError::bad(
                    "network aliases are for bridge networks (NetworkMode bridge or a network's name)",
                ));
            }
            spec.net.aliases = aliases;
        }
        if !ep.values().all(is_default) {
            return Err(unsupported::field("NetworkingConfig.EndpointsConfig", net));
        }
    }
    Ok(())
}

/// `SOURCE:TARGET[:OPTIONS]`: an absolute SOURCE is a bind mount, anything
/// else a named volume.
fn bind(b: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = b.split(':').collect();
    let (src, target, opts) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => {
            return Err(ApiError::bad(format!(
                "invalid bind {}: expected SOURCE:TARGET[:ro|rw]",
                echo(b)
            )));
        }
    };
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            o => {
                return Err(ApiError::bad(format!(
                    "bind {}: option {} is not supported (only ro, rw)",
                    echo(b),
                    echo(o)
                )));
            }
        }
    }
    let source = if src.starts_with('/') {
        MountSource::Bind(src.to_owned())
    } else {
        MountSource::Volume(src.to_owned())
    };
    Ok(MountSpec {
        target: target.to_owned(),
        read_only,
        source,
    })
}

/// One entry of HostConfig.Mounts (bind, volume or tmpfs).
fn mount(m: &Value) -> Result<MountSpec> {
    let o = m
        .as_object()
        .ok_or_else(|| ApiError::bad("HostConfig.Mounts: each mount is an object"))?;
    let ty = o.get("Type").and_then(Value::as_str).unwrap_or_default();
    let target = o
        .get("Target")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let source = o.get("Source").and_then(Value::as_str).unwrap_or_default();
    let mut read_only = false;
    let mut size = 0u64;
    for (k, v) in o {
        match k.as_str() {
            "Type" | "Target" | "Source" => {}
            "ReadOnly" => read_only = flag(v, "Mounts.ReadOnly")?,
            "TmpfsOptions" if ty == "tmpfs" => {
                let s = int(&v["SizeBytes"], "Mounts.TmpfsOptions.SizeBytes")?;
                size = u64::try_from(s).map_err(|_| {
                    ApiError::bad("Mounts.TmpfsOptions.SizeBytes must not be negative")
                })?;
                let mode = int(&v["Mode"], "Mounts.TmpfsOptions.Mode")?;
                if mode != 0 && mode != 0o1777 {
                    return Err(ApiError::bad(
                        "Mounts.TmpfsOptions.Mode: tmpfs mounts are always mode 1777",
                    ));
                }
            }
            "Consistency" if matches!(v.as_str(), None | Some("" | "default")) => {}
            _ if is_default(v) => {}
            _ => return Err(unsupported::field("HostConfig.Mounts", k)),
        }
    }
    let source = match ty {
        "bind" => MountSource::Bind(source.to_owned()),
        "volume" if !source.is_empty() => MountSource::Volume(source.to_owned()),
        "volume" => {
            return Err(ApiError::bad(
                "HostConfig.Mounts: anonymous volumes are not supported: name the volume (Source)",
            ));
        }
        "tmpfs" => MountSource::Tmpfs { size_bytes: size },
        t => {
            return Err(ApiError::bad(format!(
                "HostConfig.Mounts: mount type {} is not supported (bind, volume, tmpfs)",
                echo(t)
            )));
        }
    };
    Ok(MountSpec {
        target,
        read_only,
        source,
    })
}

/// HostConfig.Tmpfs: TARGET -> "rw,size=64m,...".
fn tmpfs(target: &str, opts: &str) -> Result<MountSpec> {
    let mut read_only = false;
    let mut size_bytes = 0;
    for o in opts.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", s)) => {
                size_bytes = quilt_proto::units::parse_size(s)
                    .map_err(|e| ApiError::bad(format!("tmpfs {}: {e}", echo(target))))?;
            }
            Some(("mode", "1777")) => {}
            None if o == "ro" => read_only = true,
            // Quilt's tmpfs mounts are always nosuid and nodev.
            None if matches!(o, "rw" | "nosuid" | "nodev" | "exec") => {}
            _ => {
                return Err(ApiError::bad(format!(
                    "tmpfs {}: option {} is not supported (rw, ro, size=, nosuid, nodev, exec)",
                    echo(target),
                    echo(o)
                )));
            }
        }
    }
    Ok(MountSpec {
        target: target.to_owned(),
        read_only,
        source: MountSource::Tmpfs { size_bytes },
    })
}

/// Capability names as the engine takes them (`NET_ADMIN`, `ALL`).
fn caps(v: &Value, what: &str) -> Result<Vec<String>> {
    Ok(strings(v, what)?
        .into_iter()
        .map(|c| {
            let up = c.to_ascii_uppercase();
            up.strip_prefix("CAP_").map(str::to_owned).unwrap_or(up)
        })
        .collect())
}

fn devices(v: &Value) -> Result<Vec<DeviceMapping>> {
    let Value::Array(a) = v else {
        return if v.is_null() {
            Ok(Vec::new())
        } else {
            Err(ApiError::bad("HostConfig.Devices must be a list"))
        };
    };
    a.iter()
        .map(|d| {
            let host = d["PathOnHost"].as_str().unwrap_or_default().to_owned();
            let inside = d["PathInContainer"].as_str().unwrap_or_default();
            let perms = d["CgroupPermissions"].as_str().unwrap_or_default();
            Ok(DeviceMapping {
                container_path: if inside.is_empty() {
                    host.clone()
                } else {
                    inside.to_owned()
                },
                host_path: host,
                permissions: if perms.is_empty() {
                    "rwm".into()
                } else {
                    perms.to_owned()
                },
            })
        })
        .collect()
}

fn ulimits(v: &Value) -> Result<Vec<Ulimit>> {
    let Value::Array(a) = v else {
        return if v.is_null() {
            Ok(Vec::new())
        } else {
            Err(ApiError::bad("HostConfig.Ulimits must be a list"))
        };
    };
    a.iter()
        .map(|u| {
            let name = u["Name"].as_str().unwrap_or_default().to_owned();
            let bound = |which: &str| -> Result<u64> {
                match int(&u[which], "Ulimits")? {
                    -1 => Ok(u64::MAX),
                    n => u64::try_from(n).map_err(|_| {
                        ApiError::bad(format!(
                            "ulimit {}: {which} must be -1 or positive",
                            echo(&name)
                        ))
                    }),
                }
            };
            Ok(Ulimit {
                soft: bound("Soft")?,
                hard: bound("Hard")?,
                name: name.clone(),
            })
        })
        .collect()
}

/// `seccomp=unconfined`, `seccomp=<profile JSON>` (docker's CLI sends the
/// file's content) and `no-new-privileges` (Quilt always sets it).
fn security_opt(s: &mut Security, o: &str) -> Result<()> {
    let (k, v) = o.split_once(['=', ':']).unwrap_or((o, ""));
    match (k, v) {
        ("seccomp", "unconfined") => s.seccomp = Seccomp::Unconfined,
        ("seccomp", p) if p.trim_start().starts_with('{') => {
            s.seccomp = Seccomp::Custom(p.to_owned())
        }
        ("no-new-privileges", "" | "true") => {}
        _ => {
            return Err(ApiError::bad(format!(
                "HostConfig.SecurityOpt {} is not supported (seccomp=unconfined, seccomp=<profile JSON>, no-new-privileges)",
                echo(o)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_what_docker_py_sends() {
        let s = spec(
            json!({
                "Image": "default:latest", "Cmd": ["echo", "hi"], "Env": ["A=1"],
                "Labels": {"k": "v"}, "Tty": false, "OpenStdin": false,
                "HostConfig": {"Memory": 67108864, "NanoCpus": 500000000, "PidsLimit": 0,
                    "Binds": ["/tmp:/host:ro", "vol:/data"], "Tmpfs": {"/run": "size=1m"},
                    "NetworkMode": "default", "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
                    "LogConfig": {"Type": "", "Config": {}}, "CapAdd": ["cap_net_admin"]},
                "NetworkingConfig": {"EndpointsConfig": {}}
            }),
            Some("x".into()),
        )
        .unwrap();
        assert_eq!(s.image, "default");
        assert_eq!(s.command, ["echo", "hi"]);
        assert_eq!(s.memory_mb, 64);
        assert_eq!(s.cpus, 0.5);
        assert_eq!(s.pids_limit, -1);
        assert_eq!(s.mounts.len(), 3);
        assert_eq!(
            s.mounts[2].source,
            MountSource::Tmpfs {
                size_bytes: 1 << 20
            }
        );
        assert_eq!(s.security.cap_add, ["NET_ADMIN"]);
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let refused = |v: Value| spec(v, None).unwrap_err().to_string();
        assert!(refused(json!({"Image": "x", "Tty": "yes"})).contains("Tty must be true or false"));
        let s = spec(
            json!({"Image": "x", "Tty": true, "OpenStdin": true, "StdinOnce": true}),
            None,
        )
        .unwrap();
        assert!(s.stdio.tty && s.stdio.open_stdin && s.stdio.stdin_once);
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"Privileged": true}}))
                .contains("HostConfig.Privileged")
        );
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"PublishAllPorts": true}}))
                .contains("PublishAllPorts")
        );
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"PortBindings": {"0/tcp": []}}}))
                .contains("container port")
        );
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"NetworkMode": "a"}, "NetworkingConfig": {"EndpointsConfig": {"b": {}}}}))
                .contains("not the container's network")
        );
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}))
                .contains("restart policy")
        );
        assert!(
            refused(json!({"Image": "x", "HostConfig": {"NetworkMode": "container:"}}))
                .contains("network mode")
        );
        assert!(refused(json!({"Cmd": ["x"]})).contains("Image is required"));
    }

    #[test]
    fn refused_values_are_echoed_short() {
        let huge = "x".repeat(100_000);
        let cases = [
            json!({"Image": "x", "HostConfig": {"UsernsMode": huge}}),
            json!({"Image": "x", "HostConfig": {"LogConfig": {"Type": huge}}}),
            json!({"Image": "x", "HostConfig": {"PortBindings": {huge.clone(): []}}}),
            json!({"Image": "x", "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": huge}]}}}),
            json!({"Image": "x", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": huge}]}}}),
            json!({"Image": "x", "HostConfig": {"Binds": [huge.clone()]}}),
            json!({"Image": "x", "HostConfig": {"SecurityOpt": [huge.clone()]}}),
        ];
        for v in cases {
            let m = spec(v, None).unwrap_err().to_string();
            assert!(m.len() < 1024, "{} bytes: {}", m.len(), &m[..200]);
            assert!(m.contains("100000 bytes"), "{m}");
        }
        // Whatever a message says, the answer carries at most MAX_MESSAGE.
        let r = crate::body::error(&ApiError::bad(huge));
        let limit = quilt_sync_engine::MAX_MESSAGE as u64 + 256;
        assert!(hyper::body::Body::size_hint(r.body()).upper().unwrap() < limit);
    }

    #[test]
    fn networks_and_ports() {
        let s = spec(
            json!({"Image": "x", "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": null}}}),
            None,
        )
        .unwrap();
        assert_eq!(s.network, Network::Bridge, "ports need the default bridge");
        assert_eq!(s.net.network, "bridge");
        assert_eq!(s.net.ports.len(), 2);
        let p = s.net.ports.iter().find(|p| p.container_port == 80).unwrap();
        assert_eq!(
            (p.host_ip.to_string().as_str(), p.host_port),
            ("127.0.0.1", 8080)
        );
        let s = spec(
            json!({"Image": "x", "HostConfig": {"NetworkMode": "mynet"}}),
            None,
        )
        .unwrap();
        assert_eq!(
            (s.network, s.net.network.as_str()),
            (Network::Bridge, "mynet")
        );
        let s = spec(
            json!({"Image": "x", "HostConfig": {"NetworkMode": "container:db"}}),
            None,
        )
        .unwrap();
        assert_eq!((s.network, s.net.peer.as_str()), (Network::Container, "db"));
        let s = spec(json!({"Image": "x"}), None).unwrap();
        assert_eq!(
            s.network,
            Network::None,
            "Quilt's default stays loopback only"
        );
    }
}
