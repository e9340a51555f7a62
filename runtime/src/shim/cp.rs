//! `quilt-shim cp-out|cp-in CONFIG`: tar streams out of and into a
//! container. The helper first enters the container's root (see
//! `crate::copy`), so paths, `..` and symlinks resolve inside it only.
use super::common::*;
use super::userns;
use crate::copy::{CP_EXIT_INVALID, CP_EXIT_NOT_FOUND, CopyConfig, CopyMode, CopyRoot};
use crate::spec::IdMap;
use crate::sys;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use std::io::{BufWriter, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

fn fail(e: SetupError) -> i32 {
    let _ = writeln!(std::io::stderr(), "{}", e.message);
    e.code
}

pub fn cp(mode: CopyMode) -> i32 {
    let Some(arg) = std::env::args().nth(2) else {
        return fail(SetupError::new(
            EXIT_SETUP,
            "usage: quilt-shim cp-in|cp-out CONFIG",
        ));
    };
    let cfg: CopyConfig = match serde_json::from_str(&arg) {
        Ok(c) => c,
        Err(e) => return fail(SetupError::new(EXIT_SETUP, format!("bad copy config: {e}"))),
    };
    let res = enter_root(&cfg.root, cfg.idmap.as_ref()).and_then(|()| match mode {
        CopyMode::Out if cfg.export => export_root(),
        CopyMode::Out => copy_out(&cfg.path),
        CopyMode::In => copy_in(&cfg.path),
    });
    match res {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

fn enter_root(root: &CopyRoot, idmap: Option<&IdMap>) -> SetupResult<()> {
    let _ = sys::cloexec_from(3);
    sys::ensure_single_threaded().map_err(setup("copy helper"))?;
    match root {
        CopyRoot::Running { pid, shim_pid } => {
            // Through the user namespace first, if there is one: its mount
            // namespace is joined with its capabilities.
            let kinds: Vec<(&str, CloneFlags)> = idmap
                .map(|_| ("user", CloneFlags::CLONE_NEWUSER))
                .into_iter()
                .chain([("mnt", CloneFlags::CLONE_NEWNS)])
                .collect();
            let names: Vec<&str> = kinds.iter().map(|(n, _)| *n).collect();
            let fds = open_container_namespaces(*pid, Some(*shim_pid), &names)?;
            for ((name, flag), f) in kinds.iter().zip(&fds) {
                setns(f, *flag).map_err(setup(format!("setns {name}")))?;
            }
        }
        CopyRoot::Stopped { dir, image_rootfs } => {
            unshare(CloneFlags::CLONE_NEWNS).map_err(setup("unshare mnt"))?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(setup("make / private"))?;
            for d in ["upper", "work", "rootfs"] {
                std::fs::create_dir_all(dir.join(d))
                    .map_err(setup(format!("create {}", dir.join(d).display())))?;
            }
            let rootfs = dir.join("rootfs");
            // The layer of a `--rm` container that has exited (and is
            // about to go) was mounted volatile: mountable again once
            // its mark is gone.
            clear_volatile_mark(dir)?;
            match idmap {
                Some(map) => {
                    // The mounts the container gets when it runs, in a user
                    // namespace of the same mapping.
                    let upper = dir.join("upper");
                    std::os::unix::fs::lchown(&upper, Some(map.host_uid), Some(map.host_gid))
                        .map_err(setup(format!("chown {}", upper.display())))?;
                    let ns = userns::with_map(map)?;
                    let mounts =
                        userns::container_mounts(ns.as_fd(), image_rootfs, dir, false, &[])?;
                    rustix::mount::move_mount(
                        &mounts[0],
                        "",
                        rustix::fs::CWD,
                        &rootfs,
                        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
                    )
                    .map_err(|e| setup("mount the container's rootfs")(std::io::Error::from(e)))?;
                    setns(&ns, CloneFlags::CLONE_NEWUSER).map_err(setup("setns user"))?;
                }
                None => {
                    let opts = overlay_options(image_rootfs, dir, false);
                    mount(
                        Some("overlay"),
                        &rootfs,
                        Some("overlay"),
                        MsFlags::empty(),
                        Some(opts.as_str()),
                    )
                    .map_err(setup("mount the container's rootfs"))?;
                }
            }
            nix::unistd::chroot(&rootfs).map_err(setup("chroot"))?;
        }
    }
    nix::unistd::chdir("/").map_err(setup("chdir /"))?;
    if idmap.is_some() {
        // What is copied in belongs to the container's root.
        userns::become_root()?;
    }
    Ok(())
}

fn not_found(path: &str) -> impl FnOnce(std::io::Error) -> SetupError {
    move |e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SetupError::new(
                CP_EXIT_NOT_FOUND,
                format!("{path}: no such file or directory in the container"),
            )
        } else {
            SetupError::new(EXIT_SETUP, format!("{path}: {e}"))
        }
    }
}

/// Writes a tar stream of `path` (named by its last component) on stdout.
fn copy_out(path: &str) -> SetupResult<()> {
    // Inside the container's root: symlinks resolve within it.
    let real: PathBuf = std::fs::canonicalize(path).map_err(not_found(path))?;
    let name = Path::new(path)
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let meta = std::fs::metadata(&real).map_err(not_found(path))?;
    let out = BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let io =
        |e: std::io::Error| SetupError::new(EXIT_SETUP, format!("writing the tar stream: {e}"));
    if meta.is_dir() {
        b.append_dir_all(&name, &real).map_err(io)?;
    } else if meta.is_file() {
        let mut f = std::fs::File::open(&real).map_err(not_found(path))?;
        b.append_file(&name, &mut f).map_err(io)?;
    } else {
        // FIFOs, sockets and devices: a header only (never opened, so a FIFO
        // cannot block the copy).
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let ft = meta.file_type();
        let kind = if ft.is_fifo() {
            tar::EntryType::Fifo
        } else if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            return Err(SetupError::new(
                CP_EXIT_INVALID,
                format!("{path}: sockets cannot be copied"),
            ));
        };
        let mut h = tar::Header::new_gnu();
        h.set_metadata(&meta);
        h.set_entry_type(kind);
        h.set_size(0);
        let rdev = meta.rdev();
        let _ = h.set_device_major(nix::sys::stat::major(rdev) as u32);
        let _ = h.set_device_minor(nix::sys::stat::minor(rdev) as u32);
        b.append_data(&mut h, &name, std::io::empty()).map_err(io)?;
    }
    let mut out = b.into_inner().map_err(io)?;
    out.flush().map_err(io)
}

