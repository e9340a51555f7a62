//! `quilt-shim exec`: runs a command inside a running container (for the
//! daemon's Exec RPC) and relays its standard streams.
//!
//! Protocol: see [`crate::execproto`]. The helper reads a CONFIG frame on
//! its stdin, joins the container's cgroup and namespaces, forks the command
//! (on a new pseudo-terminal of the container's devpts with `tty`, otherwise
//! on pipes), reports its PID, then relays input frames to the command and
//! its output as frames, and ends with an EXIT frame. Single-threaded: one
//! poll(2) loop. Setup failures are printed on the helper's stderr and the
//! helper exits 125/126/127 without an EXIT frame.
use super::common::*;
use super::exec_io::{Relay, RelayInput, Sink, read_config};
use crate::execproto::FrameKind;
use crate::spec::ExecConfig;
use crate::{cgroup, proc, sys};
use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, setns};
use nix::unistd::ForkResult;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

fn fail(e: SetupError) -> i32 {
    let _ = writeln!(std::io::stderr(), "quilt-shim: {}", e.message);
    e.code
}

/// `detached`: started as `quilt-shim exec --detached`, for a detached
/// exec, which never has the death signal: the daemon acknowledges the
/// exec once the helper is spawned, and a daemon SIGKILLed before the
/// helper had read its config took the helper with it (its exec then
/// ended without an exit, 125).
pub fn exec(detached: bool) -> i32 {
    // Attached: the daemon gone (even SIGKILLed), the helper goes, and its
    // command with it (the command has its own pdeathsig). Set before the
    // config is read, so no moment is unguarded.
    if !detached {
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    }
    let (cfg, input) = match read_config() {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if detached && cfg.detached_log.is_none() {
        // Attached after all: guarded from here on.
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    }
    let sink = match &cfg.detached_log {
        None => Sink::Daemon,
        Some(path) => match detach(path) {
            Ok(sink) => sink,
            Err(e) => return fail(e),
        },
    };
    let detached = matches!(sink, Sink::File { .. });
    match enter(&cfg, input, sink) {
        Ok(code) => code,
        Err(e) if detached => {
            // Nobody reads our stderr: the frame file says why, and ends.
            if let Some(path) = &cfg.detached_log
                && let Ok(mut sink) = Sink::file(path)
            {
                let _ = sink.send(
                    FrameKind::Stderr,
                    format!("quilt-shim: {}\n", e.message).as_bytes(),
                );
                let _ = sink.send(FrameKind::Exit, &crate::execproto::exit_payload(e.code, 0));
            }
            e.code
        }
        Err(e) => fail(e),
    }
}

/// A detached exec: independent of the daemon from here on (a session of
/// its own, no death signal, SIGPIPE and SIGHUP ignored, stdio on
/// /dev/null); frames go to `path`.
fn detach(path: &Path) -> SetupResult<Sink> {
    let _ = nix::sys::prctl::set_pdeathsig(None);
    let _ = nix::unistd::setsid();
    sys::ignore_signal(libc::SIGPIPE);
    sys::ignore_signal(libc::SIGHUP);
    let sink = Sink::file(path).map_err(setup(format!("open {}", path.display())))?;
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    Ok(sink)
}

/// The command's side of its standard streams.
enum ChildIo {
    /// The pty slave (of the container's devpts).
    Tty { slave: OwnedFd },
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

fn enter(cfg: &ExecConfig, input: RelayInput, sink: Sink) -> SetupResult<i32> {
    if cfg.argv.is_empty() {
        return Err(SetupError::new(EXIT_SETUP, "no command given"));
    }
    let _ = sys::cloexec_from(3);
    // Checked now: once in the container's mount namespace, /proc no longer
    // shows this process.
    sys::ensure_single_threaded().map_err(setup("exec helper"))?;
    // Open every namespace first: /proc is the host's only until setns(mnt).
    // A container with a user namespace is joined through it first: the
    // namespaces it owns are then joined with its capabilities. Its network
    // namespace is joined before that: the daemon made it, so the initial
    // user namespace owns it, and only the helper's own capabilities (not
    // the container's) may enter it.
    let userns = cfg.security.idmap.is_some();
    let kinds: Vec<(&str, CloneFlags)> = [("net", CloneFlags::CLONE_NEWNET)]
        .into_iter()
        .chain(userns.then_some(("user", CloneFlags::CLONE_NEWUSER)))
        .chain([
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("pid", CloneFlags::CLONE_NEWPID),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
            ("mnt", CloneFlags::CLONE_NEWNS),
        ])
        .collect();
    let names: Vec<&str> = kinds.iter().map(|(name, _)| *name).collect();
    let nsfds = open_container_namespaces(cfg.pid, cfg.shim_pid, &names)?;
    // Single-threaded: joining moves the whole helper (and its future child).
    cgroup::join_self(&cfg.cgroup).map_err(setup("joining cgroup"))?;
    // The ceiling of the command's limits, while we still may (see `set_rlimits`).
    crate::rlimit::raise_hard_limits(&cfg.security.rlimits)
        .map_err(|e| SetupError::new(EXIT_SETUP, e.to_string()))?;
    for ((name, flag), f) in kinds.iter().zip(&nsfds) {
        setns(f, *flag).map_err(setup(format!("setns {name}")))?;
    }
    drop(nsfds);
    if userns {
        // The namespace's root, so that what the helper creates (a pty)
        // belongs to the container's root. The daemon reads our stdout.
        super::userns::become_root()?;
        // Attached only: a detached helper outlives the daemon on purpose.
        if matches!(sink, Sink::Daemon) {
            rearm_parent_death(std::io::stdout().as_fd())?;
        }
    }

    // Now in the container's mount namespace: /dev/ptmx is its devpts'.
    let (to_child, outputs, child_io) = if cfg.tty {
        let (master, slave) = super::terminal::open_pty(cfg.rows, cfg.cols)?;
        // The master is both the command's input and its (merged) output.
        let input = master.try_clone().map_err(setup("dup"))?;
        (
            Some(input),
            vec![(master, FrameKind::Stdout)],
            ChildIo::Tty { slave },
        )
    } else {
        let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(setup("pipe"));
        let (in_r, in_w) = match cfg.attach_stdin {
            true => {
                let (r, w) = pipe()?;
                (Some(r), Some(w))
            }
            false => (None, None),
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        (
            in_w,
            vec![(out_r, FrameKind::Stdout), (err_r, FrameKind::Stderr)],
            ChildIo::Pipes {
                stdin: in_r,
                stdout: out_w,
                stderr: err_w,
            },
        )
    };

    // The command's check that the helper is alive (it holds the read end
    // until it exits).
    let (lifeline_r, lifeline_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(setup("pipe"))?;
    // setns(pid) only applies to children: fork the command.
    match sys::fork().map_err(setup("fork"))? {
        ForkResult::Child => {
            drop((to_child, outputs, lifeline_r));
            let e = child(cfg, child_io, &lifeline_w);
            let _ = writeln!(std::io::stderr(), "quilt-shim: {}", e.message);
            sys::exit_now(e.code)
        }
        ForkResult::Parent { child } => {
            // Our copies of the command's ends: EOF once it (and its
            // children) close theirs.
            drop((child_io, lifeline_w));
            let pidfd = proc::pidfd_open(child.as_raw()).map_err(setup("pidfd_open"))?;
            let relay = Relay::new(
                child,
                pidfd,
                cfg.tty,
                cfg.attach_stdin,
                to_child,
                outputs,
                sink,
            );
            let code = relay.run(input);
            drop(lifeline_r);
            Ok(code)
        }
    }
}

/// Connects the command's stdin, stdout and stderr.
fn wire_stdio(io: ChildIo) -> SetupResult<()> {
    match io {
        ChildIo::Tty { slave } => {
            // The session made in `child` has no terminal yet: this one.
            super::terminal::make_controlling(&slave)?;
            nix::unistd::dup2_stdin(&slave).map_err(setup("dup2 stdin"))?;
            nix::unistd::dup2_stdout(&slave).map_err(setup("dup2 stdout"))?;
            nix::unistd::dup2_stderr(&slave).map_err(setup("dup2 stderr"))?;
        }
        ChildIo::Pipes {
            stdin,
            stdout,
            stderr,
        } => {
            nix::unistd::dup2_stdout(&stdout).map_err(setup("dup2 stdout"))?;
            nix::unistd::dup2_stderr(&stderr).map_err(setup("dup2 stderr"))?;
            match stdin {
                Some(r) => nix::unistd::dup2_stdin(&r).map_err(setup("dup2 stdin"))?,
                None => {
                    let devnull =
                        std::fs::File::open("/dev/null").map_err(setup("open /dev/null"))?;
                    nix::unistd::dup2_stdin(&devnull).map_err(setup("dup2 stdin"))?;
                }
            }
        }
    }
    Ok(())
}

/// In the forked child (inside the container's namespaces): only returns on failure.
fn child(cfg: &ExecConfig, io: ChildIo, lifeline: &OwnedFd) -> SetupError {
    // Until execve this is the host's quilt-shim binary inside the
    // container's pid namespace: not dumpable, so no process of the
    // container can open its /proc/PID/exe (the CVE-2019-5736 pattern).
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        return setup("PR_SET_DUMPABLE")(e);
    }
    // Killing the exec helper kills the command as well.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    // A session (and process group) of its own, on pipes as on a tty:
    // `kill -9 0` from the command reaches only its own processes.
    if let Err(e) = nix::unistd::setsid() {
        return setup("setsid")(e);
    }
    // Never the daemon's session keyring (the host's).
    if let Err(e) = session_keyring(cfg.security.seccomp.as_ref()) {
        return e;
    }
    if let Err(e) = wire_stdio(io) {
        return e;
    }
    let workdir = Path::new("/").join(&cfg.workdir);
    if let Err(e) = nix::unistd::chdir(&workdir) {
        return SetupError::new(
            EXIT_SETUP,
            format!(
                "chdir to working directory {:?}: {}",
                workdir.display().to_string(),
                e.desc().to_lowercase()
            ),
        );
    }
    let argv0 = cfg.argv[0].as_str();
    let prep = || -> SetupResult<_> {
        // The user, from the container's own files (we are in its root).
        let who = super::user::resolve(cfg.security.user.as_deref(), cfg.security.idmap.as_ref())?;
        let mut env = cfg.env.clone();
        super::user::set_home(&mut env, &who);
        let seccomp = seccomp_program(cfg.security.seccomp.as_ref())?;
        let path = resolve(argv0, &env)?;
        let argv = cstrings(&cfg.argv)?;
        let env = cstrings(&super::gpu::workload_env(&env, cfg.security.gpu.as_ref()))?;
        set_rlimits(&cfg.security.rlimits)?;
        drop_privileges(cfg.security.capabilities.as_deref(), &who, false)?;
        rearm_parent_death(lifeline.as_fd())?;
        Ok((seccomp, path, argv, env))
    };
    let (seccomp, path, argv, env) = match prep() {
        Ok(v) => v,
        Err(e) => return e,
    };
    reset_signals();
    // The container's filter, as its workload has: the last step.
    if let Err(e) = install_seccomp(&seccomp) {
        return e;
    }
    execve(&path, &argv, &env, argv0)
}
