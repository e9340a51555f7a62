//! The container's PID 1 before it becomes the workload: cgroup and its
//! namespace (on v1 without a user namespace after the mounts, the shim
//! making the cgroups meanwhile), session keyring, mounts, devices, the
//! root swap, masking, hostname, loopback, privileges, then execve.
use super::common::*;
use crate::spec::{CgroupLayout, ContainerConfig};
use crate::sys;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The descriptors the container's PID 1 keeps.
pub struct ChildFds {
    /// Write end of the error pipe (close-on-exec: a successful execve closes it).
    pub errp_w: OwnedFd,
    /// Write ends of the container's stdout and stderr pipes.
    pub out_w: OwnedFd,
    pub err_w: OwnedFd,
    /// With a user namespace: the container's end of the socket on which
    /// the shim hands over the mounts only it can make (see `userns`).
    pub userns: Option<OwnedFd>,
    /// With a terminal: the socket on which the terminal's master side
    /// goes to the shim (see `terminal`).
    pub tty: Option<OwnedFd>,
    /// With an open stdin and no terminal: the read end of the stdin pipe.
    pub stdin_r: Option<OwnedFd>,
    /// Started from the daemon's mount namespace template: the bind mounts,
    /// as detached trees the shim took in its own namespace.
    pub trees: Option<Vec<OwnedFd>>,
    /// A warm pool's container: the socket on which the adopting
    /// container's config comes (see `pool`).
    pub adopt: Option<OwnedFd>,
    /// v1 without a user namespace: the read end of the pipe on which the
    /// shim says it has made the container's cgroups. PID 1 sets up its
    /// mounts meanwhile and joins them before its root swap; without it,
    /// it joins them first thing (or was born in them, on v2).
    pub cgroup_made: Option<OwnedFd>,
    /// Its root, made ahead (see `crate::layer`): attached instead of an
    /// overlay mounted here.
    pub root: Option<OwnedFd>,
    /// A gated start (see `ContainerConfig::gated`): the daemon's end of
    /// the shim's stdin, read before the execve.
    pub gate: Option<OwnedFd>,
}

/// Runs in the cloned child; never returns. `in_cgroup`: already born in the
/// container's cgroup (clone3 CLONE_INTO_CGROUP).
pub fn child_main(cfg: &ContainerConfig, in_cgroup: bool, fds: &ChildFds) -> ! {
    let err = match setup_and_exec(cfg, in_cgroup, fds) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    report_and_exit(&fds.errp_w, err)
}

/// mkdir that tolerates an existing directory.
fn mkdir(p: &Path, mode: u32) -> SetupResult<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(mode).create(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(setup(format!("mkdir {}", p.display()))(e)),
    }
}

/// Mounts the container's root on `at`: an overlay of its image over its
/// directory's `upper` and `work`.
fn mount_root(cfg: &ContainerConfig, at: &Path) -> SetupResult<()> {
    if cfg.volatile_rootfs {
        clear_volatile_mark(&cfg.dir)?;
    }
    let mount = |volatile| {
        let opts = overlay_options(&cfg.image_rootfs, &cfg.dir, volatile);
        mnt(
            Some("overlay"),
            at,
            Some("overlay"),
            MsFlags::empty(),
            Some(&opts),
        )
    };
    // A kernel before 5.10 knows no `volatile`: synced, as others.
    if !cfg.volatile_rootfs || mount(true).is_err() {
        mount(false)?;
    }
    Ok(())
}

/// Attaches the container's root, a detached overlay (made ahead, or by
/// the shim for a user namespace), on `at`.
fn attach_root(root: &OwnedFd, at: &Path) -> SetupResult<()> {
    rustix::mount::move_mount(
        root,
        "",
        rustix::fs::CWD,
        at,
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| setup(format!("attaching the root on {}", at.display()))(std::io::Error::from(e)))
}

