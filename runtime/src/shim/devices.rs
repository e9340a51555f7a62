//! The host devices a container was given (`--device`, a GPU's nodes):
//! each host node is bind mounted at its path in the container, before
//! pivot_root. Binding (not mknod) works in a user namespace too, and the
//! node bound is pinned by descriptor and checked to be the very device
//! the allow-list names.
use super::common::*;
use crate::mounts::resolve_in_root;
use crate::spec::{DeviceKind, DeviceNode};
use nix::mount::MsFlags;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Bind mounts every device of `devices` below `rootfs`.
pub fn add_nodes(rootfs: &Path, devices: &[DeviceNode]) -> SetupResult<()> {
    for d in devices {
        add_node(rootfs, d)?;
    }
    Ok(())
}

fn add_node(rootfs: &Path, d: &DeviceNode) -> SetupResult<()> {
    let (fd, shown) = super::mounts::open_source(Path::new(&d.host_path), false)?;
    let st = nix::sys::stat::fstat(&fd).map_err(setup(format!("device {shown}")))?;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFCHR => Some(DeviceKind::Char),
        libc::S_IFBLK => Some(DeviceKind::Block),
        _ => None,
    };
    let (major, minor) = (
        nix::sys::stat::major(st.st_rdev) as u32,
        nix::sys::stat::minor(st.st_rdev) as u32,
    );
    if kind != Some(d.kind) || major != d.major || minor != d.minor {
        return Err(SetupError::new(
            EXIT_SETUP,
            format!(
                "device {shown} is no longer {} {}:{} (it changed since the container's start was prepared)",
                d.kind.letter(),
                d.major,
                d.minor
            ),
        ));
    }
    let target = target_in(rootfs, &d.path)?;
    match std::fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => {
            return Err(SetupError::new(
                EXIT_SETUP,
                format!("device path {} is a directory in the container", d.path),
            ));
        }
        Ok(_) => {}
        Err(_) => {
            std::fs::File::create(&target)
                .map_err(setup(format!("create {}", target.display())))?;
        }
    }
    let by_fd = format!("/proc/self/fd/{}", fd.as_raw_fd());
    nix::mount::mount(
        Some(Path::new(&by_fd)),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(setup(format!("bind mount device {shown} on {}", d.path)))
}

/// The host path of `path` inside `rootfs`: its parent directories are
/// created, symlinks followed inside the rootfs only (a final symlink too,
/// as mount(2) would follow it).
pub fn target_in(rootfs: &Path, path: &str) -> SetupResult<PathBuf> {
    parent_in(rootfs, path)?;
    let target = resolve_in_root(rootfs, path, false)
        .map_err(setup(format!("path in the container {path}")))?;
    below(rootfs, &target, path)?;
    Ok(target)
}

/// The same without following a final symlink: the path itself, for a
/// file or link the shim makes there.
pub fn literal_in(rootfs: &Path, path: &str) -> SetupResult<PathBuf> {
    let name = path.rsplit('/').next().unwrap_or_default();
    let target = parent_in(rootfs, path)?.join(name);
    below(rootfs, &target, path)?;
    Ok(target)
}

/// The directory holding `path` inside `rootfs` (created if missing).
fn parent_in(rootfs: &Path, path: &str) -> SetupResult<PathBuf> {
    let parent = match path.rsplit_once('/') {
        Some((p, n)) if !n.is_empty() && n != ".." && n != "." => p,
        _ => {
            return Err(SetupError::new(
                EXIT_SETUP,
                format!("invalid path in the container {path:?}"),
            ));
        }
    };
    let dir = resolve_in_root(rootfs, if parent.is_empty() { "/" } else { parent }, true)
        .map_err(setup(format!("path in the container {path}")))?;
    if !dir.starts_with(rootfs) {
        return Err(leaves(path));
    }
    Ok(dir)
}

/// `p` must be strictly below `rootfs`.
fn below(rootfs: &Path, p: &Path, shown: &str) -> SetupResult<()> {
    if !p.starts_with(rootfs) || p == rootfs {
        return Err(leaves(shown));
    }
    Ok(())
}

fn leaves(path: &str) -> SetupError {
    SetupError::new(EXIT_SETUP, format!("path {path} leaves the container"))
}