/// Writes the container's root filesystem on stdout: entries named from
/// "/", what other filesystems (proc, sys, dev, volumes, bind mounts) hold
/// left out, their mount points kept.
fn export_root() -> SetupResult<()> {
    let out = BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
    let io =
        |e: std::io::Error| SetupError::new(EXIT_SETUP, format!("writing the tar stream: {e}"));
    let mut out = crate::image::archive::tar_tree(Path::new("/"), true, out).map_err(io)?;
    out.flush().map_err(io)
}

/// Extracts the tar stream on stdin into the directory `path`.
fn copy_in(path: &str) -> SetupResult<()> {
    let real: PathBuf = std::fs::canonicalize(path).map_err(not_found(path))?;
    if !real.is_dir() {
        return Err(SetupError::new(
            CP_EXIT_INVALID,
            format!("{path}: not a directory in the container"),
        ));
    }
    let mut a = tar::Archive::new(std::io::BufReader::with_capacity(
        256 * 1024,
        std::io::stdin().lock(),
    ));
    a.set_preserve_permissions(true);
    a.set_overwrite(true);
    a.set_unpack_xattrs(false);
    // The tar crate refuses entries with `..` and never writes through a
    // symlink outside `real`; the chroot/namespace bounds everything else.
    a.unpack(&real)
        .map_err(|e| SetupError::new(CP_EXIT_INVALID, format!("extracting into {path}: {e}")))?;
    // Drain what follows the end of the archive, so the sender is not cut off.
    let _ = std::io::copy(&mut a.into_inner(), &mut std::io::sink());
    Ok(())
}