fn setup_and_exec(
    cfg: &ContainerConfig,
    in_cgroup: bool,
    fds: &ChildFds,
) -> SetupResult<std::convert::Infallible> {
    // A damaged filter fails the setup before anything is done.
    let seccomp = seccomp_program(cfg.security.seccomp.as_ref())?;
    // First of all, be in the container's cgroup (limits apply from here
    // on), unless the shim is making it (then before the root swap).
    if fds.cgroup_made.is_none() {
        enter_cgroup(cfg, in_cgroup)?;
    }
    // Never the host's session keyring (or root's shared default one).
    session_keyring(cfg.security.seccomp.as_ref())?;
    // If the shim dies, so does the container: nobody else would collect its
    // output or exit status.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // A session of its own: `kill -9 0` from the workload reaches only the
    // container's processes, never its supervisor.
    nix::unistd::setsid().map_err(setup("setsid"))?;
    // Until execve this process is the host's quilt-shim binary: not
    // dumpable, so nothing in the container can open /proc/PID/exe or
    // /proc/PID/mem of it (with --init, PID 1 stays so for its life).
    nix::sys::prctl::set_dumpable(false).map_err(setup("PR_SET_DUMPABLE"))?;
    // In a user namespace nothing can be set up before the shim has written
    // its id maps and made the mounts only it can make.
    let received = match &fds.userns {
        Some(sock) => {
            let binds = cfg
                .mounts
                .iter()
                .filter(|m| matches!(m.kind, crate::mounts::MountKind::Bind { .. }))
                .count();
            Some(super::userns::receive(sock, binds + 1)?)
        }
        None => None,
    };
    umask(Mode::empty());
    // This process's own mount namespace, for the root swap: opened now,
    // through the host's /proc, before anything of the image is mounted or
    // followed (a path through the image could lead anywhere, another
    // namespace included).
    let own_ns = match fds.userns {
        None => std::fs::File::open("/proc/thread-self/ns/mnt").ok(),
        Some(_) => None,
    };

    // Our mounts must not propagate back to the host.
    mnt(
        None::<&str>,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;

    let host_rootfs = cfg.dir.join("rootfs");
    let (rootfs, trees) = match received {
        Some(received) => {
            let mut received = received.into_iter();
            let root = received
                .next()
                .ok_or_else(|| SetupError::new(EXIT_SETUP, "the shim sent no root"))?;
            attach_root(&root, &host_rootfs)?;
            nix::unistd::chdir(&host_rootfs)
                .map_err(setup(format!("chdir {}", host_rootfs.display())))?;
            // The namespace's root from here on, so that what is created in
            // the container is its root's: paths are relative to the
            // container's root, as the host's directories above it are not
            // for us any more.
            super::userns::become_root()?;
            rearm_parent_death(fds.errp_w.as_fd())?;
            (PathBuf::from("."), Some(received))
        }
        None => {
            match &fds.root {
                Some(root) => attach_root(root, &host_rootfs)?,
                None => mount_root(cfg, &host_rootfs)?,
            }
            let trees = match &fds.trees {
                Some(t) => Some(
                    t.iter()
                        .map(|f| f.try_clone().map_err(setup("dup")))
                        .collect::<SetupResult<Vec<OwnedFd>>>()?
                        .into_iter(),
                ),
                None => None,
            };
            (host_rootfs, trees)
        }
    };

    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;

    mount_at(
        &rootfs.join("proc"),
        0o555,
        "proc",
        "proc",
        nosuid_nodev_noexec,
        None,
    )?;

    let sys_dir = rootfs.join("sys");
    mount_dir(&sys_dir, 0o555, "sysfs")?;
    let ro = MsFlags::MS_RDONLY | nosuid_nodev_noexec;
    if bind_shared_sysfs(cfg, &sys_dir, nosuid_nodev_noexec)? {
        // The daemon's shared one (a container without a network of its own).
    } else if mount(Some("sysfs"), &sys_dir, Some("sysfs"), ro, None::<&str>).is_err() {
        // Fall back to a read-only bind of the host's /sys.
        bind_read_only(Path::new("/sys"), &sys_dir, nosuid_nodev_noexec)?;
    }
    if let CgroupLayout::V2 { .. } = cfg.cgroup.layout {
        // Mounted from inside the cgroup namespace: shows the container's
        // own cgroup as the root.
        mount_at(
            &sys_dir.join("fs/cgroup"),
            0o555,
            "cgroup",
            "cgroup2",
            ro,
            None,
        )?;
    }

    setup_dev(&rootfs.join("dev"))?;
    super::devices::add_nodes(&rootfs, &cfg.security.devices)?;
    if let Some(gpu) = &cfg.security.gpu {
        super::gpu::mount_driver(&rootfs, gpu)?;
    }

    super::mounts::setup_mounts(&rootfs, &cfg.mounts, trees)?;
    if cfg.security.read_only_rootfs {
        writable_dirs(&rootfs, &cfg.mounts)?;
    }

    if let Some(made) = &fds.cgroup_made {
        let files = await_cgroup(made)?;
        crate::cgroup::join_through(&files).map_err(setup("joining cgroup"))?;
        drop(files);
        unshare_cgroup_ns()?;
    }

    nix::unistd::chdir(&rootfs).map_err(setup(format!("chdir {}", rootfs.display())))?;
    if !swap_root(own_ns)? {
        // pivot_root into the overlay and detach the old root.
        nix::unistd::pivot_root(".", ".").map_err(setup("pivot_root"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(setup("detaching the old root"))?;
    }
    nix::unistd::chdir("/").map_err(setup("chdir /"))?;

    mask_paths()?;

    // A pooled container waits here; what follows is the adopting
    // container's (of the same shape: checked by the shim).
    let adopted;
    // A gated adoption's gate (see `pool`), given with its config.
    let mut adopted_gate = None;
    // Whether the bounding set is already the workload's.
    let mut bounded = false;
    let cfg = match &fds.adopt {
        Some(sock) => {
            // Its signal dispositions go back to the defaults while it
            // waits (63 calls off the adoption's path), with every signal
            // blocked until just before execve: none is acted on in
            // between (a write to a shim that went fails with EPIPE).
            block_signals();
            sys::reset_signal_dispositions();
            // Its adopter's capabilities are these (part of the shape): the
            // bounding set is reduced while it waits.
            limit_bounding_set(cfg.security.capabilities.as_deref())?;
            (adopted, adopted_gate) = super::pool::await_adoption(sock)?;
            // The shim checked the shape, capabilities included; should it
            // ever not, the set is reduced again (it only shrinks).
            bounded = adopted.security.capabilities == cfg.security.capabilities;
            // An adopter with limits of its own may have been moved into a
            // cgroup of its own (v1: a memory cgroup for its limit; the
            // shim sets limits only when they differ, see
            // `pool::hand_over`), below the root of the namespace made at
            // preparation: root it there again.
            if adopted.cgroup.limits != cfg.cgroup.limits {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                    .map_err(setup("unshare cgroup namespace"))?;
            }
            &adopted
        }
        None => cfg,
    };

    nix::unistd::sethostname(&cfg.hostname)
        .map_err(setup(format!("sethostname {:?}", cfg.hostname)))?;
    if !cfg.host_network && cfg.netns.is_none() {
        sys::interface_up("lo").map_err(setup("bringing up lo"))?;
    }

    let workdir = Path::new("/").join(&cfg.workdir);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&workdir)
            .map_err(setup(format!("creating workdir {}", workdir.display())))?;
    }
    nix::unistd::chdir(&workdir).map_err(setup(format!("chdir {}", workdir.display())))?;
    if cfg.security.read_only_rootfs {
        // The root mount only: /dev, /proc, the tmpfs mounts and the
        // volumes keep their own flags.
        sys::mount_setattr_path(Path::new("/"), sys::MOUNT_ATTR_RDONLY, false)
            .map_err(setup("making the root file system read-only"))?;
    }
    umask(Mode::from_bits_truncate(0o022));

    // The user, from the container's own files (inside its root now).
    let who = super::user::resolve(cfg.security.user.as_deref(), cfg.security.idmap.as_ref())?;
    let mut env = cfg.env.clone();
    super::user::set_home(&mut env, &who);

    let argv0 = cfg.argv.first().map(String::as_str).unwrap_or("");
    let path = resolve(argv0, &env)?;
    let argv = cstrings(&cfg.argv)?;
    let env = cstrings(&super::gpu::workload_env(&env, cfg.security.gpu.as_ref()))?;

    set_rlimits(&cfg.security.rlimits)?;
    drop_privileges(cfg.security.capabilities.as_deref(), &who, bounded)?;
    rearm_parent_death(fds.errp_w.as_fd())?;

    wire_stdio(cfg, fds)?;
    if let Some(gate) = fds.gate.as_ref().or(adopted_gate.as_ref()) {
        await_gate(gate)?;
    }
    if cfg.init {
        // PID 1 is filtered too: the workload it forks inherits its filter.
        install_seccomp(&seccomp)?;
        return Err(super::init::run_under_init(
            &path,
            &argv,
            &env,
            argv0,
            &fds.errp_w,
        ));
    }
    match fds.adopt {
        Some(_) => unblock_signals(),
        None => reset_signals(),
    }
    // The very last step: from here on only execve is made.
    install_seccomp(&seccomp)?;
    Err(execve(&path, &argv, &env, argv0))
}

/// Waits at a gated start's gate: one byte lets the workload go; the end
/// of the pipe (the daemon closed it, or died) abandons the start.
fn await_gate(gate: &OwnedFd) -> SetupResult<()> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(gate, &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                return Err(SetupError::new(
                    EXIT_ABANDONED,
                    "abandoned: the daemon did not record the container",
                ));
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(setup("waiting at the gate")(e)),
        }
    }
}

