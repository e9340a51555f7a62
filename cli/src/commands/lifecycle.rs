//! `start`, `stop`, `restart`, `kill`, `rm`, `wait`, `pause` and `unpause`: one call
//! per container named.

use std::future::Future;

use quilt_proto::v1::{
    ContainerState, GetContainerRequest, KillContainerRequest, PauseContainerRequest,
    RemoveContainerRequest, RestartContainerRequest, StartContainerRequest, StopContainerRequest,
    UnpauseContainerRequest, WaitContainerRequest,
};

use super::attach_input::InputOptions;
use crate::args::lifecycle::{AttachArgs, IdsArgs, KillArgs, RmArgs, StartArgs, StopArgs};
use crate::client::Client;
use crate::error::{CliError, EXIT_ENGINE};
use crate::output::stream::{print_error, print_stdout};

/// Runs `op` for every id in order. Each success prints what `op` returns;
/// each failure prints its error, and the command then fails with 125.
async fn for_each<F, Fut>(client: &Client, ids: &[String], mut op: F) -> Result<u8, CliError>
where
    F: FnMut(Client, String) -> Fut,
    Fut: Future<Output = Result<String, CliError>>,
{
    let mut failed = false;
    for id in ids {
        match op(client.clone(), id.clone()).await {
            Ok(line) => print_stdout(&format!("{line}\n"))?,
            Err(err) => {
                failed = true;
                if let Some(message) = &err.message {
                    print_error(message);
                }
            }
        }
    }
    if failed {
        Err(CliError::silent(EXIT_ENGINE))
    } else {
        Ok(0)
    }
}

pub async fn start(client: &mut Client, args: StartArgs) -> Result<u8, CliError> {
    if args.attach || args.interactive {
        let [id] = args.ids.as_slice() else {
            return Err(CliError::engine(
                "you cannot start and attach multiple containers at once",
            ));
        };
        let c = container(client, id).await?;
        let stdio = c.stdio.unwrap_or_default();
        let input = InputOptions {
            stdin: args.interactive && stdio.open_stdin,
            tty: stdio.tty,
            close_at_eof: stdio.stdin_once && !stdio.tty,
            detach_keys: args.detach_keys.unwrap_or_default(),
        };
        return super::attach::start_and_attach(client, &c.id, &input).await;
    }
    for_each(client, &args.ids, |mut client, id| async move {
        client
            .start_container(StartContainerRequest {
                id: id.clone(),
                ..Default::default()
            })
            .await?;
        Ok(id)
    })
    .await
}

/// The container `id` as the server has it.
async fn container(client: &mut Client, id: &str) -> Result<quilt_proto::v1::Container, CliError> {
    client
        .get_container(GetContainerRequest { id: id.to_owned() })
        .await?
        .into_inner()
        .container
        .ok_or_else(|| CliError::engine(format!("no such container: {id}")))
}

/// `attach`: a running container's output from now on and its input.
pub async fn attach(client: &mut Client, args: AttachArgs) -> Result<u8, CliError> {
    let c = container(client, &args.id).await?;
    let running = [
        ContainerState::Running as i32,
        ContainerState::Paused as i32,
    ];
    if !running.contains(&c.state) {
        return Err(CliError::engine(format!(
            "you cannot attach to a stopped container, start it first: {}",
            c.name
        )));
    }
    let stdio = c.stdio.unwrap_or_default();
    let input = InputOptions {
        stdin: !args.no_stdin && stdio.open_stdin,
        tty: stdio.tty,
        close_at_eof: stdio.stdin_once && !stdio.tty,
        detach_keys: args.detach_keys.unwrap_or_default(),
    };
    if input.stdin && input.tty && !super::exec_tty::stdin_is_tty() {
        return Err(CliError::engine(
            "the input device is not a TTY: the container has a terminal (use --no-stdin to only watch it)",
        ));
    }
    super::attach::attach_running(client, &c.id, &input).await
}

pub async fn stop(client: &Client, args: StopArgs) -> Result<u8, CliError> {
    let timeout_seconds = args.timeout;
    for_each(client, &args.ids, |mut client, id| async move {
        client
            .stop_container(StopContainerRequest {
                id: id.clone(),
                timeout_seconds,
            })
            .await?;
        Ok(id)
    })
    .await
}

pub async fn restart(client: &Client, args: StopArgs) -> Result<u8, CliError> {
    let timeout_seconds = args.timeout;
    for_each(client, &args.ids, |mut client, id| async move {
        client
            .restart_container(RestartContainerRequest {
                id: id.clone(),
                timeout_seconds,
            })
            .await?;
        Ok(id)
    })
    .await
}

pub async fn kill(client: &Client, args: KillArgs) -> Result<u8, CliError> {
    let signal = args.signal;
    for_each(client, &args.ids, |mut client, id| {
        let signal = signal.clone();
        async move {
            client
                .kill_container(KillContainerRequest {
                    id: id.clone(),
                    signal,
                })
                .await?;
            Ok(id)
        }
    })
    .await
}

pub async fn rm(client: &Client, args: RmArgs) -> Result<u8, CliError> {
    let force = args.force;
    for_each(client, &args.ids, |mut client, id| async move {
        client
            .remove_container(RemoveContainerRequest {
                id: id.clone(),
                force,
            })
            .await?;
        Ok(id)
    })
    .await
}

/// `quilt rename OLD NEW`: prints nothing on success, as docker.
pub async fn rename(client: &mut Client, id: String, name: String) -> Result<u8, CliError> {
    client
        .rename_container(quilt_proto::v1::RenameContainerRequest { id, name })
        .await?;
    Ok(0)
}

/// Prints each container's exit code once it has exited.
pub async fn wait(client: &Client, args: IdsArgs) -> Result<u8, CliError> {
    for_each(client, &args.ids, |mut client, id| async move {
        let response = client
            .wait_container(WaitContainerRequest { id: id.clone() })
            .await?
            .into_inner();
        let exit = response
            .exit
            .ok_or_else(|| CliError::engine(format!("no exit status for container {id}")))?;
        Ok(exit.exit_code.to_string())
    })
    .await
}

pub async fn pause(client: &Client, args: IdsArgs) -> Result<u8, CliError> {
    for_each(client, &args.ids, |mut client, id| async move {
        client
            .pause_container(PauseContainerRequest { id: id.clone() })
            .await?;
        Ok(id)
    })
    .await
}

pub async fn unpause(client: &Client, args: IdsArgs) -> Result<u8, CliError> {
    for_each(client, &args.ids, |mut client, id| async move {
        client
            .unpause_container(UnpauseContainerRequest { id: id.clone() })
            .await?;
        Ok(id)
    })
    .await
}
