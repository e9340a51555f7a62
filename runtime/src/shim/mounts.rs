//! The container's volumes, bind mounts and tmpfs mounts, made inside its
//! mount namespace after the rootfs is ready and before pivot_root.
use super::common::*;
use crate::mounts::{MountConfig, MountKind, resolve_in_root};
use nix::mount::MsFlags;
use std::path::Path;

/// Makes every mount below `rootfs`. Targets are resolved inside the rootfs
/// (symlinks followed within it, never out of it); missing directories are
/// created, and an empty file when a file is bind mounted.
pub fn setup_mounts(rootfs: &Path, mounts: &[MountConfig]) -> SetupResult<()> {
    for m in mounts {
        let source_is_file = match &m.kind {
            MountKind::Bind { source, .. } => std::fs::metadata(source)
                .map_err(setup(format!("mount source {}", source.display())))?
                .is_file(),
            MountKind::Tmpfs { .. } => false,
        };
        let parent = match m.target.rsplit_once('/') {
            Some((p, n)) if !n.is_empty() && n != ".." && n != "." => p,
            _ => {
                return Err(SetupError::new(
                    EXIT_SETUP,
                    format!("invalid mount target {:?}", m.target),
                ));
            }
        };
        resolve_in_root(rootfs, if parent.is_empty() { "/" } else { parent }, true)
            .map_err(setup(format!("mount target {}", m.target)))?;
        // Symlinks (also a final one) are followed inside the rootfs only.
        let target = resolve_in_root(rootfs, &m.target, false)
            .map_err(setup(format!("mount target {}", m.target)))?;
        if !target.starts_with(rootfs) || target == rootfs {
            return Err(SetupError::new(
                EXIT_SETUP,
                format!("mount target {} leaves the container", m.target),
            ));
        }
        match std::fs::symlink_metadata(&target) {
            Ok(_) => {}
            Err(_) if source_is_file => {
                std::fs::File::create(&target)
                    .map_err(setup(format!("create {}", target.display())))?;
            }
            Err(_) => {
                std::fs::create_dir(&target)
                    .map_err(setup(format!("mkdir {}", target.display())))?;
            }
        }
        match &m.kind {
            MountKind::Bind { source, .. } => {
                mnt(
                    Some(source),
                    &target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )?;
                if m.read_only {
                    mnt(
                        None::<&str>,
                        &target,
                        None,
                        MsFlags::MS_BIND
                            | MsFlags::MS_REMOUNT
                            | MsFlags::MS_RDONLY
                            | MsFlags::MS_NOSUID
                            | MsFlags::MS_NODEV,
                        None,
                    )?;
                }
            }
            MountKind::Tmpfs { size_bytes } => {
                let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                if m.read_only {
                    flags |= MsFlags::MS_RDONLY;
                }
                let mut data = String::from("mode=1777");
                if *size_bytes > 0 {
                    data.push_str(&format!(",size={size_bytes}"));
                }
                mnt(
                    Some(Path::new("tmpfs")),
                    &target,
                    Some("tmpfs"),
                    flags,
                    Some(&data),
                )?;
            }
        }
    }
    Ok(())
}
