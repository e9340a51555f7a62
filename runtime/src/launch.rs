//! Starting a container: spawns `quilt-shim run`, hands it the config and
//! waits for its StartReport. Blocking; call off the reactor.
use crate::spec::{ContainerConfig, StartReport};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot spawn {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("shim protocol error: {0}")]
    Protocol(String),
}

/// Spawns `SHIM run`, writes `config` as JSON to its stdin, reads the one-line
/// JSON StartReport from its stdout. The shim stays the daemon's child; the
/// caller reaps it later with `proc::try_reap` once its pidfd is readable.
/// When the report is Failed the shim has already exited; it is reaped here.
pub fn start(shim: &Path, config: &ContainerConfig) -> Result<StartReport, LaunchError> {
    let json = serde_json::to_vec(config)
        .map_err(|e| LaunchError::Protocol(format!("cannot encode config: {e}")))?;
    let mut child = Command::new(shim)
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Until it redirects its stderr to DIR/shim.log, early failures of the
        // shim (e.g. a panic) show up in the daemon's own stderr.
        .stderr(Stdio::inherit())
        .env_clear()
        // Not in quiltd's process group: nothing sent to that group reaches
        // a supervisor (it makes a session of its own right away).
        .process_group(0)
        .spawn()
        .map_err(|e| LaunchError::Spawn(shim.display().to_string(), e))?;

    let mut stdin = child.stdin.take().expect("stdin piped");
    let write_res = stdin.write_all(&json);
    drop(stdin);

    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = Vec::with_capacity(256);
    let read_res = BufReader::new(stdout).read_until(b'\n', &mut line);

    let fail = |child: &mut std::process::Child, what: String| {
        // The shim misbehaved: make sure it is gone and reaped.
        let _ = child.kill();
        let status = child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        LaunchError::Protocol(format!("{what} (shim {status})"))
    };
    if let Err(e) = read_res {
        return Err(fail(&mut child, format!("reading the start report: {e}")));
    }
    if line.is_empty() {
        let what = match write_res {
            Err(e) => format!("shim exited without a start report (writing config: {e})"),
            Ok(()) => "shim exited without a start report".to_string(),
        };
        return Err(fail(&mut child, what));
    }
    let report: StartReport = match serde_json::from_slice(&line) {
        Ok(r) => r,
        Err(e) => {
            let text = String::from_utf8_lossy(&line).trim().to_string();
            return Err(fail(&mut child, format!("bad start report {text:?}: {e}")));
        }
    };
    match &report {
        StartReport::Failed { .. } => {
            // The shim exits right after reporting a failure.
            let _ = child.wait();
        }
        StartReport::Started { .. } => {
            // The shim supervises the container from now on; the caller reaps
            // it (dropping a std Child neither waits for nor kills it).
            drop(child);
        }
    }
    Ok(report)
}
