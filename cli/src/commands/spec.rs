//! Turning `run`/`create` options into a CreateContainerRequest.

use std::path::Path;

use quilt_proto::v1::{
    CreateContainerRequest, DeviceMapping, Entrypoint, Lifetime, NetworkMode, Resources,
    RestartPolicy, Security, Ulimit,
};

use crate::args::container::{ContainerSpec, NetworkArg};
use crate::error::CliError;

/// The image reference sent to the server: "default", absolute paths and
/// stored image names or ids as given; relative paths made absolute against
/// the current directory (symlinks resolved when the path exists; the server
/// reports missing ones). A relative reference is a path when it exists,
/// starts with "." or names a tarball; otherwise it is an image name.
pub fn resolve_image(image: &str) -> Result<String, CliError> {
    if image == "default" || Path::new(image).is_absolute() {
        return Ok(image.to_owned());
    }
    let path = Path::new(image);
    let path_like = image.starts_with('.')
        || [".tar", ".tar.gz", ".tgz"]
            .iter()
            .any(|e| image.ends_with(e))
        || path.symlink_metadata().is_ok();
    if !path_like {
        return Ok(image.to_owned());
    }
    let resolved = match path.canonicalize() {
        Ok(p) => p,
        Err(_) => std::path::absolute(path)
            .map_err(|e| CliError::engine(format!("cannot resolve image path {image:?}: {e}")))?,
    };
    resolved
        .into_os_string()
        .into_string()
        .map_err(|p| CliError::engine(format!("image path is not valid UTF-8: {p:?}")))
}

/// Builds the request. `no_start` stores the container without starting it.
pub fn create_request(
    spec: &ContainerSpec,
    no_start: bool,
) -> Result<CreateContainerRequest, CliError> {
    let disk_bytes = storage_size(&spec.storage_opt)?;
    let mut env = Vec::new();
    for file in &spec.env_files {
        env.extend(crate::args::values::read_env_file(file).map_err(CliError::engine)?);
    }
    env.extend(spec.env.iter().cloned());
    let resources = (spec.memory.is_some()
        || spec.cpus.is_some()
        || spec.pids.is_some()
        || disk_bytes.is_some())
    .then(|| Resources {
        memory_mb: spec.memory.unwrap_or(0),
        cpus: spec.cpus.unwrap_or(0.0),
        pids_limit: spec.pids.unwrap_or(0),
        disk_bytes: disk_bytes.unwrap_or(0),
    });
    let (network, network_name) = match &spec.network {
        None => (NetworkMode::Unspecified, String::new()),
        Some(NetworkArg::None) => (NetworkMode::None, String::new()),
        Some(NetworkArg::Host) => (NetworkMode::Host, String::new()),
        Some(NetworkArg::Bridge(n)) => (NetworkMode::Bridge, n.clone()),
        Some(NetworkArg::Container(c)) => (NetworkMode::Container, c.clone()),
    };
    Ok(CreateContainerRequest {
        stdio: (spec.interactive || spec.tty).then_some(quilt_proto::v1::Stdio {
            tty: spec.tty,
            open_stdin: spec.interactive,
            stdin_once: false,
        }),
        image: resolve_image(spec.image())?,
        command: spec.command().to_vec(),
        name: spec.name.clone().unwrap_or_default(),
        env: crate::args::values::resolve_env(&env),
        working_dir: spec.workdir.clone().unwrap_or_default(),
        hostname: spec.hostname.clone().unwrap_or_default(),
        resources,
        network: network as i32,
        auto_remove: spec.rm,
        labels: spec.labels.iter().cloned().collect(),
        no_start,
        init: spec.init,
        priority: match spec.priority.as_deref() {
            Some("batch") => quilt_proto::v1::StartPriority::Batch,
            Some(_) => quilt_proto::v1::StartPriority::Interactive,
            None => quilt_proto::v1::StartPriority::Unspecified,
        } as i32,
        mounts: super::mounts::parse(&spec.volumes, &spec.tmpfs)?,
        security: Some(security(spec)?),
        entrypoint: spec.entrypoint.as_ref().map(|e| Entrypoint {
            argv: if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            },
        }),
        network_name,
        ports: spec
            .publish
            .iter()
            .map(|p| quilt_proto::v1::PortMapping {
                host_ip: p.host_ip.clone(),
                host_port: p.host_port,
                container_port: p.container_port,
                protocol: p.protocol.clone(),
            })
            .collect(),
        dns: spec.dns.clone(),
        egress: (spec.egress_default.is_some()
            || !spec.egress_allow.is_empty()
            || !spec.egress_deny.is_empty())
        .then(|| quilt_proto::v1::EgressPolicy {
            default_action: spec.egress_default.clone().unwrap_or_default(),
            allow: spec.egress_allow.clone(),
            deny: spec.egress_deny.clone(),
        }),
        network_aliases: spec.network_alias.clone(),
        node: spec.node.clone().unwrap_or_default(),
        node_labels: spec.node_labels.iter().cloned().collect(),
        extra_hosts: spec
            .add_host
            .iter()
            .map(|(name, ip)| quilt_proto::v1::HostEntry {
                name: name.clone(),
                ip: ip.clone(),
            })
            .collect(),
        lifetime: (spec.ttl.is_some() || spec.idle_timeout.is_some()).then(|| Lifetime {
            ttl_ms: spec.ttl.unwrap_or(0),
            idle_timeout_ms: spec.idle_timeout.unwrap_or(0),
            idle_action: spec.idle_action.clone().unwrap_or_default(),
            ..Default::default()
        }),
        restart: spec
            .restart
            .as_ref()
            .map(|(name, max_retries)| RestartPolicy {
                name: name.clone(),
                max_retries: *max_retries,
            }),
    })
}

