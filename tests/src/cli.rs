//! Running the `quilt` CLI (or any program) with a bounded wait.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What a finished command left behind.
#[derive(Clone)]
pub struct CliOutput {
    pub args: Vec<String>,
    /// Exit code, or None if it was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl fmt::Debug for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`quilt {}` exited with {:?} after {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args.join(" "),
            self.code,
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }
}

impl CliOutput {
    /// Asserts the exit code and returns self for chaining.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self:?}");
        self
    }

    /// Asserts success and returns the trimmed stdout.
    #[track_caller]
    pub fn ok(&self) -> String {
        self.expect_code(0);
        self.stdout.trim().to_string()
    }

    /// Asserts an engine error: exit 125 and a non-empty message on stderr.
    #[track_caller]
    pub fn expect_engine_error(&self) -> &Self {
        self.expect_code(125);
        assert!(
            !self.stderr.trim().is_empty(),
            "an engine error must explain itself on stderr: {self:?}"
        );
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Stdout split into trimmed, non-empty lines.
    pub fn lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// Runs `program args...` with stdin closed, waits at most `timeout` (then
/// SIGKILLs it and panics), and collects its output.
pub fn run_program(
    program: &Path,
    args: &[OsString],
    env: &[(String, String)],
    timeout: Duration,
) -> CliOutput {
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_remove("QUILT_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(timeout) {
        Ok(r) => r.unwrap_or_else(|e| panic!("waiting for {}: {e}", program.display())),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let partial = rx
                .recv_timeout(Duration::from_secs(5))
                .ok()
                .and_then(Result::ok);
            let (so, se) = partial
                .map(|o| {
                    (
                        String::from_utf8_lossy(&o.stdout).into_owned(),
                        String::from_utf8_lossy(&o.stderr).into_owned(),
                    )
                })
                .unwrap_or_default();
            panic!(
                "`{} {}` did not finish within {timeout:?}; killed it\n--- stdout ---\n{so}\n--- stderr ---\n{se}",
                program.display(),
                shown.join(" ")
            );
        }
    };
    CliOutput {
        args: shown,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}
