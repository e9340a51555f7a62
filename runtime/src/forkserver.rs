//! quiltd's side of the shim fork server (`quilt-shim run` with
//! `QUILT_SHIM_FORK_SERVER=1`, see
//! `shim/forkserver.rs`). One per process: started with the first shim a
//! start or a warm pool needs, and again after it is lost. Every `run`
//! shim is forked by it: it holds three descriptors where quiltd holds one
//! per live container, so a start no longer copies a table that grows with
//! the containers, and no longer executes the shim afresh. Where no server
//! can be had, the caller spawns the shim directly, as before.
use crate::shim::fdpass;
use nix::poll::PollTimeout;
use rustix::net::{AddressFamily, RecvFlags, SocketFlags, SocketType, sockopt};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Set (to 1) in the server's environment: `quilt-shim run` is then the
/// server (`shim/forkserver.rs`). So it is started with the arguments of a
/// shim, which every shim it forks keeps (what `ps` shows).
pub(crate) const SERVER_ENV: &str = "QUILT_SHIM_FORK_SERVER";
/// The request's tag: two or three descriptors follow, the new shim's
/// stdin and stdout, and the container's root when it was made ahead (a
/// detached overlay, see `layer`).
pub(crate) const SPAWN: u8 = b'S';
/// What a new shim writes on its stdout before anything else: this, then
/// its pid (u32, little-endian). quiltd learns the pid from there even
/// when the server's answer is lost, and can reap it.
pub(crate) const PID_TAG: &[u8; 4] = b"PID:";
/// How long an answer may take (a fork takes well under a millisecond).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// After the server could not be started (or was lost twice in a row),
/// shims are spawned directly for this long before it is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// A server forks this many shims, then a new one takes over: the shims
/// of one server share its address-space layout (and stack canary), so a
/// leak from one shim says less about the next ones.
const FORKS_PER_SERVER: u32 = 256;

#[derive(Debug)]
struct Server {
    shim: PathBuf,
    /// The binary it was started from (device, inode, change time): a shim
    /// replaced on disk gets a new server.
    binary: (u64, u64, i64, i64),
    sock: OwnedFd,
    process: Child,
    forks: u32,
}

#[derive(Debug)]
enum State {
    Idle,
    Running(Server),
    Failed(Instant),
}

/// Requests are one at a time: each takes a fork (tens of microseconds).
/// Nothing waits for a process while holding it (see `stop`).
static SERVER: Mutex<State> = Mutex::new(State::Idle);

/// A shim forked by the server (quiltd's child), with quiltd's ends of its
/// stdin and stdout.
#[derive(Debug)]
pub(crate) struct Forked {
    pub pid: i32,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    /// How much of the `early` bytes is in the shim's stdin already.
    pub written: usize,
}

