//! The exec helper's relay: one poll(2) loop between the daemon (framed
//! stdin/stdout, see [`crate::execproto`]) and the command (pipes or a pty
//! master). Input to the command is written without blocking, and more is
//! read from the daemon only once it has been taken, so a command that does
//! not read its stdin can never stall its output.
use super::common::*;
use crate::execproto::{self as proto, FrameKind};
use crate::signal::Signal;
use crate::spec::ExecConfig;
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

const CHUNK: usize = 64 * 1024;
/// Reads per output stream once the command has exited (what it wrote is
/// already buffered; a background process still writing is cut off).
const DRAIN_READS: usize = 1024;
/// How long a pty drain waits for the terminal to deliver the last output
/// (a background process may keep the terminal open and busy).
const TTY_DRAIN_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
/// End of transmission: what closing stdin means on a terminal.
const EOT: u8 = 0x04;

/// Frames received from the daemon past CONFIG, and a partial one.
pub struct RelayInput {
    queued: VecDeque<(FrameKind, Vec<u8>)>,
    buf: Vec<u8>,
}

fn read_stdin(buf: &mut [u8]) -> nix::Result<usize> {
    loop {
        match nix::unistd::read(std::io::stdin(), buf) {
            Err(Errno::EINTR) => continue,
            r => return r,
        }
    }
}

/// Reads the CONFIG frame that must come first on stdin.
pub fn read_config() -> SetupResult<(ExecConfig, RelayInput)> {
    let mut input = RelayInput {
        queued: VecDeque::new(),
        buf: Vec::new(),
    };
    let mut chunk = vec![0u8; CHUNK];
    loop {
        if let Some((kind, payload)) = input.queued.pop_front() {
            if kind != FrameKind::Config {
                return Err(SetupError::new(
                    EXIT_SETUP,
                    "the first exec frame must be the config",
                ));
            }
            let cfg = serde_json::from_slice(&payload)
                .map_err(|e| SetupError::new(EXIT_SETUP, format!("bad exec config: {e}")))?;
            return Ok((cfg, input));
        }
        let n = read_stdin(&mut chunk).map_err(setup("reading exec config"))?;
        if n == 0 {
            return Err(SetupError::new(EXIT_SETUP, "no exec config on stdin"));
        }
        input.buf.extend_from_slice(&chunk[..n]);
        let frames = proto::split(&mut input.buf).map_err(|e| SetupError::new(EXIT_SETUP, e))?;
        input.queued.extend(frames);
    }
}

/// Where the helper's frames go.
pub enum Sink {
    /// The daemon, on stdout (blocking: backpressure to the command).
    Daemon,
    /// A detached exec's frame file: output past the cap is dropped (the
    /// PID and EXIT frames are always written).
    File { file: std::fs::File, written: u64 },
}

