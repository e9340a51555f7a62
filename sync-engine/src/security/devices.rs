//! Host devices (`--device`) and NVIDIA GPUs (`--gpus`): the checks made at
//! create (the request's form, then the host: a device node outside the
//! data dir, a GPU present), and the resolution made at each start (each
//! node's kind and numbers, the GPUs' nodes and the driver's files) into
//! what the shim binds into the container and its device allow-list.
use super::gpus;
use crate::engine::Shared;
use crate::error::{EngineError, Result};
use crate::model::{Container, Security};
use crate::validate::{echo, path_budget};
use quilt_runtime::devnode;
use quilt_runtime::spec::{DeviceNode, GpuConfig, SecurityConfig, Symlink};
use std::path::Path;

/// Devices of one container.
const MAX_DEVICES: usize = 64;
/// Container paths where no device may be put (or below which).
const RESERVED: [&str; 2] = ["/proc", "/sys"];
/// Devices never given: with them, root in the container owns the host.
const REFUSED: [(u32, u32, &str); 3] = [
    (1, 1, "the host's physical memory"),
    (1, 2, "the kernel's memory"),
    (1, 4, "the host's I/O ports"),
];
/// What a GPU container gets on its nodes (no mknod).
const GPU_ACCESS: &str = "rw";
const NO_GPU: &str = "no NVIDIA GPU on this host: --gpus needs the NVIDIA driver loaded \
                      (/dev/nvidiactl and a /dev/nvidia<N>)";

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidArgument(msg.into())
}

/// An absolute, normalised path: no `.`, `..` or empty component, no NUL.
fn check_path(what: &str, p: &str) -> Result<()> {
    path_budget(what, p)?;
    let bad = |why: &str| invalid(format!("invalid {what} {}: {why}", echo(p)));
    if !p.starts_with('/') {
        return Err(bad("it must be an absolute path"));
    }
    if p.contains('\0') {
        return Err(bad("it contains a NUL byte"));
    }
    if p == "/" {
        return Err(bad("it is the root directory"));
    }
    if p[1..].split('/').any(|c| c == "..") {
        return Err(bad("'..' is not allowed"));
    }
    if p[1..].split('/').any(|c| c.is_empty() || c == ".") {
        return Err(bad("the path must be normalised"));
    }
    Ok(())
}

/// "rwm" or any of its letters, each once, in any order; returned in the
/// order r, w, m.
fn permissions(p: &str) -> Result<String> {
    let ok = !p.is_empty()
        && p.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && ['r', 'w', 'm']
            .iter()
            .all(|l| p.chars().filter(|c| c == l).count() <= 1);
    if !ok {
        return Err(invalid(format!(
            "invalid device permissions {}: use some of r (read), w (write) and m (mknod)",
            echo(p)
        )));
    }
    Ok(['r', 'w', 'm'].iter().filter(|l| p.contains(**l)).collect())
}

/// The form of the request, without looking at the host.
pub(super) fn validate(s: &Security) -> Result<()> {
    if s.devices.len() > MAX_DEVICES {
        return Err(invalid(format!(
            "{} devices given: at most {MAX_DEVICES} are allowed",
            s.devices.len()
        )));
    }
    let mut seen: Vec<&str> = Vec::with_capacity(s.devices.len());
    for d in &s.devices {
        check_path("device", &d.host_path)?;
        let ctr = d.container_path.as_str();
        check_path("device path in the container", ctr)?;
        for r in RESERVED {
            if ctr == r || ctr.starts_with(&format!("{r}/")) {
                return Err(invalid(format!(
                    "invalid device path in the container {}: devices in {r} are not allowed",
                    echo(ctr)
                )));
            }
        }
        if ctr == "/dev" {
            return Err(invalid(
                "invalid device path in the container \"/dev\": name a node in it",
            ));
        }
        permissions(&d.permissions)?;
        if seen.contains(&ctr) {
            return Err(invalid(format!(
                "two devices at {} in the container",
                echo(ctr)
            )));
        }
        seen.push(ctr);
    }
    if let Some(g) = &s.gpus {
        gpus::parse_request(g).map_err(invalid)?;
    }
    Ok(())
}

