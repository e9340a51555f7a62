//! Command dispatch: connect to quiltd, then run the chosen subcommand.

mod attach;
mod cp;
mod create;
mod events;
mod exec;
mod exec_detached;
mod exec_tty;
mod image;
mod image_progress;
mod inspect;
mod lifecycle;
mod login;
mod logs;
mod mounts;
mod ps;
mod pull;
mod spec;
mod volume;

use crate::args::{Cli, Command};
use crate::client;
use crate::error::CliError;

/// Runs the command line; returns the process exit code.
pub async fn dispatch(cli: Cli) -> Result<u8, CliError> {
    // Credentials are the user's files: no daemon needed.
    match cli.command {
        Command::Login(args) => return login::login(args),
        Command::Logout(args) => return login::logout(args),
        _ => {}
    }
    let target = client::Target::of(&cli)?;
    let mut client = client::connect(&target).await?;
    match cli.command {
        Command::Run(args) => create::run(&target, &mut client, args).await,
        Command::Create(args) => create::create(&target, &mut client, args).await,
        Command::Start(args) => lifecycle::start(&client, args).await,
        Command::Stop(args) => lifecycle::stop(&client, args).await,
        Command::Kill(args) => lifecycle::kill(&client, args).await,
        Command::Rm(args) => lifecycle::rm(&client, args).await,
        Command::Wait(args) => lifecycle::wait(&client, args).await,
        Command::Logs(args) => logs::logs(&mut client, args).await,
        Command::Exec(args) => exec::exec(&mut client, args).await,
        Command::Ps(args) => ps::ps(&mut client, args).await,
        Command::Status(args) => inspect::status(&mut client, args).await,
        Command::Inspect(args) => inspect::inspect(&mut client, args).await,
        Command::Events(args) => events::events(&mut client, args).await,
        Command::ExecLs(args) => exec_detached::ls(&mut client, args).await,
        Command::ExecWait(args) => exec_detached::wait(&mut client, args).await,
        Command::ExecKill(args) => exec_detached::kill(&mut client, args).await,
        Command::ExecLogs(args) => exec_detached::logs(&mut client, args).await,
        Command::Cp(args) => cp::cp(&mut client, args).await,
        Command::Volume(cmd) => volume::volume(&target, cmd).await,
        Command::Image(cmd) => image::image(&target, cmd).await,
        Command::Pull(args) => pull::pull(&target, args).await,
        Command::Login(_) | Command::Logout(_) => unreachable!("handled above"),
    }
}
