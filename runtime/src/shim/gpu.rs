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
use nix::fcntl::OFlag;
use std::path::{Path, PathBuf};

/// Where the library directories are listed for the container's ldconfig.
const LD_SO_CONF: &str = "/etc/ld.so.conf.d/00-quilt-nvidia.conf";
/// The driver capabilities a container gets unless it names its own.
const DEFAULT_CAPABILITIES: &str = "compute,utility";

/// Mounts the driver files of `gpu` below `rootfs` (before it becomes the root).
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
    super::mounts::setup_mounts(rootfs, &mounts, None)?;
    let root = super::mounts::open_root(rootfs)?;
    for l in &gpu.links {
        // Worked on through the directory's descriptor: the final name is
        // never followed, and the directory was resolved inside the root.
        let (dir, name) = super::mounts::open_parent(&root, &l.path)?;
        match nix::fcntl::readlinkat(&dir, name.as_str()) {
            Ok(t) if t == std::ffi::OsStr::new(&l.target) => continue,
            // A link of an earlier start (an older driver): replaced.
            Ok(_) => {
                nix::unistd::unlinkat(&dir, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir)
                    .map_err(setup(format!("removing {}", l.path)))?
            }
            // Nothing there: made below.
            Err(nix::errno::Errno::ENOENT) => {}
            // The image's own file of that name (not a link): left alone.
            Err(_) => continue,
        }
        nix::unistd::symlinkat(l.target.as_str(), &dir, name.as_str())
            .map_err(setup(format!("symlink {}", l.path)))?;
    }
    if !gpu.library_dirs.is_empty() {
        let (dir, name) = super::mounts::open_parent(&root, LD_SO_CONF)?;
        let mut text = gpu.library_dirs.join("\n");
        text.push('\n');
        // Only ever a regular file: never through a symlink, and never a
        // device node or FIFO a previous run left there (opened before the
        // container's device list applies to this process; a FIFO would
        // block the start). Anything else is removed first.
        let regular = |st: nix::sys::stat::FileStat| st.st_mode & libc::S_IFMT == libc::S_IFREG;
        if matches!(
            nix::sys::stat::fstatat(&dir, name.as_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW),
            Ok(st) if !regular(st)
        ) {
            nix::unistd::unlinkat(&dir, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir)
                .map_err(setup(format!("removing {LD_SO_CONF}")))?;
        }
        let fd = nix::fcntl::openat(
            &dir,
            name.as_str(),
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .map_err(setup(format!("writing {LD_SO_CONF}")))?;
        if !nix::sys::stat::fstat(&fd).is_ok_and(regular) {
            return Err(SetupError::new(
                EXIT_SETUP,
                format!("writing {LD_SO_CONF}: not a regular file"),
            ));
        }
        use std::io::Write;
        std::fs::File::from(fd)
            .write_all(text.as_bytes())
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
    use nix::sys::stat::Mode;

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

    /// What an earlier run left at the library list's path (a FIFO, which
    /// an open would block on; a symbolic link; a regular file) gives way
    /// to the list, written as a regular file.
    #[test]
    fn the_library_list_is_only_ever_a_regular_file() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("etc/ld.so.conf.d");
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("00-quilt-nvidia.conf");
        let gpu = GpuConfig {
            library_dirs: vec!["/usr/lib/nv".into()],
            ..Default::default()
        };
        let outside = t.path().join("outside");
        std::fs::write(&outside, "kept\n").unwrap();
        let leftovers: [&dyn Fn(); 3] = [
            &|| nix::unistd::mkfifo(&list, Mode::from_bits_truncate(0o644)).unwrap(),
            &|| std::os::unix::fs::symlink(&outside, &list).unwrap(),
            &|| std::fs::write(&list, "/old\n").unwrap(),
        ];
        for leave in leftovers {
            let _ = std::fs::remove_file(&list);
            leave();
            mount_driver(t.path(), &gpu).unwrap();
            let st = std::fs::symlink_metadata(&list).unwrap();
            assert!(st.file_type().is_file(), "{st:?}");
            assert_eq!(std::fs::read_to_string(&list).unwrap(), "/usr/lib/nv\n");
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "kept\n");
    }
}
