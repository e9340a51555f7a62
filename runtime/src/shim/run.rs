//! `quilt-shim run`: starts the container and supervises it until it exits.
use super::common::*;
use super::container::{ChildFds, child_main};
use super::logwriter::LogWriter;
use crate::logfile::{self, LineEncoder, Stream};
use crate::signal::Signal;
use crate::spec::{CgroupLayout, ContainerConfig, ExitRecord, StartReport};
use crate::{cgroup, exitfile, proc, sys};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal as NixSignal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, SystemTime};

/// Signals the shim forwards to the container's PID 1.
const FORWARDED: [NixSignal; 5] = [
    NixSignal::SIGTERM,
    NixSignal::SIGINT,
    NixSignal::SIGHUP,
    NixSignal::SIGUSR1,
    NixSignal::SIGUSR2,
];
/// Capacity of the container's output pipes, and the read size. Four times
/// the kernel's default: a writer runs longer between the shim's reads.
/// Not more: each pipe's ring of buffers is unreclaimable kernel memory
/// (4 KiB at this size, 16 KiB at 1 MiB, per pipe, two per container), and
/// a writer can park this much unread output in the kernel.
const PIPE_SIZE: usize = 256 * 1024;
/// After PID 1 exited, give up draining if the pipes stay silent this long.
const DRAIN_IDLE: Duration = Duration::from_secs(2);

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The longest failure message reported, in bytes (the rest is cut at a
/// character boundary): a report stays a short line, whatever a command's
/// name makes of the message (`launch` reads at most 64 KiB of it).
const MAX_MESSAGE: usize = 4096;

/// Prints the report as one JSON line on stdout.
fn report(r: &StartReport) {
    let bounded;
    let r = match r {
        StartReport::Failed { exit_code, message } if message.len() > MAX_MESSAGE => {
            bounded = StartReport::Failed {
                exit_code: *exit_code,
                message: format!("{}...", crate::text::prefix(message, MAX_MESSAGE)),
            };
            &bounded
        }
        r => r,
    };
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    // If the daemon is gone there is no one to tell; carry on regardless.
    let _ = out.write_all(&line);
    let _ = out.flush();
}

fn diag(msg: std::fmt::Arguments<'_>) {
    let _ = writeln!(
        std::io::stderr(),
        "quilt-shim[{}]: {msg}",
        std::process::id()
    );
}

/// `root`: the container's root, made ahead (a detached overlay over its
/// directory's `upper` and `work`: see `crate::layer`), which the fork
/// server hands over with the request; None: its container mounts one.
pub fn run(root: Option<OwnedFd>) -> i32 {
    // Signals to forward are blocked from the start (and read via signalfd),
    // so none is lost before the supervisor loop runs.
    let mut sigs = SigSet::empty();
    for s in FORWARDED {
        sigs.add(s);
    }
    let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&sigs), None);
    // Nothing inherited beyond stdio may leak into the container.
    let _ = sys::cloexec_from(3);

    // One frame, read without buffering: a pooled container's adoption
    // follows on the same stdin.
    let input = match std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|mut f| crate::launch::read_frame(&mut f))
    {
        Ok(Some(input)) => input,
        Ok(None) => Vec::new(),
        Err(e) => {
            report(&StartReport::Failed {
                exit_code: EXIT_SETUP,
                message: format!("reading config: {e}"),
            });
            return 1;
        }
    };
    let cfg: ContainerConfig = match serde_json::from_slice(&input) {
        Ok(c) => c,
        Err(e) => {
            report(&StartReport::Failed {
                exit_code: EXIT_SETUP,
                message: format!("bad config: {e}"),
            });
            return 1;
        }
    };
    drop(input);
    let _ = nix::unistd::setsid();
    // A container in a user namespace has its root idmapped (the shim
    // makes it); a pooled one is adopted with the layer it was prepared on.
    let root = root.filter(|_| cfg.security.idmap.is_none() && !cfg.pooled);

    let mut cgroup_created = false;
    match start(&cfg, root, &sigs, &mut cgroup_created) {
        Ok((running, adopted)) => {
            // Started and reported: what set-up allocated and freed goes
            // back to the kernel before the shim idles beside the
            // container for its whole life.
            crate::sys::release_free_memory();
            supervise(adopted.as_deref().unwrap_or(&cfg), running);
            0
        }
        Err(e) => {
            diag(format_args!("start failed: {}", e.message));
            // An abandoned start's cgroup and directory are its daemon's
            // to remove (see `launch::Gated::abandon`): one that died
            // leaves them to the next, which may be starting the same
            // container in them by the time this shim gets here. Only a
            // gate ends a start so: a gated cold start's, or a gated
            // adoption's (whose `gated` is the adopter's config's, not
            // this pooled `cfg`'s).
            let abandoned = e.code == EXIT_ABANDONED;
            if cgroup_created
                && !abandoned
                && let Err(ce) = cgroup::remove(&cfg.cgroup)
            {
                diag(format_args!("removing cgroup: {ce}"));
            }
            report(&StartReport::Failed {
                exit_code: e.code,
                message: e.message,
            });
            0
        }
    }
}

