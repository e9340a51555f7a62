//! `exec-ls`, `exec-wait`, `exec-kill` and `exec-logs`: detached execs.

use quilt_proto::v1::exec_response::Frame as Out;
use quilt_proto::v1::{
    ExecExit, ExecLogsRequest, KillExecRequest, ListExecsRequest, WaitExecRequest,
};

use crate::args::IdArg;
use crate::args::exec::{ExecIdArg, ExecKillArgs, ExecLogsArgs};
use crate::client::Client;
use crate::error::CliError;
use crate::output::stream::{Sink, Target, print_stdout};

fn status_text(running: bool, exit: Option<&ExecExit>) -> String {
    match (running, exit) {
        (true, _) => "running".to_owned(),
        (false, Some(e)) if e.oom_killed => format!("exited({}, oom)", e.exit_code),
        (false, Some(e)) => format!("exited({})", e.exit_code),
        (false, None) => "exited".to_owned(),
    }
}

/// One line per exec: id, status, detached/tty flags, command.
pub async fn ls(client: &mut Client, args: IdArg) -> Result<u8, CliError> {
    let list = client
        .list_execs(ListExecsRequest {
            container_id: args.id,
        })
        .await?
        .into_inner();
    let mut out = String::from("EXEC ID                           STATUS        MODE  COMMAND\n");
    for e in list.execs {
        let mode = match (e.detached, e.tty) {
            (true, true) => "d,t",
            (true, false) => "d",
            (false, true) => "t",
            (false, false) => "-",
        };
        out.push_str(&format!(
            "{:<32}  {:<12}  {:<4}  {}\n",
            e.exec_id,
            status_text(e.running, e.exit.as_ref()),
            mode,
            e.command.join(" ")
        ));
    }
    print_stdout(&out)?;
    Ok(0)
}

/// Prints the exit code once the exec has exited.
pub async fn wait(client: &mut Client, args: ExecIdArg) -> Result<u8, CliError> {
    let info = client
        .wait_exec(WaitExecRequest {
            exec_id: args.exec_id,
        })
        .await?
        .into_inner()
        .exec
        .ok_or_else(|| CliError::engine("WaitExec answered without the exec"))?;
    let code = info
        .exit
        .ok_or_else(|| CliError::engine("WaitExec answered without an exit status"))?
        .exit_code;
    print_stdout(&format!("{code}\n"))?;
    Ok(0)
}

pub async fn kill(client: &mut Client, args: ExecKillArgs) -> Result<u8, CliError> {
    client
        .kill_exec(KillExecRequest {
            exec_id: args.exec_id,
            signal: args.signal,
        })
        .await?;
    Ok(0)
}

/// The exec's output on our stdout/stderr; with -f until it exits.
pub async fn logs(client: &mut Client, args: ExecLogsArgs) -> Result<u8, CliError> {
    let mut stream = client
        .exec_logs(ExecLogsRequest {
            exec_id: args.exec_id,
            follow: args.follow,
        })
        .await?
        .into_inner();
    let mut sink = Sink::stdio();
    let mut exited = false;
    while let Some(msg) = stream.message().await? {
        match msg.frame {
            Some(Out::Stdout(b)) => sink.write(Target::Stdout, &b)?,
            Some(Out::Stderr(b)) => sink.write(Target::Stderr, &b)?,
            Some(Out::Exit(_)) => exited = true,
            Some(Out::Started(_)) | None => {}
        }
    }
    if args.follow && !exited {
        return Err(CliError::engine(
            "the exec's output stream ended before it exited (did quiltd stop?)",
        ));
    }
    Ok(0)
}
