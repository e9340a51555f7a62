//! Progress of a long image operation, reported at most every 256 KiB or
//! 100 ms (plus at each phase change).
use std::time::{Duration, Instant};

/// One progress report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// What is being done, e.g. "hashing", "extracting layer 2/3".
    pub phase: String,
    pub done_bytes: u64,
    pub total_bytes: u64,
}

const EVERY_BYTES: u64 = 256 * 1024;
const EVERY: Duration = Duration::from_millis(100);

/// Throttles progress reports for a callback.
pub(super) struct Reporter<'a> {
    cb: &'a mut dyn FnMut(Progress),
    phase: String,
    total: u64,
    done: u64,
    sent: u64,
    at: Instant,
}

impl<'a> Reporter<'a> {
    pub fn new(cb: &'a mut dyn FnMut(Progress)) -> Self {
        Reporter {
            cb,
            phase: String::new(),
            total: 0,
            done: 0,
            sent: 0,
            at: Instant::now(),
        }
    }

    /// Starts a phase (reported at once).
    pub fn phase(&mut self, phase: impl Into<String>, total: u64) {
        self.phase = phase.into();
        self.total = total;
        self.done = 0;
        self.emit();
    }

    /// `n` more bytes done.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if self.done - self.sent >= EVERY_BYTES || self.at.elapsed() >= EVERY {
            self.emit();
        }
    }

    /// Reports the phase as complete.
    pub fn finish_phase(&mut self) {
        self.done = self.done.max(self.total);
        self.emit();
    }

    fn emit(&mut self) {
        self.sent = self.done;
        self.at = Instant::now();
        (self.cb)(Progress {
            phase: self.phase.clone(),
            done_bytes: self.done,
            total_bytes: self.total.max(self.done),
        });
    }
}
