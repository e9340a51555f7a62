//! The supervisor's side of the attach socket (see [`crate::attach`]):
//! accepts clients while the workload runs and feeds what they type into
//! its terminal or stdin pipe, without ever blocking the supervisor. Input
//! waiting for the workload is bounded: past it, clients are not read (they
//! wait, the container does not).
use super::exec_io::{set_nonblocking, set_winsize, write_pending};
use crate::execproto::{self as proto, FrameKind};
use nix::poll::PollFlags;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

/// Input held for the workload before clients are no longer read.
const MAX_PENDING: usize = 1 << 20;
/// Most clients attached at once; more are turned away.
const MAX_CLIENTS: usize = 64;
/// ^D: end of input on a terminal.
const EOT: u8 = 0x04;

/// What a descriptor handed to poll(2) is.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    Listener,
    Client(usize),
    Workload,
}

struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

pub struct AttachServer {
    listener: UnixListener,
    /// The socket's path, through `_dir`.
    path: PathBuf,
    _dir: OwnedFd,
    clients: Vec<Client>,
    /// The workload's stdin: the pty master, or the pipe's write end.
    to_workload: Option<OwnedFd>,
    tty: bool,
    pending: Vec<u8>,
    close_requested: bool,
    chunk: Vec<u8>,
}

impl AttachServer {
    /// Listens on the container directory's socket (a stale one from an
    /// earlier run is replaced), owner-only.
    pub fn bind(
        dir: &std::path::Path,
        to_workload: OwnedFd,
        tty: bool,
    ) -> std::io::Result<AttachServer> {
        use std::os::unix::fs::PermissionsExt;
        let dirfd = crate::attach::open_dir(dir)?;
        let path = crate::attach::socket_path(dirfd.as_fd());
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        set_nonblocking(&to_workload);
        Ok(AttachServer {
            listener,
            path,
            _dir: dirfd,
            clients: Vec::new(),
            to_workload: Some(to_workload),
            tty,
            pending: Vec::new(),
            close_requested: false,
            chunk: vec![0u8; 64 * 1024],
        })
    }

    /// The descriptors to poll now, with what each is.
    pub fn poll_set(&self) -> Vec<(Role, BorrowedFd<'_>, PollFlags)> {
        let mut set = vec![(Role::Listener, self.listener.as_fd(), PollFlags::POLLIN)];
        if self.pending.len() < MAX_PENDING {
            for (i, c) in self.clients.iter().enumerate() {
                set.push((Role::Client(i), c.stream.as_fd(), PollFlags::POLLIN));
            }
        }
        if let Some(fd) = &self.to_workload
            && !self.pending.is_empty()
        {
            set.push((Role::Workload, fd.as_fd(), PollFlags::POLLOUT));
        }
        set
    }

    /// Handles the descriptors poll found ready.
    pub fn on_ready(&mut self, ready: &[Role]) {
        let mut gone = Vec::new();
        for role in ready {
            match *role {
                Role::Listener => self.accept(),
                Role::Client(i) => {
                    if !self.read_client(i) {
                        gone.push(i);
                    }
                }
                Role::Workload => self.flush(),
            }
        }
        gone.sort_unstable();
        for i in gone.into_iter().rev() {
            self.clients.swap_remove(i);
        }
        self.maybe_close_stdin();
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) if self.clients.len() < MAX_CLIENTS => {
                    if stream.set_nonblocking(true).is_ok() {
                        self.clients.push(Client {
                            stream,
                            buf: Vec::new(),
                        });
                    }
                }
                Ok(_) => {} // too many: dropped
                Err(_) => return,
            }
        }
    }

    /// One read from client `i`; false once it is gone (or misbehaved).
    fn read_client(&mut self, i: usize) -> bool {
        let n = match self.clients[i].stream.read(&mut self.chunk) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) => {
                return matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                );
            }
        };
        let client = &mut self.clients[i];
        client.buf.extend_from_slice(&self.chunk[..n]);
        let frames = match proto::split(&mut client.buf) {
            Ok(f) => f,
            Err(_) => return false,
        };
        for (kind, payload) in frames {
            match kind {
                FrameKind::Stdin if !self.close_requested && self.to_workload.is_some() => {
                    self.pending.extend_from_slice(&payload)
                }
                // ^D on a terminal, in order with what was typed (typing
                // goes on after it); the end of a pipe.
                FrameKind::CloseStdin if self.tty && self.to_workload.is_some() => {
                    self.pending.push(EOT)
                }
                FrameKind::CloseStdin if self.tty => {}
                FrameKind::CloseStdin => self.close_requested = true,
                FrameKind::Resize if self.tty => {
                    if let (Some((rows, cols)), Some(fd)) =
                        (proto::read_resize(&payload), &self.to_workload)
                        && rows > 0
                        && cols > 0
                    {
                        let _ = set_winsize(fd.as_fd(), rows, cols);
                    }
                }
                _ => {}
            }
        }
        true
    }

    fn flush(&mut self) {
        let Some(fd) = &self.to_workload else {
            self.pending.clear();
            return;
        };
        if !write_pending(fd, &mut self.pending) {
            // The workload closed its stdin (EPIPE), or every holder of the
            // terminal's other side closed it (EIO, and poll would report the
            // master ready again and again): no more input.
            self.pending.clear();
            self.close_requested = true;
            self.to_workload = None;
        }
    }

    /// Once asked to and everything before has been written: the end of
    /// the stdin pipe (a terminal gets ^D in order instead, see above).
    fn maybe_close_stdin(&mut self) {
        if self.close_requested && self.pending.is_empty() && !self.tty {
            self.to_workload = None;
        }
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
