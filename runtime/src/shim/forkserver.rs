//! The shim fork server (`quilt-shim run` with `QUILT_SHIM_FORK_SERVER=1`
//! in its environment): a small single-threaded process that starts
//! shims by forking itself, so that a start does not exec the shim afresh
//! nor copy quiltd's descriptor table (one pidfd per live container) into a
//! new process. quiltd starts it once and talks to it over the seqpacket
//! socket on its stdin (see `crate::forkserver`).
//!
//! A request is one byte and two or three descriptors (the new shim's
//! stdin and stdout, and the container's root when it was made ahead);
//! the answer is the new shim's pid (4 bytes, little-endian), or a
//! negated errno when it could not be forked. The new shim writes its
//! pid on its stdout first (`PID_TAG`). The shim is forked with
//! CLONE_PARENT: it is quiltd's child, as a shim spawned directly is, and
//! quiltd reaps it; the server never waits for anything but requests. The
//! forked shim takes the descriptors as its stdin and stdout, makes a
//! session of its own, and runs `quilt-shim run` as if just executed
//! (the server's address space is shared copy-on-write with every shim it
//! forked: relocated data and code pages are not copied per container).
//! The end of the socket (quiltd exited or closed it) ends the server.
use super::fdpass;
use crate::forkserver::{PID_TAG, SPAWN};
use crate::sys::{self, CloneResult};
use nix::sched::CloneFlags;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// The server's command name (a forked shim is `quilt-shim`, as when it
/// is executed).
const SERVER_NAME: &std::ffi::CStr = c"quilt-forksrv";
const SHIM_NAME: &std::ffi::CStr = c"quilt-shim";

pub fn serve() -> i32 {
    // Nothing inherited beyond stdio is kept for the server's life (it
    // owns no descriptor yet).
    let _ = sys::close_from(3);
    let sock = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("quilt-shim (fork server): stdin: {e}");
            return 1;
        }
    };
    // A session keyring of its own, not quiltd's, for the shims it forks
    // (see `common::session_keyring`). Without one, they join new ones.
    if let Err(e) = super::common::make_engine_keyring() {
        eprintln!("quilt-shim (fork server): a session keyring of its own: {e}");
    }
    // Told apart from the shims it forks (which take their name back).
    let _ = rustix::thread::set_name(SERVER_NAME);
    // The socket stays only as `sock`: fd 0 is /dev/null until a shim takes
    // its own.
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
    }
    // An Option so that a forked shim can let go of it (see `fork_shim`).
    let mut sock = Some(sock);
    loop {
        let Some(server) = sock.as_ref() else {
            return 0;
        };
        let (tag, fds) = match fdpass::receive(server, true) {
            Ok(Some(m)) => m,
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("quilt-shim (fork server): receiving: {e}");
                return 1;
            }
        };
        let mut fds = fds.into_iter();
        let answer = match (tag, fds.next(), fds.next(), fds.next(), fds.next()) {
            (SPAWN, Some(stdin), Some(stdout), root, None) => {
                match fork_shim(&mut sock, stdin, stdout, root) {
                    Ok(pid) => pid,
                    Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
                }
            }
            _ => -libc::EINVAL,
        };
        let Some(server) = sock.as_ref() else {
            return 0;
        };
        if let Err(e) = rustix::net::send(
            server,
            &answer.to_le_bytes(),
            rustix::net::SendFlags::NOSIGNAL,
        ) {
            eprintln!("quilt-shim (fork server): answering: {e}");
            return 1;
        }
    }
}

/// Forks a shim on `stdin`/`stdout` (with its container's `root`, if
/// made ahead); its pid. In the child this never returns: it runs the shim
/// and exits.
fn fork_shim(
    sock: &mut Option<OwnedFd>,
    stdin: OwnedFd,
    stdout: OwnedFd,
    root: Option<OwnedFd>,
) -> io::Result<i32> {
    match sys::clone_fork(CloneFlags::CLONE_PARENT, None)? {
        CloneResult::Parent { pid, pidfd } => {
            drop(pidfd);
            Ok(pid.as_raw())
        }
        CloneResult::Child => {
            // First on its stdout, before anything it reads or reports
            // (its config may be in its stdin already): quiltd finds it by
            // this even if the server's answer never comes.
            let mut tag = PID_TAG.to_vec();
            tag.extend_from_slice(&std::process::id().to_le_bytes());
            if rustix::io::write(&stdout, &tag) != Ok(tag.len()) {
                std::process::exit(1);
            }
            // Nothing of the server's is kept: its socket goes.
            drop(sock.take());
            let _ = rustix::thread::set_name(SHIM_NAME);
            let code = match (
                nix::unistd::dup2_stdin(&stdin),
                nix::unistd::dup2_stdout(&stdout),
            ) {
                (Ok(()), Ok(())) => {
                    drop((stdin, stdout));
                    // A session (and process group) of its own: nothing
                    // sent to quiltd's or the server's reaches it.
                    let _ = nix::unistd::setsid();
                    super::run::run(root)
                }
                _ => 1,
            };
            std::process::exit(code)
        }
    }
}
