//! Attached `run`: follow the output of a container from its very first byte,
//! start it, and exit with its exit code.

use quilt_proto::v1::{
    ContainerState, ExitStatus, GetContainerRequest, GetLogsRequest, GetLogsResponse,
    KillContainerRequest, RemoveContainerRequest, StartContainerRequest, StopContainerRequest,
    WaitContainerRequest, get_logs_response::Item,
};
use tokio::signal::unix::{SignalKind, signal};
use tonic::Code;

use super::attach_input::{Input, InputOptions};
use crate::client::Client;
use crate::error::{CliError, EXIT_ENGINE, exit_code_byte, status_message};
use crate::output::stream::{Sink, Target, print_error};

/// Seconds StopContainer waits after SIGTERM when the user presses Ctrl-C.
const STOP_TIMEOUT_SECS: u32 = 10;

/// Attaches to the CREATED container `id` (its input too, per `input`),
/// starts it and relays its output until it exits. Returns the process
/// exit code.
pub async fn start_attached(
    client: &mut Client,
    id: &str,
    auto_remove: bool,
    priority: i32,
    input: &InputOptions,
) -> Result<u8, CliError> {
    // Ctrl-C is handled (stop, then kill) from here on.
    let interrupts = signal(SignalKind::interrupt())?;

    // The response arrives once the server has registered the follower, so
    // nothing the container writes after StartContainer can be missed.
    let logs = client
        .get_logs(GetLogsRequest {
            id: id.to_owned(),
            follow: true,
            tail: None,
            since: None,
        })
        .await;
    let stream = match logs {
        Ok(response) => response.into_inner(),
        Err(status) => {
            if auto_remove {
                remove_quietly(client, id).await;
            }
            return Err(status.into());
        }
    };
    // The server holds the input until the container runs.
    let input = Input::open(client, id, input).await;

    if let Err(status) = client
        .start_container(StartContainerRequest {
            id: id.to_owned(),
            priority,
        })
        .await
    {
        // FAILED_PRECONDITION: the container could not start (command not
        // found, ...). The log stream then ends with its exit item, which
        // carries the reason and the 126/127 code, so keep reading it.
        if status.code() != tonic::Code::FailedPrecondition {
            drop(input);
            return Err(start_failed(client, id, auto_remove, &status).await);
        }
    }
    relay(client, id, stream, input, interrupts).await
}

/// `start -a [-i]`: starts the container `id` (created or ended), then
/// relays what this run writes until it exits.
pub async fn start_and_attach(
    client: &mut Client,
    id: &str,
    input: &InputOptions,
) -> Result<u8, CliError> {
    let interrupts = signal(SignalKind::interrupt())?;
    let input = Input::open(client, id, input).await;
    let started = client
        .start_container(StartContainerRequest {
            id: id.to_owned(),
            ..Default::default()
        })
        .await;
    if let Err(status) = started
        && status.code() != tonic::Code::FailedPrecondition
    {
        return Err(status.into());
    }
    // This run's output: from its start on (the log holds earlier runs').
    let since = client
        .get_container(GetContainerRequest { id: id.to_owned() })
        .await?
        .into_inner()
        .container
        .and_then(|c| c.started_at);
    let stream = client
        .get_logs(GetLogsRequest {
            id: id.to_owned(),
            follow: true,
            tail: None,
            since,
        })
        .await?
        .into_inner();
    relay(client, id, stream, input, interrupts).await
}

/// `attach`: the output of the running container `id` from now on and,
/// per `input`, its input, until it exits or the user detaches.
pub async fn attach_running(
    client: &mut Client,
    id: &str,
    input: &InputOptions,
) -> Result<u8, CliError> {
    let interrupts = signal(SignalKind::interrupt())?;
    let stream = client
        .get_logs(GetLogsRequest {
            id: id.to_owned(),
            follow: true,
            tail: Some(0),
            since: None,
        })
        .await?
        .into_inner();
    let input = Input::open(client, id, input).await;
    relay(client, id, stream, input, interrupts).await
}

