//! Command dispatch: connect to quiltd, then run the chosen subcommand.

mod attach;
mod attach_input;
mod cp;
mod create;
mod events;
mod exec;
mod exec_detached;
mod exec_tty;
mod image;
mod image_io;
mod image_progress;
mod inspect;
mod lifecycle;
mod lifetime;
mod login;
mod logs;
mod mounts;
pub mod network;
mod node;
mod pool;
mod prune;
mod ps;
mod pull;
mod spec;
mod stats;
mod system;
mod top;
mod volume;

use crate::args::image::ImageCommand;
use crate::args::{Cli, Command, SystemCommand};
use crate::client;
use crate::error::CliError;

/// Runs the command line; returns the process exit code.
pub async fn dispatch(cli: Cli) -> Result<u8, CliError> {
    let target = client::Target::of(&cli)?;
    // The container service's client, for the commands that use it; the
    // others connect to their own service.
    let connect = || client::connect(&target);
    match cli.command {
        Command::Run(args) => create::run(&target, &mut connect().await?, args).await,
        Command::Create(args) => create::create(&target, &mut connect().await?, args).await,
        Command::Start(args) => lifecycle::start(&mut connect().await?, args).await,
        Command::Attach(args) => lifecycle::attach(&mut connect().await?, args).await,
        Command::Stop(args) => lifecycle::stop(&connect().await?, args).await,
        Command::Kill(args) => lifecycle::kill(&connect().await?, args).await,
        Command::Rm(args) => lifecycle::rm(&connect().await?, args).await,
        Command::Wait(args) => lifecycle::wait(&connect().await?, args).await,
        Command::Logs(args) => logs::logs(&mut connect().await?, args).await,
        Command::Exec(args) => exec::exec(&mut connect().await?, args).await,
        Command::Ps(args) => ps::ps(&mut connect().await?, args).await,
        Command::Status(args) => inspect::status(&mut connect().await?, args).await,
        Command::Inspect(args) => inspect::inspect(&mut connect().await?, args).await,
        Command::Events(args) => events::events(&mut connect().await?, args).await,
        Command::ExecLs(args) => exec_detached::ls(&mut connect().await?, args).await,
        Command::ExecWait(args) => exec_detached::wait(&mut connect().await?, args).await,
        Command::ExecKill(args) => exec_detached::kill(&mut connect().await?, args).await,
        Command::ExecLogs(args) => exec_detached::logs(&mut connect().await?, args).await,
        Command::Cp(args) => cp::cp(&mut connect().await?, args).await,
        Command::Rename { id, name } => lifecycle::rename(&mut connect().await?, id, name).await,
        Command::Restart(args) => lifecycle::restart(&connect().await?, args).await,
        Command::Pause(args) => lifecycle::pause(&connect().await?, args).await,
        Command::Unpause(args) => lifecycle::unpause(&connect().await?, args).await,
        Command::Stats(args) => stats::stats(&mut connect().await?, args).await,
        Command::Top(args) => top::top(&mut connect().await?, args).await,
        Command::Lifetime(args) => lifetime::lifetime(&mut connect().await?, args).await,
        Command::Container(cmd) => prune::container(&mut connect().await?, cmd).await,
        Command::Volume(cmd) => volume::volume(&target, cmd).await,
        Command::Network(cmd) => network::network(&target, cmd).await,
        Command::Port(args) => network::port(&mut connect().await?, args).await,
        Command::Image(cmd) => image::image(&target, cmd).await,
        Command::Images { format } => image::image(&target, ImageCommand::Ls { format }).await,
        Command::Rmi { names } => image::image(&target, ImageCommand::Rm { names }).await,
        Command::Tag(args) => image::image(&target, ImageCommand::Tag(args)).await,
        Command::Save(args) => image::image(&target, ImageCommand::Save(args)).await,
        Command::Load(args) => image::image(&target, ImageCommand::Load(args)).await,
        Command::Commit(args) => image_io::commit(&target, args).await,
        Command::Export(args) => image_io::export(&mut connect().await?, args).await,
        Command::Info { format } => system::info(&target, format).await,
        Command::Version => system::version(&target).await,
        Command::System(SystemCommand::Info { format }) => {
            system::system_info(&target, format).await
        }
        Command::System(SystemCommand::Df) => image::system_df(&target).await,
        Command::Pool(cmd) => pool::pool(&target, cmd).await,
        Command::Node(cmd) => node::node(&target, cmd).await,
        Command::Pull(args) => pull::pull(&target, args).await,
        // Credentials are the user's files: no daemon needed.
        Command::Login(args) => login::login(args),
        Command::Logout(args) => login::logout(args),
    }
}