/// Joins the container's cgroup (unless born in it), then makes a cgroup
/// namespace rooted there: the container sees its own cgroup as "/" (and,
/// on v2, its own limits in /sys/fs/cgroup).
fn enter_cgroup(cfg: &ContainerConfig, in_cgroup: bool) -> SetupResult<()> {
    if !in_cgroup {
        crate::cgroup::join_self(&cfg.cgroup).map_err(setup("joining cgroup"))?;
    }
    unshare_cgroup_ns()
}

fn unshare_cgroup_ns() -> SetupResult<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .map_err(setup("unshare cgroup namespace"))
}

/// Waits for the shim's message saying the container's cgroups are made,
/// with their membership files (opened by the shim meanwhile: no path walk
/// here, on the start's path). EOF means they are not: the shim failed (it
/// kills this process then) or died.
fn await_cgroup(made: &OwnedFd) -> SetupResult<Vec<OwnedFd>> {
    match super::fdpass::receive(made, true) {
        Ok(Some((b'1', files))) => Ok(files),
        Ok(_) => Err(SetupError::new(EXIT_SETUP, "the shim made no cgroup")),
        Err(e) => Err(setup("waiting for the cgroup")(e)),
    }
}

/// The workload's stdin, stdout and stderr: a new terminal of the
/// container's devpts (its master handed to the shim), or the output pipes
/// with the stdin pipe or /dev/null.
fn wire_stdio(cfg: &ContainerConfig, fds: &ChildFds) -> SetupResult<()> {
    if let Some(sock) = &fds.tty {
        let slave = super::terminal::open_controlling(sock)?;
        nix::unistd::dup2_stdin(&slave).map_err(setup("dup2 stdin"))?;
        nix::unistd::dup2_stdout(&slave).map_err(setup("dup2 stdout"))?;
        nix::unistd::dup2_stderr(&slave).map_err(setup("dup2 stderr"))?;
        return Ok(());
    }
    match &fds.stdin_r {
        Some(r) if cfg.stdio.open_stdin => {
            nix::unistd::dup2_stdin(r).map_err(setup("dup2 stdin"))?;
        }
        _ => {
            let devnull = std::fs::File::open("/dev/null").map_err(setup("open /dev/null"))?;
            nix::unistd::dup2_stdin(&devnull).map_err(setup("dup2 stdin"))?;
        }
    }
    nix::unistd::dup2_stdout(&fds.out_w).map_err(setup("dup2 stdout"))?;
    nix::unistd::dup2_stderr(&fds.err_w).map_err(setup("dup2 stderr"))?;
    Ok(())
}

