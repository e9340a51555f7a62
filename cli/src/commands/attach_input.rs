//! The input side of an attached container (`run -i/-t`, `start -a -i`,
//! `attach`): an AttachInput stream fed with what is typed (read on a
//! thread of its own, watched for the detach keys on a terminal) and the
//! terminal's size on every SIGWINCH. The output side is the log follower
//! in `attach`.

use quilt_proto::v1::attach_input_request::Frame;
use quilt_proto::v1::{AttachInputRequest, TerminalSize};
use std::io::Read;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::exec_tty::{self, RawMode};
use crate::client::Client;
use crate::output::stream::print_error;
use quilt_proto::detach_keys::{DetachKeys, Matcher};

const STDIN_CHUNK: usize = 32 * 1024;

/// What to attach.
#[derive(Debug, Clone)]
pub struct InputOptions {
    /// Relay this process's stdin.
    pub stdin: bool,
    /// The container has a terminal: raw mode here, resizes, detach keys.
    pub tty: bool,
    /// At the end of this process's stdin, close the container's.
    pub close_at_eof: bool,
    pub detach_keys: DetachKeys,
}

/// An open input stream; the terminal is raw while it lives.
pub struct Input {
    /// Fires when the detach keys were typed.
    detached: oneshot::Receiver<()>,
    /// Holds the stream open (without stdin: for the resizes).
    _tx: mpsc::Sender<AttachInputRequest>,
    _raw: Option<RawMode>,
}

fn frame(f: Frame) -> AttachInputRequest {
    AttachInputRequest { frame: Some(f) }
}

impl Input {
    /// Resolves once the detach keys were typed (never otherwise).
    pub async fn detach_typed(&mut self) {
        if (&mut self.detached).await.is_ok() {
            return;
        }
        std::future::pending().await
    }

    /// Opens the stream for container `id` (the server waits for it to
    /// run). None when there is nothing to relay.
    pub async fn open(client: &Client, id: &str, opts: &InputOptions) -> Option<Input> {
        if !opts.stdin && !opts.tty {
            return None;
        }
        let (tx, rx) = mpsc::channel::<AttachInputRequest>(16);
        let _ = tx.send(frame(Frame::ContainerId(id.to_owned()))).await;
        let mut client = client.clone();
        tokio::spawn(async move {
            if let Err(status) = client.attach_input(ReceiverStream::new(rx)).await
                && status.code() != tonic::Code::FailedPrecondition
                && status.code() != tonic::Code::Cancelled
            {
                print_error(&format!(
                    "warning: input to the container failed: {}",
                    crate::error::status_message(&status)
                ));
            }
        });
        let local_tty = exec_tty::stdin_is_tty();
        let raw = if opts.tty && opts.stdin && local_tty {
            RawMode::enable()
        } else {
            None
        };
        let (detach_tx, detached) = oneshot::channel();
        if opts.stdin {
            let keys = (opts.tty && local_tty).then(|| opts.detach_keys.clone());
            spawn_reader(tx.clone(), keys, opts.close_at_eof, detach_tx);
        }
        if opts.tty
            && let Some(size) = exec_tty::size()
        {
            // Delivered once the container's terminal exists.
            let _ = tx.send(frame(Frame::Resize(size))).await;
            spawn_resizer(tx.clone());
        }
        Some(Input {
            detached,
            _tx: tx,
            _raw: raw,
        })
    }
}

/// Reads stdin on its own thread (left behind at exit): stdin frames, then
/// close_stdin at its end when asked. With detach keys, the sequence stops
/// it and fires `detached` instead.
fn spawn_reader(
    tx: mpsc::Sender<AttachInputRequest>,
    keys: Option<DetachKeys>,
    close_at_eof: bool,
    detached: oneshot::Sender<()>,
) {
    std::thread::spawn(move || {
        let mut matcher = keys.map(Matcher::new);
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; STDIN_CHUNK];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let (data, detach) = match matcher.as_mut() {
                        Some(m) => {
                            let fed = m.feed(&buf[..n]);
                            (fed.send, fed.detach)
                        }
                        None => (buf[..n].to_vec(), false),
                    };
                    if !data.is_empty() && tx.blocking_send(frame(Frame::Stdin(data))).is_err() {
                        return;
                    }
                    if detach {
                        let _ = detached.send(());
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    print_error(&format!(
                        "warning: reading stdin failed ({e}): the container's input ends here"
                    ));
                    break;
                }
            }
        }
        if close_at_eof {
            let _ = tx.blocking_send(frame(Frame::CloseStdin(true)));
        }
    });
}

/// Sends the new terminal size on every SIGWINCH.
fn spawn_resizer(tx: mpsc::Sender<AttachInputRequest>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    tokio::spawn(async move {
        while winch.recv().await.is_some() {
            if let Some(TerminalSize { rows, cols }) = exec_tty::size()
                && tx
                    .send(frame(Frame::Resize(TerminalSize { rows, cols })))
                    .await
                    .is_err()
            {
                return;
            }
        }
    });
}
