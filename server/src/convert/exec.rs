//! Exec messages: the start frame as an engine spec, input frames, output
//! frames and exec records.
use super::{non_empty, ts};
use quilt_proto::v1 as pb;
use quilt_proto::v1::exec_request::Frame as In;
use quilt_proto::v1::exec_response::Frame as Out;
use quilt_sync_engine::{ExecEvent, ExecExit, ExecInfo, ExecInput, ExecSpec};

/// Terminal sizes are u16 in the kernel; larger values are clamped.
pub fn dim(v: u32) -> u16 {
    v.min(u32::from(u16::MAX)) as u16
}

/// The `start` frame of an Exec.
pub fn exec_spec(start: pb::ExecStart) -> ExecSpec {
    let size = start.terminal_size.unwrap_or_default();
    ExecSpec {
        container: start.container_id,
        argv: start.command,
        env: start.env,
        workdir: non_empty(start.working_dir),
        tty: start.tty,
        rows: dim(size.rows),
        cols: dim(size.cols),
        attach_stdin: start.attach_stdin && !start.detach,
        detach: start.detach,
        user: non_empty(start.user),
    }
}

/// A later input frame; None for frames that carry nothing to relay.
pub fn exec_input(f: In) -> Option<ExecInput> {
    Some(match f {
        In::Stdin(b) => ExecInput::Stdin(b),
        In::Resize(s) => ExecInput::Resize {
            rows: dim(s.rows),
            cols: dim(s.cols),
        },
        In::Signal(s) => ExecInput::Signal(s),
        In::CloseStdin(true) => ExecInput::CloseStdin,
        In::CloseStdin(false) | In::Start(_) => return None,
    })
}

pub fn exec_frame(ev: ExecEvent) -> Out {
    match ev {
        ExecEvent::Stdout(b) => Out::Stdout(b),
        ExecEvent::Stderr(b) => Out::Stderr(b),
        ExecEvent::Exit(e) => Out::Exit(exec_exit(&e)),
    }
}

pub fn exec_exit(e: &ExecExit) -> pb::ExecExit {
    pb::ExecExit {
        exit_code: e.exit_code,
        signal: e.signal,
        oom_killed: e.oom_killed,
    }
}

pub fn exec_info(i: &ExecInfo) -> pb::ExecInfo {
    pb::ExecInfo {
        exec_id: i.id.clone(),
        container_id: i.container_id.clone(),
        command: i.command.clone(),
        tty: i.tty,
        detached: i.detached,
        running: i.running,
        exit: i.exit.as_ref().map(exec_exit),
        started_at: Some(ts(i.started_at_ns)),
        finished_at: i.finished_at_ns.map(ts),
    }
}