/// With a read-only root: a tmpfs on /tmp, /var/tmp and /run (podman's
/// --read-only-tmpfs), unless a mount of the container is on one of them
/// or above it.
fn writable_dirs(rootfs: &Path, mounts: &[crate::mounts::MountConfig]) -> SetupResult<()> {
    for (dir, mode) in [("/tmp", 0o1777), ("/var/tmp", 0o1777), ("/run", 0o755)] {
        let covered = mounts.iter().any(|m| {
            let t = m.target.trim_end_matches('/');
            dir == t
                || dir
                    .strip_prefix(t)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        if covered {
            continue;
        }
        // Resolved from the rootfs's descriptor (symlinks such as /var/run
        // -> /run followed inside it only), made when missing, and the tmpfs
        // mounted onto the very directory opened.
        let root = super::mounts::open_root(rootfs)?;
        let target = super::mounts::open_target(&root, dir, false)?;
        let onto = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&target));
        mnt(
            Some("tmpfs"),
            Path::new(&onto),
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(&format!("mode={mode:o}")),
        )?;
    }
    Ok(())
}

/// Makes the directory `dir` (mode `mode`) and mounts a new `fstype`
/// filesystem named `source` on it.
fn mount_at(
    dir: &Path,
    mode: u32,
    source: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> SetupResult<()> {
    mount_dir(dir, mode, fstype)?;
    mnt(Some(source), dir, Some(fstype), flags, data)
}

/// Readies `dir`, where the image may have something, for a mount of
/// `what` (proc, sysfs, /dev's tmpfs): created when missing, refused when
/// it is not a directory. A symlink there would be followed (before the
/// container's root is its root) to wherever the image points it, the mount
/// would land outside what the container later sees as /proc or /sys, and
/// the masking of their sensitive files, which skips paths it does not
/// find, would find nothing to mask.
fn mount_dir(dir: &Path, mode: u32, what: &str) -> SetupResult<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(SetupError::new(
            EXIT_SETUP,
            format!(
                "refusing to mount {what} on {}: the image has a symlink or a file there, not a directory",
                dir.display()
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => mkdir(dir, mode),
        Err(e) => Err(setup(format!("lstat {}", dir.display()))(e)),
    }
}

/// The magic number of a sysfs (`statfs`'s f_type).
const SYSFS_MAGIC: u64 = 0x6265_6572;

/// Binds the daemon's shared sysfs (read-only, of a network namespace with
/// only loopback; see `crate::mntns::Template::sysfs`) on `sys_dir`, for a
/// container that sees no network device but its loopback anyway (the
/// daemon gives the path only to those: `--network none` without
/// CAP_NET_ADMIN), neither the host's network nor a user namespace. A bind
/// is one mount copied; a new sysfs makes the kernel search every sysfs
/// superblock on the host. False (nothing done): mount one instead.
fn bind_shared_sysfs(cfg: &ContainerConfig, sys_dir: &Path, flags: MsFlags) -> SetupResult<bool> {
    let Some(src) = &cfg.shared_sysfs else {
        return Ok(false);
    };
    if cfg.host_network || cfg.security.idmap.is_some() {
        return Ok(false);
    }
    let Some(tree) = shared_sysfs_tree(src) else {
        return Ok(false);
    };
    // Not attached: nothing was done, mount one instead.
    if rustix::mount::move_mount(
        &tree,
        "",
        rustix::fs::CWD,
        sys_dir,
        rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .is_err()
    {
        return Ok(false);
    }
    remount_read_only(sys_dir, flags)?;
    Ok(true)
}

/// A detached copy of the mount at `src`, resolved once: only the root of a
/// sysfs mount, never whatever else the path names (None then).
fn shared_sysfs_tree(src: &Path) -> Option<OwnedFd> {
    use rustix::fs::{AtFlags, Mode, OFlags, StatxAttributes, StatxFlags};
    let dir = rustix::fs::open(
        src,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    if rustix::fs::fstatfs(&dir).ok()?.f_type as u64 != SYSFS_MAGIC {
        return None;
    }
    let st = rustix::fs::statx(&dir, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS).ok()?;
    let root = StatxAttributes::MOUNT_ROOT;
    if !st.stx_attributes_mask.contains(root) || !st.stx_attributes.contains(root) {
        return None;
    }
    rustix::mount::open_tree(
        &dir,
        "",
        rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
            | rustix::mount::OpenTreeFlags::AT_EMPTY_PATH,
    )
    .ok()
}

/// A fresh /dev: tmpfs with the usual nodes, devpts, shm and symlinks.
fn setup_dev(dev: &Path) -> SetupResult<()> {
    mount_at(
        dev,
        0o755,
        "tmpfs",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let p = dev.join(name);
        let mode = Mode::from_bits_truncate(0o666);
        match mknod(&p, SFlag::S_IFCHR, mode, makedev(major, minor)) {
            Ok(()) => {}
            // Not allowed to create device nodes (e.g. nested in another
            // container): bind the host's node instead.
            Err(Errno::EPERM) => {
                std::fs::File::create(&p).map_err(setup(format!("create {}", p.display())))?;
                let host = PathBuf::from("/dev").join(name);
                mnt(
                    Some(host.to_str().unwrap_or("/dev/null")),
                    &p,
                    None,
                    MsFlags::MS_BIND,
                    None,
                )?;
            }
            Err(e) => return Err(setup(format!("mknod {}", p.display()))(e)),
        }
    }
    mount_at(
        &dev.join("pts"),
        0o755,
        "devpts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    mount_at(
        &dev.join("shm"),
        0o1777,
        "shm",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        let p = dev.join(link);
        symlink(target, &p).map_err(setup(format!("symlink {}", p.display())))?;
    }
    Ok(())
}

/// Makes the prepared root (the working directory, with everything mounted
/// below it) the root of the namespace, as pivot_root(".", ".") and the
/// detach of the old root would: without pivot_root, whose search of every
/// task on the host for one rooted in the old root made each start cost more
/// with each live container (about 3 ms with 5,000 on 2 cores).
///
/// The namespace's own root mount is the kernel's initial root file system
/// (a copy of it), with the host's root mounted on it. The prepared tree is
/// cloned, the host's root (everything of the host's, the prepared original
/// with it) is detached, and the clone is attached where the host's root
/// was, on that initial mount: the tree pivot_root leaves, and no mount of
/// the host's left in the namespace to be reached or to keep the host's
/// file systems busy. A `..` from the root stays in it, as after pivot_root.
///
/// `ns` is this process's own mount namespace, opened before anything of
/// the image was touched; None for a container in a user namespace, whose
/// copied mounts are locked (pivot_root hands their lock over). False, with
/// nothing changed, when there is none or the tree cannot be cloned (an
/// older kernel, a seccomp filter or LSM around the daemon): the caller
/// pivots then. A namespace whose root mount is the host's root fails here
/// as pivot_root fails there.
fn swap_root(ns: Option<std::fs::File>) -> SetupResult<bool> {
    use rustix::mount::{MoveMountFlags, OpenTreeFlags};
    let Some(ns) = ns else {
        return Ok(false);
    };
    let Ok(tree) = rustix::mount::open_tree(
        rustix::fs::CWD,
        ".",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    ) else {
        return Ok(false);
    };
    match umount2("/", MntFlags::MNT_DETACH) {
        Ok(()) => {}
        // Locked mounts: nothing was done.
        Err(Errno::EINVAL | Errno::EPERM) => return Ok(false),
        Err(e) => return Err(setup("detaching the host's root")(std::io::Error::from(e))),
    }
    // From here on there is no way back: the host's root is gone.
    // Joining the namespace again roots this process at its root mount.
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(setup("entering the mount namespace again"))?;
    drop(ns);
    // Nothing attached on it may propagate anywhere.
    mnt(
        None::<&str>,
        Path::new("/"),
        None,
        MsFlags::MS_PRIVATE,
        None,
    )?;
    rustix::mount::move_mount(
        &tree,
        "",
        rustix::fs::CWD,
        "/",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| setup("attaching the root")(std::io::Error::from(e)))?;
    nix::unistd::fchdir(&tree).map_err(setup("fchdir to the root"))?;
    nix::unistd::chroot(".").map_err(setup("chroot"))?;
    Ok(true)
}

/// Hides or write-protects what docker does (once the root is switched): files
/// under a bind of /dev/null, directories under an empty read-only tmpfs
/// (one for them all: the first directory gets it, the others read-only
/// binds of it, so a container has one more superblock, not one per
/// directory), and read-only binds of the rest. Paths the kernel does not
/// have are skipped, as are directories to hide that are not directories:
/// the mount says so (ENOENT, ENOTDIR), with no stat of each path first.
fn mask_paths() -> SetupResult<()> {
    for p in [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/sched_debug",
        "/proc/latency_stats",
        "/proc/timer_stats",
    ] {
        mount_unless(
            &[Errno::ENOENT],
            Some("/dev/null"),
            p,
            None,
            MsFlags::MS_BIND,
        )?;
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mut empty: Option<&str> = None;
    for p in [
        "/proc/acpi",
        "/proc/asound",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ] {
        let skip = [Errno::ENOENT, Errno::ENOTDIR];
        let mounted = match empty {
            Some(first) => mount_unless(
                &skip,
                Some(first),
                p,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
            )?,
            None => mount_unless(
                &skip,
                Some("tmpfs"),
                p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | flags,
            )?,
        };
        match (mounted, empty) {
            (false, _) => {}
            (true, Some(_)) => remount_read_only(Path::new(p), flags)?,
            (true, None) => empty = Some(p),
        }
    }
    for p in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        if mount_unless(
            &[Errno::ENOENT],
            Some(p),
            p,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
        )? {
            remount_read_only(Path::new(p), flags)?;
        }
    }
    Ok(())
}

/// mount(2) of `src` on `target`: Ok(false) when it fails with one of
/// `skip` (the target is not there, or not of the kind the mount needs).
fn mount_unless(
    skip: &[Errno],
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
) -> SetupResult<bool> {
    match mount(src, target, fstype, flags, None::<&str>) {
        Ok(()) => Ok(true),
        Err(e) if skip.contains(&e) => Ok(false),
        Err(e) => Err(setup(format!(
            "mount {} on {target}",
            fstype.or(src).unwrap_or("-")
        ))(e)),
    }
}