/// What the supervisor needs once the workload runs.
struct Running {
    child: Pid,
    pidfd: OwnedFd,
    sigfd: SignalFd,
    out_r: OwnedFd,
    err_r: OwnedFd,
    log: LogWriter,
    /// Output is a terminal: every chunk is logged at once, whole line or not.
    tty: bool,
    /// With `-t` or `-i`: the attach socket.
    attach: Option<super::attach::AttachServer>,
    /// The cgroup's OOM-kill count before this run: the cgroup outlives a
    /// run (restarts, execs), so only a rise means this run was OOM-killed.
    oom_before: u64,
}

fn pipe() -> SetupResult<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(setup("pipe2"))
}

/// A connected pair of SOCK_SEQPACKET sockets (close-on-exec).
fn seqpacket_pair() -> SetupResult<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(setup("socketpair"))
}

/// The pair `make` makes when `wanted`, else none.
fn pair_if(
    wanted: bool,
    make: impl FnOnce() -> SetupResult<(OwnedFd, OwnedFd)>,
) -> SetupResult<(Option<OwnedFd>, Option<OwnedFd>)> {
    Ok(match wanted {
        true => {
            let (a, b) = make()?;
            (Some(a), Some(b))
        }
        false => (None, None),
    })
}

/// Starts the workload; for a pooled container, once adopted (the
/// adopting container's config is returned then).
fn start(
    cfg: &ContainerConfig,
    root: Option<OwnedFd>,
    sigs: &SigSet,
    cgroup_created: &mut bool,
) -> SetupResult<(Running, Option<Box<ContainerConfig>>)> {
    std::fs::create_dir_all(&cfg.dir).map_err(setup(format!("creating {}", cfg.dir.display())))?;
    if let Ok(f) = crate::logfile::open_append(&cfg.dir.join(crate::logfile::SHIM_LOG)) {
        let _ = nix::unistd::dup2_stderr(&f);
    }
    for d in ["upper", "work", "rootfs"] {
        let p = cfg.dir.join(d);
        std::fs::create_dir_all(&p).map_err(setup(format!("creating {}", p.display())))?;
    }
    let log_path = cfg.dir.join(logfile::LOG_FILE);
    let log = LogWriter::open(&cfg.dir, cfg.log_max_bytes, cfg.log_max_files)
        .map_err(setup(format!("opening {}", log_path.display())))?;

    let nice = match cfg.pooled {
        true => super::pool::lower_priority(),
        false => None,
    };
    if cfg.argv.is_empty() && !cfg.pooled {
        return Err(SetupError::new(EXIT_SETUP, "no command given"));
    }
    if cfg.pooled && cfg.gated {
        return Err(SetupError::new(
            EXIT_SETUP,
            "a pooled container is not gated",
        ));
    }
    if cfg.pooled && cfg.security.idmap.is_some() {
        return Err(SetupError::new(
            EXIT_SETUP,
            "a pooled container has no user namespace",
        ));
    }
    // Its adopter's limits are written on adoption, where one the adopter
    // does not set must end up unlimited: it is prepared with no memory or
    // CPU limit, and a pids limit at most (`cgroup::adopt` lifts that one).
    let limits = &cfg.cgroup.limits;
    if cfg.pooled && (limits.memory_bytes.is_some() || limits.cpus.is_some()) {
        return Err(SetupError::new(
            EXIT_SETUP,
            "a pooled container is prepared without memory or CPU limits",
        ));
    }

    let rules = cgroup::devices::rules_for(&cfg.security.devices)
        .map_err(setup("the container's devices"))?;
    // On v1 (without a user namespace) PID 1 sets up its mounts while the
    // shim makes its cgroups, and joins them before its root swap: it is
    // born in none, and a write to another process's `tasks` would wait for
    // an RCU grace period (see `cgroup::join_self`). Elsewhere they are
    // made first (on v2 PID 1 is born in its cgroup).
    let concurrent =
        matches!(cfg.cgroup.layout, CgroupLayout::V1 { .. }) && cfg.security.idmap.is_none();
    let mut oom_before = 0;
    if !concurrent {
        oom_before = make_cgroup(cfg, &rules, cgroup_created)?;
    }

    if let Some(map) = &cfg.security.idmap {
        // The container's "/" is its upper directory's: owned by its root.
        let upper = cfg.dir.join("upper");
        std::os::unix::fs::lchown(&upper, Some(map.host_uid), Some(map.host_gid))
            .map_err(setup(format!("chown {}", upper.display())))?;
    }
    // The ceiling of the limits the workload gets (see `set_rlimits`).
    crate::rlimit::raise_hard_limits(&cfg.security.rlimits)
        .map_err(|e| SetupError::new(EXIT_SETUP, e.to_string()))?;

    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (errp_r, errp_w) = pipe()?;
    // The shim hands a user namespace's mounts over on this socket.
    let (userns_ours, userns_child) = pair_if(cfg.security.idmap.is_some(), seqpacket_pair)?;
    // With a terminal, its first process hands the master over on this one.
    let (tty_ours, tty_child) = pair_if(cfg.stdio.tty, seqpacket_pair)?;
    let (stdin_r, stdin_w) = pair_if(cfg.stdio.open_stdin && !cfg.stdio.tty, pipe)?;
    // A pooled PID 1 waits on this one for its adoption.
    let (pool_ours, pool_child) = pair_if(cfg.pooled, super::pool::pair)?;
    // A gated PID 1 waits on the daemon's end of stdin before its execve.
    let gate = match cfg.gated {
        true => Some(
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .map_err(setup("the gate"))?,
        ),
        false => None,
    };
    // PID 1 waits on this one for its cgroups (see `concurrent`), and
    // receives the files it joins them through, opened here.
    let (made_r, made_w) = pair_if(concurrent, seqpacket_pair)?;
    for fd in [&out_r, &err_r] {
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32));
    }

    let mut flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    match &cfg.netns {
        // The daemon's namespace, joined before the clone: the child is
        // born in it (the shim does no networking of its own).
        Some(path) if !cfg.host_network => {
            crate::netns::open(path)
                .and_then(|f| crate::netns::enter(&f))
                .map_err(setup(format!(
                    "joining the network namespace {}",
                    path.display()
                )))?;
        }
        Some(_) => {}
        None if !cfg.host_network => flags |= CloneFlags::CLONE_NEWNET,
        None => {}
    }
    // The daemon's template (without user namespace: that path makes its
    // idmapped trees after the clone, from the namespace it is in). The bind
    // sources are taken along first as detached trees. Either failing
    // leaves the shim where it is: starts copy more mounts, nothing else.
    let trees = match &cfg.mount_ns {
        Some(template) if cfg.security.idmap.is_none() => {
            match super::mounts::detached_trees(&cfg.mounts).and_then(|t| {
                crate::mntns::enter(template)
                    .map(|()| t)
                    .map_err(setup("enter"))
            }) {
                Ok(t) => Some(t),
                Err(e) => {
                    diag(format_args!(
                        "not starting from the mount namespace {}: {}",
                        template.display(),
                        e.message
                    ));
                    None
                }
            }
        }
        _ => None,
    };
    if cfg.security.idmap.is_some() {
        // Created with the others, so that it owns them: its root has the
        // capabilities it keeps over its own network, hostname and mounts.
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    // v2: the child is born in its cgroup (CLONE_INTO_CGROUP). Otherwise, or
    // if the kernel refuses, the child moves itself there: before anything
    // else, or on v1 without a user namespace before its root swap (see
    // `concurrent`).
    let cg_dir = cgroup::open_v2_dir(&cfg.cgroup).map_err(setup("opening cgroup"))?;
    let (res, in_cgroup) = match sys::clone_fork(flags, cg_dir.as_ref().map(|f| f.as_fd())) {
        Err(e) if cg_dir.is_some() => {
            diag(format_args!(
                "clone3 into cgroup failed ({e}); joining after clone"
            ));
            (sys::clone_fork(flags, None), false)
        }
        r => (r, cg_dir.is_some()),
    };
    drop(cg_dir);
    let (child, pidfd) = match res.map_err(setup("clone"))? {
        sys::CloneResult::Child => {
            drop((
                out_r,
                err_r,
                errp_r,
                userns_ours,
                tty_ours,
                stdin_w,
                pool_ours,
                made_w,
            ));
            child_main(
                cfg,
                in_cgroup,
                &ChildFds {
                    errp_w,
                    out_w,
                    err_w,
                    userns: userns_child,
                    tty: tty_child,
                    stdin_r,
                    trees,
                    adopt: pool_child,
                    gate,
                    cgroup_made: made_r,
                    root,
                },
            )
        }
        sys::CloneResult::Parent { pid, pidfd } => (pid, pidfd),
    };
    // Only the child keeps the write ends: EOF on the error pipe then means
    // a successful execve (close-on-exec) or the child's death.
    drop((
        out_w,
        err_w,
        errp_w,
        userns_child,
        tty_child,
        stdin_r,
        trees,
        pool_child,
        made_r,
        root,
        gate,
    ));
    if let Some(made) = made_w {
        let made_and_opened = make_cgroup(cfg, &rules, cgroup_created).and_then(|n| {
            cgroup::open_join_files(&cfg.cgroup)
                .map(|files| (n, files))
                .map_err(setup("opening the cgroups' membership files"))
        });
        match made_and_opened {
            // PID 1 reads the message, or EOF should the send fail (it
            // died).
            Ok((n, files)) => {
                oom_before = n;
                let fds: Vec<_> = files.iter().map(|f| f.as_fd()).collect();
                let _ = super::fdpass::send_fds(&made, b'1', &fds);
            }
            Err(e) => {
                let _ = proc::pidfd_send_signal(&pidfd, Signal::KILL);
                reap(child);
                return Err(e);
            }
        }
    }

    if let (Some(map), Some(sock)) = (&cfg.security.idmap, userns_ours) {
        let prepared = super::userns::write_maps(child.as_raw(), map)
            .and_then(|()| super::userns::open_userns(child.as_raw()))
            .and_then(|ns| {
                super::userns::container_mounts(
                    ns.as_fd(),
                    &cfg.image_rootfs,
                    &cfg.dir,
                    cfg.volatile_rootfs,
                    &cfg.mounts,
                )
            })
            .and_then(|mounts| super::userns::send(&sock, &mounts));
        drop(sock);
        if let Err(e) = prepared {
            let _ = proc::pidfd_send_signal(&pidfd, Signal::KILL);
            reap(child);
            return Err(e);
        }
    }

    // This supervisor's start time (its identity, with its pid), read once:
    // a pooled one reports it when prepared, and again when adopted.
    let shim_pid = std::process::id() as i32;
    let start_time = std::cell::OnceCell::new();
    let shim_start_time = || match start_time.get() {
        Some(t) => *t,
        // Not kept when the read failed: the next report tries again.
        None => proc::start_time(shim_pid).map_or(0, |t| *start_time.get_or_init(|| t)),
    };
    let mut adopted: Option<Box<ContainerConfig>> = None;
    // Without the ready byte PID 1 failed: why is on the error pipe.
    if let Some(sock) = pool_ours.filter(super::pool::wait_ready) {
        // Prepared: both wait at a start's priority, so that the adoption
        // wakes them as promptly as a cold start runs, on a busy host too.
        if let Err(e) = super::pool::restore_priority(nice, child) {
            let _ = proc::pidfd_send_signal(&pidfd, Signal::KILL);
            reap(child);
            return Err(e);
        }
        report(&StartReport::Prepared {
            shim_pid,
            pid: child.as_raw(),
            shim_start_time: shim_start_time(),
        });
        match super::pool::park(&pidfd) {
            super::pool::Parked::Adopt(new, body) if cfg.adoptable_by(&new) => {
                if let Err(e) = super::pool::hand_over(cfg, child, sock, &new, &body) {
                    let _ = proc::pidfd_send_signal(&pidfd, Signal::KILL);
                    reap(child);
                    return Err(e);
                }
                adopted = Some(new);
            }
            super::pool::Parked::Adopt(..) => {
                let why = "the adopting container is not of the pooled shape";
                report(&StartReport::Failed {
                    exit_code: EXIT_SETUP,
                    message: why.into(),
                });
                super::pool::discard(cfg, child, &pidfd, why)
            }
            super::pool::Parked::Discard(why) => super::pool::discard(cfg, child, &pidfd, &why),
        }
    }

    // Read while PID 1 sets up, not between its execve and the report.
    let _ = shim_start_time();
    // EOF without a message: the workload was exec'd.
    let mut msg = Vec::new();
    let _ = File::from(errp_r).read_to_end(&mut msg);
    if !msg.is_empty() {
        reap(child);
        let text = String::from_utf8_lossy(&msg);
        let (code, message) = match text.split_once(':') {
            Some((c, m)) if c.parse::<i32>().is_ok() => {
                (c.parse().unwrap_or(EXIT_SETUP), m.to_string())
            }
            _ => (EXIT_SETUP, text.into_owned()),
        };
        return Err(SetupError::new(code, message));
    }

    let sigfd = SignalFd::with_flags(sigs, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(setup("signalfd"))
        .and_then(|sigfd| {
            let (out_r, attach) = stdio(cfg, out_r, tty_ours, stdin_w)?;
            Ok((sigfd, out_r, attach))
        });
    let (sigfd, out_r, attach) = match sigfd {
        Ok(s) => s,
        Err(e) => {
            let _ = proc::pidfd_send_signal(&pidfd, Signal::KILL);
            reap(child);
            return Err(e);
        }
    };

    report(&StartReport::Started {
        shim_pid,
        pid: child.as_raw(),
        shim_start_time: shim_start_time(),
    });
    // The daemon sees EOF on our stdout; nothing ties us to it any more.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stdin(&null);
    }
    Ok((
        Running {
            child,
            pidfd,
            sigfd,
            out_r,
            err_r,
            log,
            tty: cfg.stdio.tty,
            attach,
            oom_before,
        },
        adopted,
    ))
}

