//! A workload's standard streams as asked at create (docker's `-t`, `-i`
//! and `StdinOnce`).
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stdio {
    /// A terminal on stdin, stdout and stderr (one output stream).
    pub tty: bool,
    /// Stdin stays open for clients to attach and type into.
    pub open_stdin: bool,
    /// The first attached client's end of input closes the workload's
    /// stdin (docker's `run -i`); otherwise a client detaches leaving it
    /// open.
    pub stdin_once: bool,
}

impl Stdio {
    /// Whether clients can attach input (the shim serves a socket).
    pub fn attachable(&self) -> bool {
        self.tty || self.open_stdin
    }

    /// What the shim is told.
    pub fn runtime(&self) -> quilt_runtime::StdioConfig {
        quilt_runtime::StdioConfig {
            tty: self.tty,
            open_stdin: self.open_stdin,
        }
    }
}
