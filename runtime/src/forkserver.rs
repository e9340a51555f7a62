//! quiltd's side of the shim fork server (`quilt-shim run` with
//! `QUILT_SHIM_FORK_SERVER=1`, see
//! `shim/forkserver.rs`). One per process: started with the first shim a
//! start or a warm pool needs, and again after it is lost. Every `run`
//! shim is forked by it: it holds three descriptors where quiltd holds one
//! per live container, so a start no longer copies a table that grows with
//! the containers, and no longer executes the shim afresh. Where no server
//! can be had, the caller spawns the shim directly, as before.
use rustix::net::{
    AddressFamily, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags,
    SocketType, sockopt,
};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The request's tag (`shim/forkserver.rs`).
const SPAWN: u8 = b'S';
/// How long an answer may take (a fork takes well under a millisecond).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// After the server could not be started (or was lost twice in a row),
/// shims are spawned directly for this long before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Server {
    shim: PathBuf,
    sock: OwnedFd,
    process: Child,
}

#[derive(Debug)]
enum State {
    Idle,
    Running(Server),
    Failed(Instant),
}

/// Requests are one at a time: each takes a fork (tens of microseconds).
static SERVER: Mutex<State> = Mutex::new(State::Idle);

/// A shim forked by the server (quiltd's child), with quiltd's ends of its
/// stdin and stdout.
#[derive(Debug)]
pub(crate) struct Forked {
    pub pid: i32,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
}

/// Forks `quilt-shim run` (the binary at `shim`) through the server. None
/// when no server can be had: the caller spawns the shim itself.
pub(crate) fn spawn_run(shim: &Path) -> Option<Forked> {
    let mut state = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    // One more try with a new server when the one we had is gone.
    for _ in 0..2 {
        let server = match &mut *state {
            State::Running(s) if s.shim == shim => s,
            State::Failed(at) if at.elapsed() < RETRY_AFTER => return None,
            _ => {
                stop(&mut state);
                match start(shim) {
                    Ok(s) => {
                        *state = State::Running(s);
                        let State::Running(s) = &mut *state else {
                            unreachable!()
                        };
                        s
                    }
                    Err(e) => {
                        tracing::warn!(shim = %shim.display(), error = %e, "cannot start the shim fork server; spawning shims directly");
                        *state = State::Failed(Instant::now());
                        return None;
                    }
                }
            }
        };
        match request(server) {
            Ok(forked) => return Some(forked),
            Err(Failure::Fork(e)) => {
                // The server is sound; the fork failed (a process limit):
                // a direct spawn would fail as well, and says why.
                tracing::debug!(error = %e, "the fork server could not fork a shim");
                return None;
            }
            Err(Failure::Server(e)) => {
                tracing::warn!(error = %e, "the shim fork server is gone; starting another");
                stop(&mut state);
            }
        }
    }
    *state = State::Failed(Instant::now());
    None
}

enum Failure {
    /// The server answered that it could not fork.
    Fork(io::Error),
    /// The server did not answer (gone, or stuck): it is replaced.
    Server(io::Error),
}

fn start(shim: &Path) -> io::Result<Server> {
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_socket_timeout(&ours, sockopt::Timeout::Recv, Some(ANSWER_TIMEOUT))?;
    let process = Command::new(shim)
        // A shim's arguments, which the shims it forks keep: the variable
        // makes it the server (`shim/forkserver.rs`).
        .arg("run")
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        // A shim's early failures (before it redirects its stderr to its
        // log) show up in quiltd's stderr, as when it is spawned directly.
        .stderr(Stdio::inherit())
        .env_clear()
        .env("QUILT_SHIM_FORK_SERVER", "1")
        // Nothing sent to quiltd's process group reaches it.
        .process_group(0)
        .spawn()?;
    Ok(Server {
        shim: shim.to_owned(),
        sock: ours,
        process,
    })
}

/// Ends the server, if there is one, and reaps it (a daemon that shuts
/// down leaves no process of its own to its parent). Blocking, briefly.
pub(crate) fn shutdown() {
    stop(&mut SERVER.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Ends the server we have, if any (its shims live on: they are quiltd's
/// children, not its).
fn stop(state: &mut State) {
    if let State::Running(mut s) = std::mem::replace(state, State::Idle) {
        drop(s.sock);
        let _ = s.process.kill();
        let _ = s.process.wait();
    }
}

fn request(server: &Server) -> Result<Forked, Failure> {
    let io = |e: rustix::io::Errno| Failure::Server(io::Error::from(e));
    let (in_r, in_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Failure::Fork(e.into()))?;
    let (out_r, out_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Failure::Fork(e.into()))?;
    {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds = [in_r.as_fd(), out_w.as_fd()];
        control.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            &server.sock,
            &[io::IoSlice::new(&[SPAWN])],
            &mut control,
            SendFlags::NOSIGNAL,
        )
        .map_err(io)?;
    }
    // The shim has its own copies now.
    drop((in_r, out_w));
    let mut answer = [0u8; 4];
    let n = loop {
        match rustix::net::recv(&server.sock, &mut answer, RecvFlags::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r.map_err(io)?.0,
        }
    };
    if n != answer.len() {
        return Err(Failure::Server(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the fork server closed its socket",
        )));
    }
    match i32::from_le_bytes(answer) {
        pid if pid > 0 => Ok(Forked {
            pid,
            stdin: in_w,
            stdout: out_r,
        }),
        errno => Err(Failure::Fork(io::Error::from_raw_os_error(-errno))),
    }
}