/// Forks `quilt-shim run` (the binary at `shim`) through the server, with
/// the container's `root` when one was made ahead. None when no server can
/// be had: the caller spawns the shim itself.
///
/// `early`: bytes for the shim's stdin written as soon as the request is
/// sent, as far as the pipe takes them without waiting, so that the shim
/// finds them when it is forked instead of after quiltd has read the
/// answer. Only what cannot run before quiltd says so (a gated config): a
/// shim whose answer is lost is killed only if the server wrote its pid.
pub(crate) fn spawn_run(
    shim: &Path,
    root: Option<BorrowedFd<'_>>,
    early: Option<&[u8]>,
) -> Option<Forked> {
    let binary = identity(shim).ok()?;
    let mut state = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    // One more try with a new server when the one we had is gone.
    for _ in 0..2 {
        let current = matches!(&*state, State::Running(s)
            if s.shim == shim && s.binary == binary && s.forks < FORKS_PER_SERVER);
        if !current {
            if matches!(&*state, State::Failed(at) if at.elapsed() < RETRY_AFTER) {
                return None;
            }
            stop(&mut state);
            match start(shim, binary) {
                Ok(s) => *state = State::Running(s),
                Err(e) => {
                    tracing::warn!(shim = %shim.display(), error = %e, "cannot start the shim fork server; spawning shims directly");
                    *state = State::Failed(Instant::now());
                    return None;
                }
            }
        }
        let State::Running(server) = &mut *state else {
            unreachable!("a server was just made current")
        };
        server.forks += 1;
        match request(server, root, early) {
            Ok(forked) => return Some(forked),
            Err(Failure::Fork(e)) => {
                // The server is sound; the fork failed (a process limit):
                // a direct spawn would fail as well, and says why.
                tracing::warn!(error = %e, "the fork server could not fork a shim");
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

/// Ends the server, if there is one: it exits at the end of its socket,
/// and is reaped (a daemon that shuts down leaves no process of its own to
/// its parent). Blocking, for a second at most.
pub(crate) fn shutdown() {
    let old = std::mem::replace(
        &mut *SERVER.lock().unwrap_or_else(|e| e.into_inner()),
        State::Idle,
    );
    if let State::Running(mut s) = old {
        drop(s.sock);
        let deadline = Instant::now() + Duration::from_secs(1);
        while matches!(s.process.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = s.process.kill();
                let _ = s.process.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

enum Failure {
    /// The server answered that it could not fork.
    Fork(io::Error),
    /// The server did not answer (gone, or stuck): it is replaced.
    Server(io::Error),
}

fn identity(shim: &Path) -> io::Result<(u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(shim)?;
    Ok((m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))
}

fn start(shim: &Path, binary: (u64, u64, i64, i64)) -> io::Result<Server> {
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_socket_timeout(&ours, sockopt::Timeout::Recv, Some(ANSWER_TIMEOUT))?;
    // Started as a shim is (the shims it forks keep its stderr and
    // arguments); the variable makes it the server.
    let process = crate::launch::shim_run_command(shim)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .env(SERVER_ENV, "1")
        .spawn()?;
    Ok(Server {
        shim: shim.to_owned(),
        binary,
        sock: ours,
        process,
        forks: 0,
    })
}

/// Lets go of the server we have, if any (its shims live on: they are
/// quiltd's children, not its): killed, and reaped by a thread of its own,
/// so that no start waits on a process that does not die at once.
fn stop(state: &mut State) {
    if let State::Running(mut s) = std::mem::replace(state, State::Idle) {
        drop(s.sock);
        let _ = s.process.kill();
        if !matches!(s.process.try_wait(), Ok(Some(_))) {
            let _ = std::thread::Builder::new()
                .name("reap-forksrv".into())
                .spawn(move || {
                    let _ = s.process.wait();
                });
        }
    }
}

fn request(
    server: &Server,
    root: Option<BorrowedFd<'_>>,
    early: Option<&[u8]>,
) -> Result<Forked, Failure> {
    use nix::fcntl::OFlag;
    let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Failure::Fork(e.into()))?;
    let (out_r, out_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Failure::Fork(e.into()))?;
    let mut fds = vec![in_r.as_fd(), out_w.as_fd()];
    fds.extend(root);
    fdpass::send_fds(&server.sock, SPAWN, &fds).map_err(Failure::Server)?;
    drop(fds);
    // The shim has its own copies now.
    drop((in_r, out_w));
    // While the server forks; never waits (what the pipe does not take,
    // the caller writes once the shim is known to be there).
    let written = early.map_or(0, |bytes| write_what_fits(&in_w, bytes));
    let mut answer = [0u8; 4];
    let n = loop {
        match rustix::net::recv(&server.sock, &mut answer, RecvFlags::empty()) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r.map_err(|e| lost(e.into(), &out_r, written))?.0,
        }
    };
    if n != answer.len() {
        return Err(lost(
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the fork server closed its socket",
            ),
            &out_r,
            written,
        ));
    }
    match i32::from_le_bytes(answer) {
        pid if pid > 0 => match read_pid(&out_r, PollTimeout::NONE) {
            Some(tagged) if tagged == pid => Ok(Forked {
                pid,
                stdin: in_w,
                stdout: out_r,
                written,
            }),
            other => {
                reap(other);
                reap(Some(pid));
                Err(Failure::Server(io::Error::other(format!(
                    "the fork server answered pid {pid} and wrote {other:?}"
                ))))
            }
        },
        errno => Err(Failure::Fork(io::Error::from_raw_os_error(-errno))),
    }
}

/// Writes as much of `bytes` into `w`, the write end of a pipe nothing
/// has been written to yet, as its capacity takes: one write that cannot
/// wait (the pipe has that much room). How much was written.
fn write_what_fits(w: &OwnedFd, bytes: &[u8]) -> usize {
    use nix::fcntl::{FcntlArg, fcntl};
    let Ok(capacity) = fcntl(w, FcntlArg::F_GETPIPE_SZ) else {
        return 0;
    };
    let n = bytes.len().min(usize::try_from(capacity).unwrap_or(0));
    match n {
        0 => 0,
        n => rustix::io::write(w, &bytes[..n]).unwrap_or(0),
    }
}

/// The server failed after the request: a shim it may have forked is
/// quiltd's child, found by the pid it wrote first on its stdout, and
/// reaped (its stdin is closed with `in_w`: it ends by itself). One that
/// had its config written early (`written`) would set its container up
/// (in the directory and cgroup a retry uses) before it found its gate
/// closed: it is waited for (briefly) and ended before anything else.
fn lost(e: io::Error, out_r: &OwnedFd, written: usize) -> Failure {
    match written {
        0 => reap(read_pid(out_r, PollTimeout::ZERO)),
        _ => {
            if let Some(pid) = read_pid(out_r, PollTimeout::from(ORPHAN_WAIT_MS)) {
                crate::proc::kill_and_reap_child(pid);
            }
        }
    }
    Failure::Server(e)
}

/// How long a lost server's shim is waited for (it writes its pid first
/// thing after the fork).
const ORPHAN_WAIT_MS: u16 = 1000;

/// The pid a shim wrote first on its stdout; waits up to `timeout` for
/// it (`PollTimeout::NONE`: until it is there, or the pipe's end).
fn read_pid(out_r: &OwnedFd, timeout: PollTimeout) -> Option<i32> {
    use nix::poll::{PollFd, PollFlags, poll};
    if timeout != PollTimeout::NONE {
        let mut fds = [PollFd::new(out_r.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, timeout), Ok(1)) {
            return None;
        }
    }
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(out_r, &mut buf[got..]) {
            Ok(0) => return None,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    (&buf[..4] == PID_TAG)
        .then(|| i32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]))
        .filter(|&pid| pid > 0)
}

/// Kills and reaps, on a thread of its own, a shim of ours that will
/// never be used.
fn reap(pid: Option<i32>) {
    if let Some(pid) = pid {
        let _ = std::thread::Builder::new()
            .name("reap-shim".into())
            .spawn(move || crate::proc::kill_and_reap_child(pid));
    }
}