/// Once the workload runs: what its stdout is read from (the terminal's
/// master with `-t`) and, with `-t` or `-i`, the attach socket feeding its
/// input.
fn stdio(
    cfg: &ContainerConfig,
    out_r: OwnedFd,
    tty: Option<OwnedFd>,
    stdin_w: Option<OwnedFd>,
) -> SetupResult<(OwnedFd, Option<super::attach::AttachServer>)> {
    let (out_r, to_workload) = match tty {
        Some(sock) => {
            let master = super::terminal::receive_master(&sock)?;
            let input = master.try_clone().map_err(setup("dup"))?;
            (master, Some(input))
        }
        None => (out_r, stdin_w),
    };
    let attach = match to_workload {
        Some(fd) => Some(
            super::attach::AttachServer::bind(&cfg.dir, fd, cfg.stdio.tty)
                .map_err(setup("listening on the attach socket"))?,
        ),
        None => None,
    };
    Ok((out_r, attach))
}

/// Makes the container's cgroups, its device list included, before
/// anything runs in them; returns the OOM-kill count they start from.
fn make_cgroup(
    cfg: &ContainerConfig,
    rules: &[cgroup::devices::DeviceRule],
    created: &mut bool,
) -> SetupResult<u64> {
    *created = true;
    cgroup::create(&cfg.cgroup).map_err(setup("creating cgroup"))?;
    // The default device nodes and the devices the container was given,
    // nothing else.
    cgroup::restrict_devices(&cfg.cgroup, rules).map_err(setup("restricting devices"))?;
    Ok(cgroup::oom_kills(&cfg.cgroup).unwrap_or(0))
}

