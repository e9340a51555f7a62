//! The progress bar of `quilt image import|build`: one line on stderr,
//! redrawn in place, shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};

const WIDTH: usize = 30;

pub struct ProgressBar {
    enabled: bool,
    drawn: bool,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One rendered line (no carriage return).
pub fn render(phase: &str, done: u64, total: u64) -> String {
    if total == 0 {
        return format!("{phase}: {:.1} MiB", mib(done));
    }
    let frac = (done as f64 / total as f64).clamp(0.0, 1.0);
    let filled = (frac * WIDTH as f64).round() as usize;
    format!(
        "{phase:<24} [{}{}] {:>3.0}% {:.1}/{:.1} MiB",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled),
        frac * 100.0,
        mib(done),
        mib(total)
    )
}

impl ProgressBar {
    pub fn new() -> Self {
        ProgressBar {
            enabled: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    pub fn update(&mut self, phase: &str, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", render(phase, done, total));
        let _ = err.flush();
        self.drawn = true;
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.enabled && self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn renders() {
        let line = render("extracting layer 1/2", 512 * 1024, 1024 * 1024);
        assert!(line.contains(" 50% 0.5/1.0 MiB"), "{line}");
        assert!(line.contains(&format!("[{}{}]", "#".repeat(15), "-".repeat(15))));
        assert_eq!(render("copying", 1024 * 1024, 0), "copying: 1.0 MiB");
        assert!(render("x", 10, 5).contains("100%"));
    }
}