impl Sink {
    /// The frame file of a detached exec, opened for appending.
    pub fn file(path: &std::path::Path) -> std::io::Result<Sink> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)?;
        let written = file.metadata()?.len();
        Ok(Sink::File { file, written })
    }

    /// Writes one frame.
    pub fn send(&mut self, kind: FrameKind, payload: &[u8]) -> nix::Result<()> {
        let f = proto::frame(kind, payload);
        match self {
            Sink::Daemon => {
                let mut rest = &f[..];
                while !rest.is_empty() {
                    match nix::unistd::write(std::io::stdout(), rest) {
                        Ok(n) => rest = &rest[n..],
                        Err(Errno::EINTR) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Sink::File { file, written } => {
                let output = matches!(kind, FrameKind::Stdout | FrameKind::Stderr);
                if output && *written + f.len() as u64 > crate::spec::EXEC_LOG_MAX_BYTES {
                    return Ok(()); // over the cap: dropped, the command goes on
                }
                use std::io::Write;
                // A full disk drops output; it never stops the command.
                if file.write_all(&f).is_ok() {
                    *written += f.len() as u64;
                }
                Ok(())
            }
        }
    }
}

/// ioctl(TIOCSWINSZ): sets the window size of the terminal `fd`.
pub(super) fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> std::io::Result<()> {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Ok(rustix::termios::tcsetwinsize(fd, size)?)
}

/// One non-blocking write of `pending` to `fd`, what was taken removed.
/// False when the other side is gone (EPIPE, or EIO from a terminal whose
/// slave side every holder closed): no more input can go there.
pub(super) fn write_pending(fd: &OwnedFd, pending: &mut Vec<u8>) -> bool {
    match nix::unistd::write(fd, pending) {
        Ok(n) => {
            pending.drain(..n);
            true
        }
        Err(Errno::EAGAIN) | Err(Errno::EINTR) => true,
        Err(_) => false,
    }
}

pub(super) fn set_nonblocking(fd: &OwnedFd) {
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}

enum Role {
    Exit,
    Input,
    ToChild,
    Output(usize),
}

pub struct Relay {
    child: Pid,
    pidfd: OwnedFd,
    tty: bool,
    attach: bool,
    /// The command's stdin (pipe write end, or the pty master).
    to_child: Option<OwnedFd>,
    pending: Vec<u8>,
    close_requested: bool,
    stdin_closed: bool,
    /// The command's outputs and the frame kind of each; None once at EOF.
    outputs: Vec<Option<(OwnedFd, FrameKind)>>,
    input_open: bool,
    chunk: Vec<u8>,
    sink: Sink,
}

impl Relay {
    pub fn new(
        child: Pid,
        pidfd: OwnedFd,
        tty: bool,
        attach: bool,
        to_child: Option<OwnedFd>,
        outputs: Vec<(OwnedFd, FrameKind)>,
        sink: Sink,
    ) -> Relay {
        if let Some(fd) = &to_child {
            set_nonblocking(fd);
        }
        for (fd, _) in &outputs {
            set_nonblocking(fd);
        }
        Relay {
            child,
            pidfd,
            tty,
            attach,
            to_child,
            pending: Vec::new(),
            close_requested: false,
            stdin_closed: false,
            outputs: outputs.into_iter().map(Some).collect(),
            input_open: true,
            chunk: vec![0u8; CHUNK],
            sink,
        }
    }

    /// Relays until the command has exited; returns the helper's exit code.
    pub fn run(mut self, mut input: RelayInput) -> i32 {
        if self
            .sink
            .send(FrameKind::Pid, &proto::i32_payload(self.child.as_raw()))
            .is_err()
        {
            return self.abort();
        }
        while let Some((k, p)) = input.queued.pop_front() {
            self.on_frame(k, &p);
        }
        loop {
            self.maybe_close_stdin();
            let stdin = std::io::stdin();
            let mut fds = vec![PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            let mut roles = vec![Role::Exit];
            if self.input_open && self.pending.is_empty() {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                roles.push(Role::Input);
            }
            if let Some(fd) = &self.to_child
                && !self.pending.is_empty()
            {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                roles.push(Role::ToChild);
            }
            for (i, o) in self.outputs.iter().enumerate() {
                if let Some((fd, _)) = o {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    roles.push(Role::Output(i));
                }
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(_) => return self.abort(),
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            let mut exited = false;
            for (role, ready) in roles.into_iter().zip(ready) {
                if !ready {
                    continue;
                }
                match role {
                    Role::Exit => exited = true,
                    Role::Input => self.read_input(&mut input),
                    Role::ToChild => self.flush_to_child(),
                    Role::Output(i) => {
                        if self.pump(i).is_err() {
                            return self.abort();
                        }
                    }
                }
            }
            if exited {
                return self.finish();
            }
        }
    }

    fn on_frame(&mut self, kind: FrameKind, p: &[u8]) {
        match kind {
            FrameKind::Stdin if self.attach && !self.close_requested && self.to_child.is_some() => {
                self.pending.extend_from_slice(p)
            }
            FrameKind::CloseStdin => self.close_requested = true,
            FrameKind::Resize if self.tty => {
                if let (Some((rows, cols)), Some(fd)) = (proto::read_resize(p), &self.to_child) {
                    let _ = set_winsize(fd.as_fd(), rows, cols);
                }
            }
            FrameKind::Signal => {
                // A number the kernel would refuse is ignored, as before.
                if let Some(sig) = proto::read_i32(p, 0).and_then(Signal::from_number) {
                    let _ = sys::pidfd_send_signal(&self.pidfd, sig);
                }
            }
            _ => {}
        }
    }

    fn read_input(&mut self, input: &mut RelayInput) {
        match read_stdin(&mut self.chunk) {
            Ok(0) | Err(_) => {
                self.input_open = false;
                self.close_requested = true;
            }
            Ok(n) => {
                input.buf.extend_from_slice(&self.chunk[..n]);
                match proto::split(&mut input.buf) {
                    Ok(frames) => {
                        for (k, p) in frames {
                            self.on_frame(k, &p);
                        }
                    }
                    Err(_) => {
                        self.input_open = false;
                        self.close_requested = true;
                    }
                }
            }
        }
    }

    /// Once asked to and everything before has been written: EOF for the
    /// command (end of the pipe, or ^D on a terminal).
    fn maybe_close_stdin(&mut self) {
        if !self.close_requested || self.stdin_closed || !self.pending.is_empty() {
            return;
        }
        self.stdin_closed = true;
        if self.tty {
            if self.attach && self.to_child.is_some() {
                self.pending.push(EOT);
            }
        } else {
            self.to_child = None;
        }
    }

    fn flush_to_child(&mut self) {
        let Some(fd) = &self.to_child else {
            self.pending.clear();
            return;
        };
        if !write_pending(fd, &mut self.pending) {
            // The command closed its stdin (EPIPE) or the terminal is gone.
            self.pending.clear();
            self.close_requested = true;
            self.stdin_closed = true;
            if !self.tty {
                self.to_child = None;
            }
        }
    }

    /// One read from output `i`. Err: the daemon is gone.
    fn pump(&mut self, i: usize) -> nix::Result<()> {
        let Some((fd, kind)) = &self.outputs[i] else {
            return Ok(());
        };
        match nix::unistd::read(fd, &mut self.chunk) {
            Ok(0) => {
                self.outputs[i] = None;
                Ok(())
            }
            Ok(n) => {
                let kind = *kind;
                self.sink.send(kind, &self.chunk[..n])
            }
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => Ok(()),
            // EIO: every holder of the pty's slave side has closed it.
            Err(_) => {
                self.outputs[i] = None;
                Ok(())
            }
        }
    }

    /// The command has exited: reap it, relay what it left, report the exit.
    fn finish(mut self) -> i32 {
        let (code, signal) = self.reap();
        let deadline = std::time::Instant::now() + TTY_DRAIN_WAIT;
        for i in 0..self.outputs.len() {
            let mut reads = 0;
            while reads < DRAIN_READS {
                let Some((fd, _)) = &self.outputs[i] else {
                    break;
                };
                if self.tty {
                    // Terminal output is delivered asynchronously: wait for it.
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                    let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                    match poll(&mut p, PollTimeout::from(ms)) {
                        Ok(0) => break,
                        Ok(_) | Err(Errno::EINTR) => {}
                        Err(_) => break,
                    }
                }
                reads += 1;
                match nix::unistd::read(fd, &mut self.chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let kind = self.outputs[i].as_ref().map_or(FrameKind::Stdout, |o| o.1);
                        if self.sink.send(kind, &self.chunk[..n]).is_err() {
                            return code;
                        }
                    }
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) if self.tty => {}
                    Err(_) => break,
                }
            }
        }
        let _ = self
            .sink
            .send(FrameKind::Exit, &proto::exit_payload(code, signal));
        code
    }

    fn reap(&self) -> (i32, i32) {
        loop {
            match waitpid(self.child, None) {
                Ok(WaitStatus::Exited(_, code)) => return (code, 0),
                Ok(WaitStatus::Signaled(_, sig, _)) => return (128 + sig as i32, sig as i32),
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(_) => return (EXIT_SETUP, 0),
            }
        }
    }

    /// The daemon is gone: kill the command and leave.
    fn abort(self) -> i32 {
        let _ = sys::pidfd_send_signal(&self.pidfd, Signal::KILL);
        let _ = self.reap();
        EXIT_SETUP
    }
}
