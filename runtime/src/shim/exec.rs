//! `quilt-shim exec`: runs a command inside a running container (for the
//! daemon's Exec RPC). Exits with the command's exit code (128 + signal when
//! it was killed); 125/126/127 when it could not be started.
use super::common::*;
use crate::spec::ExecConfig;
use crate::{cgroup, sys};
use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::ForkResult;
use std::io::{Read, Write};
use std::path::Path;

fn fail(e: SetupError) -> i32 {
    let _ = writeln!(std::io::stderr(), "quilt-shim: {}", e.message);
    e.code
}

pub fn exec() -> i32 {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        return fail(SetupError::new(
            EXIT_SETUP,
            format!("reading exec config: {e}"),
        ));
    }
    let cfg: ExecConfig = match serde_json::from_slice(&input) {
        Ok(c) => c,
        Err(e) => return fail(SetupError::new(EXIT_SETUP, format!("bad exec config: {e}"))),
    };
    match enter(&cfg) {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn enter(cfg: &ExecConfig) -> SetupResult<i32> {
    if cfg.argv.is_empty() {
        return Err(SetupError::new(EXIT_SETUP, "no command given"));
    }
    let _ = sys::cloexec_from(3);
    // Checked now: once in the container's mount namespace, /proc no longer
    // shows this process.
    sys::ensure_single_threaded().map_err(setup("exec helper"))?;
    // Open every namespace first: /proc is the host's only until setns(mnt).
    let kinds = [
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let mut nsfds = Vec::with_capacity(kinds.len());
    for (name, flag) in kinds {
        let p = format!("/proc/{}/ns/{name}", cfg.pid);
        let f = std::fs::File::open(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SetupError::new(
                    EXIT_SETUP,
                    format!("container process {} is not running", cfg.pid),
                )
            } else {
                setup(format!("open {p}"))(e)
            }
        })?;
        nsfds.push((name, flag, f));
    }
    // Single-threaded: joining moves the whole helper (and its future child).
    cgroup::join_self(&cfg.cgroup).map_err(setup("joining cgroup"))?;
    for (name, flag, f) in &nsfds {
        setns(f, *flag).map_err(setup(format!("setns {name}")))?;
    }
    drop(nsfds);

    // setns(pid) only applies to children: fork the command.
    match sys::fork().map_err(setup("fork"))? {
        ForkResult::Child => {
            let e = child(cfg);
            let _ = writeln!(std::io::stderr(), "quilt-shim: {}", e.message);
            sys::exit_now(e.code)
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(setup("waitpid")(e)),
            }
        },
    }
}

/// In the forked child (inside the container's namespaces): only returns on failure.
fn child(cfg: &ExecConfig) -> SetupError {
    // Killing the exec helper kills the command as well.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
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
        let path = resolve(argv0, &cfg.env)?;
        let argv = cstrings(&cfg.argv)?;
        let env = cstrings(&cfg.env)?;
        clamp_rlimits();
        drop_privileges()?;
        let devnull = std::fs::File::open("/dev/null").map_err(setup("open /dev/null"))?;
        nix::unistd::dup2_stdin(&devnull).map_err(setup("dup2 stdin"))?;
        Ok((path, argv, env))
    };
    let (path, argv, env) = match prep() {
        Ok(v) => v,
        Err(e) => return e,
    };
    reset_signals();
    execve(&path, &argv, &env, argv0)
}