/// The checks against the host made at create (blocking: it resolves and
/// stats paths). Each device must be a character or block device node,
/// outside the data dir and not one that hands over the host; its path is
/// stored canonical (the start never follows a symlink). `--gpus` needs a
/// GPU. Returns the options as they are stored.
pub(super) fn check_host(data_dir: &Path, mut s: Security) -> Result<Security> {
    for d in &mut s.devices {
        let bad = |why: String| invalid(format!("invalid device {}: {why}", echo(&d.host_path)));
        let canon = Path::new(&d.host_path)
            .canonicalize()
            .map_err(|e| bad(format!("cannot resolve it: {e}")))?;
        let mut data = vec![data_dir.to_path_buf()];
        data.extend(data_dir.canonicalize().ok());
        if data
            .iter()
            .any(|dd| canon.starts_with(dd) || Path::new(&d.host_path).starts_with(dd))
        {
            return Err(bad("it is in quiltd's data directory".into()));
        }
        let info = devnode::lookup(&canon)
            .map_err(|e| bad(format!("cannot stat it: {e}")))?
            .ok_or_else(|| bad("it is not a device node (character or block)".into()))?;
        if let Some((_, _, what)) = REFUSED
            .iter()
            .find(|(ma, mi, _)| (*ma, *mi) == (info.major, info.minor))
            .filter(|_| info.kind == quilt_runtime::spec::DeviceKind::Char)
        {
            return Err(bad(format!("it gives {what}, which no container may have")));
        }
        d.host_path = canon
            .into_os_string()
            .into_string()
            .map_err(|_| bad("the path is not valid UTF-8".into()))?;
        d.permissions = permissions(&d.permissions)?;
    }
    if let Some(g) = &s.gpus {
        let req = gpus::parse_request(g).map_err(invalid)?;
        let all = host_gpus()?;
        gpus::select(&all, &req).map_err(invalid)?;
    }
    Ok(s)
}

/// The host's GPUs; none (or no control node) is FAILED_PRECONDITION.
fn host_gpus() -> Result<Vec<gpus::Gpu>> {
    let all = gpus::gpus(Path::new("/"));
    if all.is_empty() || !Path::new("/dev/nvidiactl").exists() {
        return Err(EngineError::FailedPrecondition(NO_GPU.into()));
    }
    Ok(all)
}

/// The device node at `host` (as it is now), given at `path` with `access`.
fn node(host: &str, path: &str, access: &str) -> Result<DeviceNode> {
    let gone = |why: String| EngineError::FailedPrecondition(format!("device {host}: {why}"));
    let info = devnode::lookup(Path::new(host))
        .map_err(|e| gone(e.to_string()))?
        .ok_or_else(|| gone("no longer a device node".into()))?;
    Ok(DeviceNode {
        path: path.to_owned(),
        host_path: host.to_owned(),
        kind: info.kind,
        major: info.major,
        minor: info.minor,
        access: access.to_owned(),
    })
}

/// What this start of `c` gets: its devices' nodes, and for `--gpus` the
/// GPUs' nodes, the driver's control nodes and files. Blocking.
pub(super) fn configure(_shared: &Shared, c: &Container, cfg: &mut SecurityConfig) -> Result<()> {
    for d in &c.security.devices {
        cfg.devices
            .push(node(&d.host_path, &d.container_path, &d.permissions)?);
    }
    if let Some(g) = &c.security.gpus {
        cfg.gpu = Some(gpu(g, &mut cfg.devices)?);
    }
    Ok(())
}

/// The GPUs `request` names: their nodes into `devices`, the driver's
/// files into the returned config.
fn gpu(request: &str, devices: &mut Vec<DeviceNode>) -> Result<GpuConfig> {
    let req = gpus::parse_request(request).map_err(invalid)?;
    let all = host_gpus()?;
    let chosen = gpus::select(&all, &req).map_err(EngineError::FailedPrecondition)?;
    let driver = gpus::host_driver_files().map_err(EngineError::FailedPrecondition)?;
    for g in &chosen {
        let n = format!("/dev/nvidia{}", g.minor);
        devices.push(node(&n, &n, GPU_ACCESS)?);
    }
    for n in &gpus::control_nodes(Path::new("/")) {
        devices.push(node(n, n, GPU_ACCESS)?);
    }
    Ok(gpu_config(&chosen, &driver))
}

