//! A warm pool's container: its PID 1 is prepared up to the workload's own
//! settings (namespaces, cgroup, root, mounts, the root switch, masked paths)
//! and waits; the shim waits on its stdin for the config of the container
//! that adopts it, checks that it is of the same shape, applies the
//! cgroup's limits and hands the config over. PID 1 then sets the
//! hostname, working directory, user, limits and seccomp filter, and
//! execs, as a cold start does. The end of the shim's stdin (the daemon
//! discarded it, or is gone) or PID 1's death ends the pooled container:
//! the shim removes its cgroup and directory and exits (before adoption;
//! a gated adoption abandoned leaves them to the daemon, as below).
//!
//! A gated adoption (the adopter's config has `gated` set: handed over
//! while the daemon records the container) keeps the shim's stdin as its
//! gate, as a cold gated start does: the shim passes PID 1 a copy of it
//! with the config, and PID 1 waits there before its execve.
use super::common::*;
use crate::spec::ContainerConfig;
use crate::{cgroup, launch};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

/// The byte PID 1 sends once it is prepared.
const READY: u8 = b'R';
/// The tag of the message that passes a gated adoption's gate to PID 1.
const GATE: u8 = b'G';
/// How much nicer a pooled container's preparation runs than starts do:
/// filling the pool yields the CPU to the containers being started.
const PREPARE_NICE: i32 = 10;

/// Lowers the shim's priority (its PID 1 inherits it); returns the one to
/// restore on adoption.
pub fn lower_priority() -> Option<i32> {
    use rustix::process::{getpriority_process, setpriority_process};
    let orig = getpriority_process(None).ok()?;
    setpriority_process(None, (orig + PREPARE_NICE).min(19)).ok()?;
    Some(orig)
}

/// Gives the shim and its PID 1 their priority back once prepared: the
/// adopter never runs at the preparation's.
pub fn restore_priority(orig: Option<i32>, child: Pid) -> SetupResult<()> {
    use rustix::process::{Pid as RPid, setpriority_process};
    let Some(orig) = orig else {
        return Ok(());
    };
    let io = |e: rustix::io::Errno| std::io::Error::from(e);
    setpriority_process(None, orig)
        .map_err(io)
        .map_err(setup("restoring the supervisor's priority"))?;
    let pid = RPid::from_raw(child.as_raw())
        .ok_or_else(|| SetupError::new(EXIT_SETUP, "no first process"))?;
    setpriority_process(Some(pid), orig)
        .map_err(io)
        .map_err(setup("restoring the first process's priority"))
}

/// The socket between the shim and a pooled PID 1.
pub fn pair() -> SetupResult<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(setup("socketpair"))
}

/// In PID 1: tells the shim it is prepared and waits for the adopting
/// container's config, one frame as the shim got it, and for a gated one
/// its gate (the shim closes its end after them).
pub fn await_adoption(sock: &OwnedFd) -> SetupResult<(ContainerConfig, Option<OwnedFd>)> {
    let mut s = File::from(sock.try_clone().map_err(setup("dup"))?);
    s.write_all(&[READY]).map_err(setup("telling the shim"))?;
    let cfg: ContainerConfig =
        match launch::read_frame(&mut s).map_err(setup("reading the adoption"))? {
            Some(body) => serde_json::from_slice(&body).map_err(setup("the adoption's config"))?,
            None => return Err(SetupError::new(EXIT_SETUP, "discarded before adoption")),
        };
    if !cfg.gated {
        return Ok((cfg, None));
    }
    // The frame was read to its last byte, never beyond (unbuffered reads
    // of exact lengths: a read ahead would take the gate's byte and drop
    // its descriptor): the next is the gate's message.
    match super::fdpass::receive(sock, true).map_err(setup("receiving the gate"))? {
        Some((GATE, mut fds)) if fds.len() == 1 => {
            let gate = fds.pop();
            Ok((cfg, gate))
        }
        _ => Err(SetupError::new(EXIT_SETUP, "no gate with a gated adoption")),
    }
}

/// In the shim: whether PID 1 got ready (false: it failed, and said why
/// on the error pipe).
pub fn wait_ready(sock: &OwnedFd) -> bool {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(sock, &mut b) {
            Ok(1) => return b[0] == READY,
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return false,
        }
    }
}

/// What ended the wait of a pooled container.
pub enum Parked {
    /// The adopting container's config, and the frame's body it came in
    /// (handed to PID 1 as it is).
    Adopt(Box<ContainerConfig>, Vec<u8>),
    /// The daemon closed the shim's stdin, sent something unreadable, or
    /// PID 1 died.
    Discard(String),
}

/// Waits for the adoption frame on stdin, or PID 1's end.
pub fn park(pidfd: &OwnedFd) -> Parked {
    let stdin = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => return Parked::Discard(format!("stdin: {e}")),
    };
    loop {
        let mut fds = [
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Parked::Discard(format!("poll: {e}")),
            Ok(_) => {}
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return Parked::Discard("its first process ended".into());
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            let mut f = File::from(stdin);
            return match launch::read_frame(&mut f) {
                Ok(Some(body)) => match serde_json::from_slice(&body) {
                    Ok(cfg) => Parked::Adopt(Box::new(cfg), body),
                    Err(e) => Parked::Discard(format!("bad adoption config: {e}")),
                },
                Ok(None) => Parked::Discard("discarded".into()),
                Err(e) => Parked::Discard(format!("reading the adoption: {e}")),
            };
        }
    }
}

/// Applies what the adopting container sets on the cgroup and hands its
/// config (`new`, read from `body`) to PID 1, with a copy of the shim's
/// stdin as its gate when it is gated.
pub fn hand_over(
    pooled: &ContainerConfig,
    child: Pid,
    sock: OwnedFd,
    new: &ContainerConfig,
    body: &[u8],
) -> SetupResult<()> {
    if new.cgroup.limits != pooled.cgroup.limits {
        cgroup::adopt(&pooled.cgroup, &new.cgroup, child.as_raw())
            .map_err(setup("setting the cgroup's limits"))?;
    }
    let mut s = File::from(sock);
    s.write_all(&launch::frame(body))
        .map_err(setup("handing the container over"))?;
    if new.gated {
        let stdin = std::io::stdin();
        super::fdpass::send(&OwnedFd::from(s), GATE, Some(stdin.as_fd()))
            .map_err(setup("handing the gate over"))?;
    }
    Ok(())
}

/// Ends a pooled container: PID 1 killed and reaped, its cgroup and
/// directory removed. The shim then exits.
pub fn discard(cfg: &ContainerConfig, child: Pid, pidfd: &OwnedFd, why: &str) -> ! {
    let _ = crate::proc::pidfd_send_signal(pidfd, crate::signal::Signal::KILL);
    while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(child, None) {}
    if let Err(e) = cgroup::remove(&cfg.cgroup) {
        let _ = writeln!(std::io::stderr(), "quilt-shim: removing cgroup: {e}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "quilt-shim[{}]: pooled container discarded: {why}",
        std::process::id()
    );
    // Its upper layer holds only what the preparation made; no row owns
    // the directory yet (a row that claimed it starts it cold instead).
    match std::fs::remove_dir_all(&cfg.dir) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "quilt-shim: removing {}: {e}",
                cfg.dir.display()
            );
            std::process::exit(1)
        }
    }
}