/// Relays the log stream until the container exits (its exit code) or the
/// user types the detach keys (0, the container runs on).
async fn relay(
    client: &mut Client,
    id: &str,
    mut stream: tonic::Streaming<GetLogsResponse>,
    input: Option<Input>,
    mut interrupts: tokio::signal::unix::Signal,
) -> Result<u8, CliError> {
    let mut input = input;
    let mut detached = false;
    let exit = {
        let detach = async {
            match input.as_mut() {
                Some(i) => i.detach_typed().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(detach);
        let mut sink = Sink::stdio();
        let mut presses = 0u32;
        loop {
            tokio::select! {
                message = stream.message() => match message {
                    Ok(Some(GetLogsResponse { item: Some(Item::Entry(entry)) })) => {
                        sink.write(Target::of_log_stream(entry.stream), &entry.data)?;
                    }
                    Ok(Some(GetLogsResponse { item: Some(Item::Exit(exit)) })) => break Some(exit),
                    Ok(Some(GetLogsResponse { item: None })) => {}
                    Ok(None) => break None,
                    Err(status) => {
                        // The exit status still comes from WaitContainer below.
                        print_error(&format!(
                            "warning: the output stream broke ({}); output may be incomplete",
                            status_message(&status)
                        ));
                        break None;
                    }
                },
                _ = interrupts.recv() => {
                    presses += 1;
                    interrupt(client, id, presses)?;
                }
                () = &mut detach => {
                    detached = true;
                    break None;
                }
            }
        }
    };
    // The terminal is restored here, before anything else is printed.
    drop(input);
    if detached {
        print_error("read escape sequence");
        return Ok(0);
    }

    let exit = match exit {
        Some(exit) => exit,
        None => wait_exit(client, id).await?,
    };
    Ok(exit_code_of(&exit))
}

/// Ctrl-C: the first press stops the container gracefully, the second kills
/// it, the third gives up waiting.
fn interrupt(client: &Client, id: &str, presses: u32) -> Result<(), CliError> {
    let mut client = client.clone();
    let id = id.to_owned();
    match presses {
        1 => {
            tokio::spawn(async move {
                let request = StopContainerRequest {
                    id,
                    timeout_seconds: Some(STOP_TIMEOUT_SECS),
                };
                report_background(client.stop_container(request).await.err());
            });
        }
        2 => {
            tokio::spawn(async move {
                let request = KillContainerRequest {
                    id,
                    signal: "KILL".to_owned(),
                };
                report_background(client.kill_container(request).await.err());
            });
        }
        _ => {
            return Err(CliError::engine(format!(
                "interrupted; container {id} may still be running"
            )));
        }
    }
    Ok(())
}

/// Reports a failed stop/kill, unless the container is simply already gone
/// or no longer running.
fn report_background(error: Option<tonic::Status>) {
    if let Some(status) = error
        && !matches!(status.code(), Code::NotFound | Code::FailedPrecondition)
    {
        print_error(&status_message(&status));
    }
}

/// The exit status when the log stream ended without one.
async fn wait_exit(client: &mut Client, id: &str) -> Result<ExitStatus, CliError> {
    let response = client
        .wait_container(WaitContainerRequest { id: id.to_owned() })
        .await?
        .into_inner();
    response
        .exit
        .ok_or_else(|| CliError::engine(format!("no exit status for container {id}")))
}

/// The process exit code for a container's exit status; a FAILED start also
/// prints its reason.
pub fn exit_code_of(exit: &ExitStatus) -> u8 {
    if exit.state == ContainerState::Failed as i32 {
        if !exit.failure_reason.is_empty() {
            print_error(&exit.failure_reason);
        }
        if exit.exit_code == 0 {
            return EXIT_ENGINE;
        }
    }
    exit_code_byte(exit.exit_code)
}

/// StartContainer failed: report it, with the container's recorded exit
/// code (126/127) when the failure was recorded as a FAILED start.
pub(crate) async fn start_failed(
    client: &mut Client,
    id: &str,
    auto_remove: bool,
    status: &tonic::Status,
) -> CliError {
    print_error(&status_message(status));
    let recorded = client
        .get_container(GetContainerRequest { id: id.to_owned() })
        .await
        .ok()
        .and_then(|r| r.into_inner().container);
    let code = match &recorded {
        Some(c) if c.state == ContainerState::Failed as i32 => c
            .exit
            .as_ref()
            .map(|e| e.exit_code)
            .filter(|&code| code != 0)
            .map_or(EXIT_ENGINE, exit_code_byte),
        _ => EXIT_ENGINE,
    };
    if auto_remove && recorded.is_some() {
        remove_quietly(client, id).await;
    }
    CliError::silent(code)
}

/// Removal of a container that `--rm` asked to clean up; a failure is
/// reported on stderr, the caller's own error or exit code stays.
async fn remove_quietly(client: &mut Client, id: &str) {
    let res = client
        .remove_container(RemoveContainerRequest {
            id: id.to_owned(),
            force: true,
        })
        .await;
    if let Err(status) = res {
        print_error(&format!(
            "warning: could not remove container {id}: {}",
            status_message(&status)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let exited = |code| ExitStatus {
            exit_code: code,
            state: ContainerState::Exited as i32,
            ..Default::default()
        };
        assert_eq!(exit_code_of(&exited(0)), 0);
        assert_eq!(exit_code_of(&exited(7)), 7);
        assert_eq!(exit_code_of(&exited(137)), 137);

        let failed = |code| ExitStatus {
            exit_code: code,
            state: ContainerState::Failed as i32,
            ..Default::default()
        };
        assert_eq!(exit_code_of(&failed(127)), 127);
        assert_eq!(exit_code_of(&failed(126)), 126);
        assert_eq!(exit_code_of(&failed(0)), 125);
    }
}