/// The containment options: user, read-only rootfs, capabilities, ulimits,
/// security options, devices, GPUs and user namespace.
fn security(spec: &ContainerSpec) -> Result<Security, CliError> {
    let mut seccomp_profile = String::new();
    for opt in &spec.security_opt {
        let (key, value) = opt
            .split_once(['=', ':'])
            .map_or((opt.as_str(), None), |(k, v)| (k, Some(v)));
        match (key, value) {
            ("seccomp", Some("unconfined")) => seccomp_profile = "unconfined".into(),
            ("seccomp", Some(path)) if !path.is_empty() => {
                seccomp_profile = std::fs::read_to_string(path).map_err(|e| {
                    CliError::engine(format!("cannot read the seccomp profile {path}: {e}"))
                })?;
            }
            // Always on in Quilt: accepted, and nothing else is possible.
            ("no-new-privileges", None | Some("true")) => {}
            ("no-new-privileges", Some(_)) => {
                return Err(CliError::engine(
                    "no-new-privileges cannot be turned off: quilt always sets it",
                ));
            }
            _ => {
                return Err(CliError::engine(format!(
                    "unsupported --security-opt {opt:?}: use seccomp=unconfined, \
                     seccomp=PROFILE.json or no-new-privileges"
                )));
            }
        }
    }
    Ok(Security {
        user: spec.user.clone().unwrap_or_default(),
        read_only: spec.read_only,
        cap_add: spec.cap_add.clone(),
        cap_drop: spec.cap_drop.clone(),
        ulimits: spec
            .ulimits
            .iter()
            .map(|(name, soft, hard)| Ulimit {
                name: name.clone(),
                soft: *soft,
                hard: *hard,
            })
            .collect(),
        seccomp_profile,
        devices: spec
            .devices
            .iter()
            .map(|d| device(d))
            .collect::<Result<_, _>>()?,
        gpus: spec.gpus.clone().unwrap_or_default(),
        userns: spec.userns.clone().unwrap_or_default(),
    })
}

