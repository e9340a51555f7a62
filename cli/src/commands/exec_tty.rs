//! The local terminal of `quilt exec -t`: its size, and raw mode for the
//! duration of an interactive session (restored on drop, also on errors).

use quilt_proto::v1::TerminalSize;
use rustix::termios::{OptionalActions, Termios, isatty, tcgetattr, tcgetwinsize, tcsetattr};

/// The size of the terminal on stdin (or stdout), if either is one.
pub fn size() -> Option<TerminalSize> {
    let ws = tcgetwinsize(std::io::stdin())
        .or_else(|_| tcgetwinsize(std::io::stdout()))
        .ok()?;
    (ws.ws_row > 0 && ws.ws_col > 0).then_some(TerminalSize {
        rows: u32::from(ws.ws_row),
        cols: u32::from(ws.ws_col),
    })
}

/// Whether stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    isatty(std::io::stdin())
}

/// Puts the terminal on stdin in raw mode until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// None when stdin is not a terminal (nothing to do).
    pub fn enable() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !isatty(&stdin) {
            return None;
        }
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}
