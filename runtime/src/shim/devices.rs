//! The host devices a container was given (`--device`, a GPU's nodes):
//! each host node is bind mounted at its path in the container, before
//! the root switch. Binding (not mknod) works in a user namespace too, and the
//! node bound is pinned by descriptor and checked to be the very device
//! the allow-list names.
use super::common::*;
use crate::spec::{DeviceKind, DeviceNode};
use nix::mount::MsFlags;
use std::os::fd::AsRawFd;
use std::path::Path;

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
    // The node's place, resolved from the rootfs's descriptor (never out
    // of it), made as an empty file when missing, never truncated.
    let root = super::mounts::open_root(rootfs)?;
    let target = super::mounts::open_target(&root, &d.path, true)?;
    let is_dir = nix::sys::stat::fstat(&target)
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .map_err(setup(format!("device path {}", d.path)))?;
    if is_dir {
        return Err(SetupError::new(
            EXIT_SETUP,
            format!("device path {} is a directory in the container", d.path),
        ));
    }
    let by_fd = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let onto = format!("/proc/self/fd/{}", target.as_raw_fd());
    nix::mount::mount(
        Some(Path::new(&by_fd)),
        Path::new(&onto),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(setup(format!("bind mount device {shown} on {}", d.path)))
}