/// The driver files of a GPU container: each library at its host path with
/// a link per soname beside it, the tools and the firmware; the libraries'
/// directories for the loader; the GPUs' indices for NVIDIA_VISIBLE_DEVICES.
fn gpu_config(chosen: &[&gpus::Gpu], driver: &gpus::DriverFiles) -> GpuConfig {
    let mut cfg = GpuConfig {
        visible_devices: chosen
            .iter()
            .map(|g| g.index.to_string())
            .collect::<Vec<_>>()
            .join(","),
        ..Default::default()
    };
    for lib in &driver.libraries {
        let Some((dir, name)) = lib.file.rsplit_once('/') else {
            continue;
        };
        let dir = if dir.is_empty() { "/" } else { dir };
        cfg.files.push(lib.file.clone());
        for l in &lib.links {
            cfg.links.push(Symlink {
                path: format!("{}/{l}", dir.trim_end_matches('/')),
                target: name.to_owned(),
            });
        }
        if !cfg.library_dirs.iter().any(|d| d == dir) {
            cfg.library_dirs.push(dir.to_owned());
        }
    }
    for tool in &driver.tools {
        cfg.files.push(tool.clone());
        // A tool outside the directories on every container's PATH gets a
        // link in /usr/bin, where a shell looks for `nvidia-smi`.
        if let Some((dir, name)) = tool.rsplit_once('/')
            && !gpus::TOOL_DIRS.contains(&dir)
        {
            cfg.links.push(Symlink {
                path: format!("/usr/bin/{name}"),
                target: tool.clone(),
            });
        }
    }
    cfg.files.extend(driver.firmware.iter().cloned());
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeviceMapping;

    fn sec(devices: &[(&str, &str, &str)]) -> Security {
        Security {
            devices: devices
                .iter()
                .map(|(h, c, p)| DeviceMapping {
                    host_path: h.to_string(),
                    container_path: c.to_string(),
                    permissions: p.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn refused(s: &Security) -> String {
        match validate(s) {
            Err(EngineError::InvalidArgument(m)) => m,
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn form() {
        validate(&sec(&[
            ("/dev/zero", "/dev/myzero", "r"),
            ("/dev/null", "/x/null", "mwr"),
        ]))
        .unwrap();
        for (d, want) in [
            (
                ("dev/zero", "/dev/zero", "rwm"),
                "invalid device \"dev/zero\": it must be an absolute path",
            ),
            (("/dev/../zero", "/dev/zero", "rwm"), "'..' is not allowed"),
            (("/dev//zero", "/dev/zero", "rwm"), "must be normalised"),
            (
                ("/dev/zero", "dev/z", "rwm"),
                "invalid device path in the container \"dev/z\"",
            ),
            (
                ("/dev/zero", "/proc/z", "rwm"),
                "devices in /proc are not allowed",
            ),
            (
                ("/dev/zero", "/sys", "rwm"),
                "devices in /sys are not allowed",
            ),
            (("/dev/zero", "/dev", "rwm"), "name a node in it"),
            (("/dev/zero", "/", "rwm"), "it is the root directory"),
            (
                ("/dev/zero", "/dev/z", ""),
                "invalid device permissions \"\"",
            ),
            (
                ("/dev/zero", "/dev/z", "rr"),
                "invalid device permissions \"rr\"",
            ),
            (
                ("/dev/zero", "/dev/z", "rwx"),
                "invalid device permissions \"rwx\"",
            ),
        ] {
            let m = refused(&sec(&[d]));
            assert!(m.contains(want), "{d:?}: {m}");
        }
        let m = refused(&sec(&[
            ("/dev/zero", "/dev/z", "r"),
            ("/dev/null", "/dev/z", "r"),
        ]));
        assert_eq!(m, "two devices at \"/dev/z\" in the container");
        let many: Vec<(&str, &str, &str)> = vec![("/dev/zero", "/dev/z", "r"); 65];
        assert!(refused(&sec(&many)).contains("at most 64"));
        let gpus = Security {
            gpus: Some("lots".into()),
            ..Default::default()
        };
        assert!(refused(&gpus).starts_with("invalid --gpus \"lots\""));
    }

    #[test]
    fn host() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        std::fs::create_dir(&data).unwrap();
        // Canonical path and normalised permissions are stored.
        std::os::unix::fs::symlink("/dev/zero", t.path().join("z")).unwrap();
        let z = t.path().join("z");
        let s = check_host(&data, sec(&[(z.to_str().unwrap(), "/dev/z", "mr")])).unwrap();
        assert_eq!(s.devices[0].host_path, "/dev/zero");
        assert_eq!(s.devices[0].container_path, "/dev/z");
        assert_eq!(s.devices[0].permissions, "rm");

        let err = |d: &str| match check_host(&data, sec(&[(d, "/dev/x", "rwm")])) {
            Err(EngineError::InvalidArgument(m)) => m,
            other => panic!("expected INVALID_ARGUMENT for {d}, got {other:?}"),
        };
        assert!(err("/dev/no-such-device").contains("cannot resolve it"));
        assert!(err("/etc/hostname").contains("is not a device node"));
        assert!(err("/dev").contains("is not a device node"));
        let mem = t.path().join("mem");
        mknod(&mem, 1, 1);
        assert!(err(mem.to_str().unwrap()).contains("physical memory"));
        // A node in the data dir, directly or through a symlink.
        let node = data.join("null");
        mknod(&node, 1, 3);
        assert!(err(node.to_str().unwrap()).contains("data directory"));
        std::os::unix::fs::symlink(&node, t.path().join("to-data")).unwrap();
        assert!(err(t.path().join("to-data").to_str().unwrap()).contains("data directory"));
    }

    /// A character node (the tests run as root, as the whole suite does).
    fn mknod(p: &Path, major: u32, minor: u32) {
        use rustix::fs::{CWD, FileType, Mode, makedev, mknodat};
        mknodat(
            CWD,
            p,
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o600),
            makedev(major, minor),
        )
        .expect("mknod (needs root)");
    }

    #[test]
    fn gpu_files_links_and_loader_dirs() {
        let lib = "/usr/lib/x86_64-linux-gnu";
        let driver = gpus::DriverFiles {
            version: Some("535.104.05".into()),
            libraries: vec![
                gpus::Library {
                    file: format!("{lib}/libcuda.so.535.104.05"),
                    links: vec!["libcuda.so".into(), "libcuda.so.1".into()],
                },
                gpus::Library {
                    file: format!("{lib}/libnvidia-ml.so.535.104.05"),
                    links: vec!["libnvidia-ml.so.1".into()],
                },
                gpus::Library {
                    file: "/usr/lib/nvidia/libnvidia-tls.so.535.104.05".into(),
                    links: vec![],
                },
            ],
            tools: vec![
                "/usr/bin/nvidia-smi".into(),
                "/usr/local/nvidia/bin/nvidia-debugdump".into(),
            ],
            firmware: Some("/usr/lib/firmware/nvidia/535.104.05".into()),
        };
        let g = |index, minor| gpus::Gpu {
            index,
            minor,
            uuid: None,
        };
        let (a, b) = (g(0, 1), g(1, 3));
        let cfg = gpu_config(&[&b, &a], &driver);
        assert_eq!(cfg.visible_devices, "1,0");
        assert_eq!(
            cfg.files,
            [
                format!("{lib}/libcuda.so.535.104.05"),
                format!("{lib}/libnvidia-ml.so.535.104.05"),
                "/usr/lib/nvidia/libnvidia-tls.so.535.104.05".into(),
                "/usr/bin/nvidia-smi".into(),
                "/usr/local/nvidia/bin/nvidia-debugdump".into(),
                "/usr/lib/firmware/nvidia/535.104.05".into(),
            ]
        );
        let links: Vec<(String, String)> = cfg
            .links
            .iter()
            .map(|l| (l.path.clone(), l.target.clone()))
            .collect();
        assert_eq!(
            links,
            [
                (format!("{lib}/libcuda.so"), "libcuda.so.535.104.05".into()),
                (
                    format!("{lib}/libcuda.so.1"),
                    "libcuda.so.535.104.05".into()
                ),
                (
                    format!("{lib}/libnvidia-ml.so.1"),
                    "libnvidia-ml.so.535.104.05".into()
                ),
                (
                    "/usr/bin/nvidia-debugdump".into(),
                    "/usr/local/nvidia/bin/nvidia-debugdump".into()
                ),
            ]
        );
        assert_eq!(cfg.library_dirs, [lib, "/usr/lib/nvidia"]);
    }

    #[test]
    fn gpus_need_a_gpu() {
        let s = Security {
            gpus: Some("all".into()),
            ..Default::default()
        };
        let res = check_host(Path::new("/nonexistent"), s);
        if gpus::gpus(Path::new("/")).is_empty() {
            match res {
                Err(EngineError::FailedPrecondition(m)) => assert_eq!(m, NO_GPU),
                other => panic!("expected FAILED_PRECONDITION, got {other:?}"),
            }
        } else {
            res.unwrap();
        }
    }
}