/// Blocking waitpid for our own child.
fn reap(child: Pid) -> Option<WaitStatus> {
    loop {
        match waitpid(child, None) {
            Err(Errno::EINTR) => continue,
            Ok(s) => return Some(s),
            Err(_) => return None,
        }
    }
}

/// One output pipe of the container and the encoder of its records.
struct Pipe {
    fd: Option<OwnedFd>,
    enc: LineEncoder,
}

fn supervise(cfg: &ContainerConfig, r: Running) {
    let Running {
        child,
        pidfd,
        sigfd,
        out_r,
        err_r,
        mut log,
        tty,
        mut attach,
        oom_before,
    } = r;
    let mut pipes = [
        Pipe {
            fd: Some(out_r),
            enc: LineEncoder::new(Stream::Stdout),
        },
        Pipe {
            fd: Some(err_r),
            enc: LineEncoder::new(Stream::Stderr),
        },
    ];
    // Filled by the kernel only (never zeroed first): an idle container's
    // shim has none of it resident.
    let mut buf: Vec<u8> = Vec::with_capacity(PIPE_SIZE);
    let mut out: Vec<u8> = Vec::with_capacity(PIPE_SIZE + PIPE_SIZE / 4);
    let mut status: Option<WaitStatus> = None;
    let mut budget = cfg
        .security
        .disk_limit_bytes
        .filter(|&b| b > 0)
        .map(|b| super::disk::DiskBudget::new(b, &cfg.dir));
    let mut killed_because: Option<String> = None;

    loop {
        let open_pipes: Vec<usize> = (0..pipes.len())
            .filter(|&i| pipes[i].fd.is_some())
            .collect();
        if status.is_some() && open_pipes.is_empty() {
            break;
        }
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(4);
        for &i in &open_pipes {
            fds.push(PollFd::new(
                pipes[i].fd.as_ref().expect("open").as_fd(),
                PollFlags::POLLIN,
            ));
        }
        let watch_child = status.is_none();
        if watch_child {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
            fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
        }
        let attach_roles: Vec<super::attach::Role> = match &attach {
            Some(a) if watch_child => a
                .poll_set()
                .into_iter()
                .map(|(role, fd, flags)| {
                    fds.push(PollFd::new(fd, flags));
                    role
                })
                .collect(),
            _ => Vec::new(),
        };
        let timeout = if watch_child {
            match &budget {
                Some(b) if killed_because.is_none() => {
                    PollTimeout::try_from(b.due_in().as_millis().min(60_000) as i32)
                        .unwrap_or(PollTimeout::MAX)
                }
                _ => PollTimeout::NONE,
            }
        } else {
            PollTimeout::try_from(DRAIN_IDLE.as_millis() as i32).unwrap_or(PollTimeout::MAX)
        };
        let n = match poll(&mut fds, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => {
                diag(format_args!("poll: {e}"));
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if watch_child && killed_because.is_none() {
            if let Some(used) = budget.as_mut().and_then(|b| b.check()) {
                let limit = budget.as_ref().map_or(0, |b| b.limit());
                let why = format!(
                    "the container wrote {used} bytes, over its disk budget of {limit} bytes (--storage-opt size): it was stopped"
                );
                diag(format_args!("{why}"));
                let _ = proc::pidfd_send_signal(&pidfd, Signal::KILL);
                killed_because = Some(why);
            }
            if n == 0 {
                continue;
            }
        }
        if n == 0 {
            diag(format_args!(
                "output pipes still open {DRAIN_IDLE:?} after exit; giving up"
            ));
            break;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);

        for (k, &i) in open_pipes.iter().enumerate() {
            if !ready[k] {
                continue;
            }
            let p = &mut pipes[i];
            let fd = p.fd.as_ref().expect("open");
            buf.clear();
            let read = rustix::io::read(fd, rustix::buffer::spare_capacity(&mut buf))
                .map_err(|e| Errno::from_raw(e.raw_os_error()));
            match read {
                Ok(0) => {
                    out.clear();
                    p.enc.eof(now_ns(), &mut out);
                    write_log(&mut log, &out);
                    p.fd = None;
                }
                Ok(_) => {
                    out.clear();
                    let ts = now_ns();
                    p.enc.chunk(&buf, ts, &mut out);
                    if tty {
                        // A prompt has no newline: log it as it comes.
                        p.enc.eof(ts, &mut out);
                    }
                    write_log(&mut log, &out);
                }
                Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
                // EIO: every holder of the terminal's slave side closed it.
                Err(Errno::EIO) if tty => {
                    out.clear();
                    p.enc.eof(now_ns(), &mut out);
                    write_log(&mut log, &out);
                    p.fd = None;
                }
                Err(e) => {
                    diag(format_args!(
                        "reading container {}: {e}",
                        p.enc.stream().as_str()
                    ));
                    p.fd = None;
                }
            }
        }
        if watch_child {
            let base = open_pipes.len();
            if let Some(a) = attach.as_mut() {
                let ready_roles: Vec<super::attach::Role> = attach_roles
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| ready[base + 2 + k])
                    .map(|(_, r)| *r)
                    .collect();
                if !ready_roles.is_empty() {
                    a.on_ready(&ready_roles);
                }
            }
            if ready[base + 1] {
                while let Ok(Some(si)) = sigfd.read_signal() {
                    if let Some(sig) = i32::try_from(si.ssi_signo)
                        .ok()
                        .and_then(Signal::from_number)
                    {
                        let _ = proc::pidfd_send_signal(&pidfd, sig);
                    }
                }
            }
            if ready[base] {
                match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                    Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                        status = Some(s);
                        // Nothing can take input any more: the socket goes.
                        attach = None;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        diag(format_args!("waitpid {child}: {e}"));
                        status = Some(WaitStatus::Exited(child, EXIT_SETUP));
                    }
                }
            }
        }
    }

    let (exit_code, signal) = match status {
        Some(WaitStatus::Exited(_, code)) => (code, 0),
        Some(WaitStatus::Signaled(_, sig, _)) => (128 + sig as i32, sig as i32),
        _ => (EXIT_SETUP, 0),
    };
    let oom_killed = match cgroup::oom_kills(&cfg.cgroup) {
        Ok(n) => n > oom_before,
        Err(e) => {
            diag(format_args!("reading OOM kills: {e}"));
            false
        }
    };
    let rec = ExitRecord {
        exit_code,
        signal,
        oom_killed,
        finished_at_ns: now_ns(),
        killed_because,
    };
    if let Err(e) = exitfile::write(&cfg.dir, &rec) {
        diag(format_args!("writing exit.json: {e}"));
    }
}

fn write_log(log: &mut LogWriter, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    // Never block the container on a failing disk: log and drop.
    if let Err(e) = log.write(data) {
        diag(format_args!("writing container.log: {e}"));
    }
}