/// `HOST[:CONTAINER][:PERMS]`, as docker's --device.
fn device(arg: &str) -> Result<DeviceMapping, CliError> {
    let parts: Vec<&str> = arg.split(':').collect();
    let perms = |p: &str| !p.is_empty() && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let (host, ctr, permissions) = match parts.as_slice() {
        [h] => (*h, "", ""),
        [h, p] if perms(p) => (*h, "", *p),
        [h, c] => (*h, *c, ""),
        [h, c, p] if perms(p) => (*h, *c, *p),
        _ => {
            return Err(CliError::engine(format!(
                "invalid --device {arg:?}: expected HOST[:CONTAINER][:PERMISSIONS] (permissions: r, w, m)"
            )));
        }
    };
    if host.is_empty() {
        return Err(CliError::engine(format!(
            "invalid --device {arg:?}: the host path is empty"
        )));
    }
    Ok(DeviceMapping {
        host_path: host.to_owned(),
        container_path: ctr.to_owned(),
        permissions: permissions.to_owned(),
    })
}

/// The disk budget of `--storage-opt size=SIZE`.
fn storage_size(opts: &[String]) -> Result<Option<u64>, CliError> {
    let mut size = None;
    for o in opts {
        match o.split_once('=') {
            Some(("size", v)) => {
                size =
                    Some(quilt_proto::units::parse_size(v).map_err(|e| {
                        CliError::engine(format!("invalid --storage-opt {o:?}: {e}"))
                    })?);
            }
            _ => {
                return Err(CliError::engine(format!(
                    "unsupported --storage-opt {o:?}: only size=SIZE is supported"
                )));
            }
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};

    fn spec(args: &[&str]) -> ContainerSpec {
        let cli = Cli::parse_args(["quilt", "create"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Create(c) => c.spec,
            _ => unreachable!(),
        }
    }

    #[test]
    fn defaults_leave_fields_empty() {
        let req = create_request(&spec(&["default", "true"]), false).unwrap();
        assert_eq!(req.image, "default");
        assert_eq!(req.command, ["true"]);
        assert_eq!(req.resources, None);
        assert_eq!(req.network, NetworkMode::Unspecified as i32);
        assert!(req.name.is_empty() && req.working_dir.is_empty() && req.hostname.is_empty());
        assert!(!req.auto_remove && !req.no_start);
    }

    #[test]
    fn options_are_carried_over() {
        let req = create_request(
            &spec(&[
                "--name",
                "n",
                "-e",
                "A=1",
                "-w",
                "/w",
                "--memory",
                "-3",
                "--network",
                "none",
                "--rm",
                "-l",
                "k=v",
                "/abs/rootfs.tar",
                "sh",
                "-c",
                "a b",
            ]),
            true,
        )
        .unwrap();
        assert_eq!(req.image, "/abs/rootfs.tar");
        assert_eq!(req.command, ["sh", "-c", "a b"]);
        assert_eq!(req.name, "n");
        assert_eq!(req.env, ["A=1"]);
        assert_eq!(req.working_dir, "/w");
        assert_eq!(
            req.resources,
            Some(Resources {
                memory_mb: -3,
                cpus: 0.0,
                pids_limit: 0,
                disk_bytes: 0,
            })
        );
        assert_eq!(req.network, NetworkMode::None as i32);
        assert!(req.auto_remove && req.no_start);
        assert_eq!(req.labels.get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn relative_images_become_absolute() {
        let cwd = std::env::current_dir().unwrap();
        // An existing path is canonicalized.
        let resolved = resolve_image("src").unwrap();
        assert_eq!(
            Path::new(&resolved),
            cwd.join("src").canonicalize().unwrap()
        );
        // A missing one is still made absolute, for the server to reject.
        let resolved = resolve_image("no/such/rootfs.tar").unwrap();
        assert!(Path::new(&resolved).is_absolute());
        assert!(resolved.ends_with("no/such/rootfs.tar"));
        // Anything else is an image name, sent as is.
        assert_eq!(resolve_image("python").unwrap(), "python");
        assert_eq!(
            resolve_image("library/alpine:3").unwrap(),
            "library/alpine:3"
        );
    }
}
