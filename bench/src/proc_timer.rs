//! Timing whole processes: spawn + wait, measured with a monotonic clock.

use crate::stats::Samples;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The result of one timed process.
pub struct Timed {
    pub elapsed: Duration,
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` to completion (stdin closed, output captured) and times it.
pub fn run(argv: &[String]) -> Timed {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    finish(cmd)
}

/// Like `run`, for commands that leave a process behind that would inherit
/// pipes (`crun create`, `runc create`): stdout goes to /dev/null and stderr
/// to `errfile`, read back only on failure.
pub fn run_detached(argv: &[String], errfile: &Path) -> Timed {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match std::fs::File::create(errfile) {
        Ok(f) => {
            cmd.stderr(f);
        }
        Err(_) => {
            cmd.stderr(Stdio::null());
        }
    }
    let mut t = finish(cmd);
    if !t.ok {
        let msg = std::fs::read_to_string(errfile).unwrap_or_default();
        t.stderr = format!("{} {}", msg.trim(), t.stderr);
    }
    t
}

fn finish(mut cmd: Command) -> Timed {
    let t = Instant::now();
    let out = cmd.output();
    let elapsed = t.elapsed();
    match out {
        Ok(o) => Timed {
            elapsed,
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: if o.status.success() {
                String::from_utf8_lossy(&o.stderr).into_owned()
            } else {
                format!(
                    "{} ({})",
                    String::from_utf8_lossy(&o.stderr).trim(),
                    o.status
                )
            },
        },
        Err(e) => Timed {
            elapsed,
            ok: false,
            stdout: String::new(),
            stderr: format!("cannot run {:?}: {e}", cmd.get_program()),
        },
    }
}

/// Records a timed process as a sample (failures as errors).
pub fn record(s: &mut Samples, t: &Timed, what: &str) {
    if t.ok {
        s.ok(t.elapsed);
    } else {
        s.err("exit", format!("{what}: {}", first_line(&t.stderr)));
    }
}

pub fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

pub fn argv<I, S>(parts: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    parts.into_iter().map(Into::into).collect()
}
