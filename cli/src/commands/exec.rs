//! `quilt exec [-i] [-t] [-d]`: a streaming Exec session.
//!
//! The request stream carries the start frame, then (with -i) stdin chunks
//! read by a dedicated thread (a blocking read of a terminal must never
//! hold up the exit), close_stdin at end of input, and (with -t) a resize
//! frame on every SIGWINCH. The process exits with the command's code.

use quilt_proto::v1::exec_request::Frame as In;
use quilt_proto::v1::exec_response::Frame as Out;
use quilt_proto::v1::{ExecRequest, ExecStart};
use std::io::Read;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::exec_tty::{self, RawMode};
use crate::args::exec::ExecArgs;
use crate::client::Client;
use crate::error::{CliError, exit_code_byte};
use crate::output::stream::{Sink, Target, print_stdout};

const STDIN_CHUNK: usize = 32 * 1024;

fn frame(f: In) -> ExecRequest {
    ExecRequest { frame: Some(f) }
}

/// Runs the command in the container, relays its streams and exits with
/// its exit code (the stream's final `exit` frame).
pub async fn exec(client: &mut Client, args: ExecArgs) -> Result<u8, CliError> {
    let start = frame(In::Start(ExecStart {
        container_id: args.id().to_owned(),
        command: args.command().to_vec(),
        env: crate::args::values::resolve_env(&args.env),
        working_dir: args.workdir.clone().unwrap_or_default(),
        tty: args.tty,
        terminal_size: if args.tty { exec_tty::size() } else { None },
        attach_stdin: args.interactive,
        detach: args.detach,
        user: args.user.clone().unwrap_or_default(),
    }));
    if args.detach {
        return detached(client, start).await;
    }
    let (tx, rx) = mpsc::channel::<ExecRequest>(16);
    tx.send(start)
        .await
        .map_err(|_| CliError::engine("exec request stream closed"))?;
    let mut stream = client.exec(ReceiverStream::new(rx)).await?.into_inner();

    // From here on the terminal is raw until this function returns.
    let _raw = if args.tty && args.interactive {
        RawMode::enable()
    } else {
        None
    };
    if args.interactive {
        spawn_stdin_reader(tx.clone());
    }
    if args.tty && exec_tty::stdin_is_tty() {
        spawn_resizer(tx.clone())?;
    }
    // Without -i and -t the request stream is done: half-close it.
    drop(tx);

    let mut sink = Sink::stdio();
    while let Some(msg) = stream.message().await? {
        match msg.frame {
            Some(Out::Stdout(b)) => sink.write(Target::Stdout, &b)?,
            Some(Out::Stderr(b)) => sink.write(Target::Stderr, &b)?,
            Some(Out::Exit(e)) => return Ok(exit_code_byte(e.exit_code)),
            Some(Out::Started(_)) | None => {}
        }
    }
    Err(CliError::engine(
        "the exec stream ended without an exit status",
    ))
}

/// -d: prints the exec id the server answers with.
async fn detached(client: &mut Client, start: ExecRequest) -> Result<u8, CliError> {
    let mut stream = client.exec(tokio_stream::iter([start])).await?.into_inner();
    while let Some(msg) = stream.message().await? {
        if let Some(Out::Started(s)) = msg.frame {
            print_stdout(&format!("{}\n", s.exec_id))?;
            return Ok(0);
        }
    }
    Err(CliError::engine("the server did not report an exec id"))
}

/// Reads stdin on its own thread (left behind at exit) and sends it as
/// stdin frames, then close_stdin at end of input.
fn spawn_stdin_reader(tx: mpsc::Sender<ExecRequest>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; STDIN_CHUNK];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(frame(In::Stdin(buf[..n].to_vec())))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    crate::output::stream::print_error(&format!(
                        "warning: reading stdin failed ({e}): the command's input is closed early"
                    ));
                    break;
                }
            }
        }
        let _ = tx.blocking_send(frame(In::CloseStdin(true)));
    });
}

/// Sends the new terminal size on every SIGWINCH.
fn spawn_resizer(tx: mpsc::Sender<ExecRequest>) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut winch = signal(SignalKind::window_change())?;
    tokio::spawn(async move {
        while winch.recv().await.is_some() {
            if let Some(size) = exec_tty::size()
                && tx.send(frame(In::Resize(size))).await.is_err()
            {
                return;
            }
        }
    });
    Ok(())
}
