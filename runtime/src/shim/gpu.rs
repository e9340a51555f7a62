//! The NVIDIA driver's user-space side in a GPU container: its libraries,
//! tools and firmware bind mounted read-only at their host paths, the
//! libraries' sonames linked next to them, their directories listed in
//! /etc/ld.so.conf.d (for an ldconfig run in the container) and appended
//! to LD_LIBRARY_PATH (so the loader finds them without one), plus the
//! NVIDIA_* variables. The image's own ldconfig is never run: it would be
//! the image's code running as root before privileges are dropped.
use super::common::*;
use crate::mounts::{MountConfig, MountKind};
use crate::spec::GpuConfig;
use std::path::{Path, PathBuf};

/// Where the library directories are listed for the container's ldconfig.
const LD_SO_CONF: &str = "/etc/ld.so.conf.d/00-quilt-nvidia.conf";
/// The driver capabilities a container gets unless it names its own.
const DEFAULT_CAPABILITIES: &str = "compute,utility";

/// Mounts the driver files of `gpu` below `rootfs` (before pivot_root).
pub fn mount_driver(rootfs: &Path, gpu: &GpuConfig) -> SetupResult<()> {
    let mounts: Vec<MountConfig> = gpu
        .files
        .iter()
        .map(|f| MountConfig {
            target: f.clone(),
            read_only: true,
            kind: MountKind::Bind {
                source: PathBuf::from(f),
                create: false,
            },
        })
        .collect();
    super::mounts::setup_mounts(rootfs, &mounts)?;
    for l in &gpu.links {
        let path = super::devices::literal_in(rootfs, &l.path)?;
        match std::fs::symlink_metadata(&path) {
            // The image's own file of that name: left alone.
            Ok(m) if !m.file_type().is_symlink() => continue,
            Ok(_) => {
                if std::fs::read_link(&path).is_ok_and(|t| t == Path::new(&l.target)) {
                    continue;
                }
                // A link of an earlier start (an older driver): replaced.
                std::fs::remove_file(&path)
                    .map_err(setup(format!("removing {}", path.display())))?;
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&l.target, &path)
            .map_err(setup(format!("symlink {}", l.path)))?;
    }
    if !gpu.library_dirs.is_empty() {
        let conf = super::devices::literal_in(rootfs, LD_SO_CONF)?;
        let mut text = gpu.library_dirs.join("\n");
        text.push('\n');
        // Never through a symlink the image has there.
        if std::fs::symlink_metadata(&conf).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&conf).map_err(setup(format!("removing {LD_SO_CONF}")))?;
        }
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&conf)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(setup(format!("writing {LD_SO_CONF}")))?;
    }
    Ok(())
}

/// The workload's environment with the GPU's variables: NVIDIA_VISIBLE_DEVICES
/// (what the container really has), NVIDIA_DRIVER_CAPABILITIES unless set,
/// and the library directories appended to LD_LIBRARY_PATH.
pub fn workload_env(env: &[String], gpu: Option<&GpuConfig>) -> Vec<String> {
    let Some(gpu) = gpu else {
        return env.to_vec();
    };
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    let mut out: Vec<String> = env
        .iter()
        .filter(|e| key(e) != "NVIDIA_VISIBLE_DEVICES")
        .cloned()
        .collect();
    out.push(format!("NVIDIA_VISIBLE_DEVICES={}", gpu.visible_devices));
    if !out.iter().any(|e| key(e) == "NVIDIA_DRIVER_CAPABILITIES") {
        out.push(format!("NVIDIA_DRIVER_CAPABILITIES={DEFAULT_CAPABILITIES}"));
    }
    if gpu.library_dirs.is_empty() {
        return out;
    }
    match out.iter_mut().find(|e| key(e) == "LD_LIBRARY_PATH") {
        Some(e) => {
            let mut dirs: Vec<String> = e["LD_LIBRARY_PATH=".len()..]
                .split(':')
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect();
            for d in &gpu.library_dirs {
                if !dirs.contains(d) {
                    dirs.push(d.clone());
                }
            }
            *e = format!("LD_LIBRARY_PATH={}", dirs.join(":"));
        }
        None => out.push(format!("LD_LIBRARY_PATH={}", gpu.library_dirs.join(":"))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_of_a_gpu_container() {
        let env = vec!["PATH=/bin".to_string(), "NVIDIA_VISIBLE_DEVICES=7".into()];
        assert_eq!(workload_env(&env, None), env);
        let gpu = GpuConfig {
            visible_devices: "0,1".into(),
            library_dirs: vec!["/usr/lib/x86_64-linux-gnu".into(), "/opt/nv".into()],
            ..Default::default()
        };
        assert_eq!(
            workload_env(&env, Some(&gpu)),
            [
                "PATH=/bin",
                "NVIDIA_VISIBLE_DEVICES=0,1",
                "NVIDIA_DRIVER_CAPABILITIES=compute,utility",
                "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/opt/nv",
            ]
        );
        let env = vec![
            "NVIDIA_DRIVER_CAPABILITIES=all".to_string(),
            "LD_LIBRARY_PATH=/app/lib::/opt/nv".into(),
        ];
        assert_eq!(
            workload_env(&env, Some(&gpu)),
            [
                "NVIDIA_DRIVER_CAPABILITIES=all",
                "LD_LIBRARY_PATH=/app/lib:/opt/nv:/usr/lib/x86_64-linux-gnu",
                "NVIDIA_VISIBLE_DEVICES=0,1",
            ]
        );
    }
}
