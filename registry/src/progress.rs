//! What a pull reports while it runs: the image it resolved to, then each
//! blob's bytes (throttled to every 100 ms or 1 MiB) and its completion.
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    Config,
    Layer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// The reference was resolved to one image manifest.
    Resolved {
        /// Canonical reference, e.g. "docker.io/library/python:3.12".
        reference: String,
        /// The image manifest's digest.
        digest: String,
        /// The platform chosen from an index (None: a single-image manifest).
        platform: Option<String>,
        /// The blobs to fetch: digest, size, kind (the config first).
        blobs: Vec<(String, u64, BlobKind)>,
    },
    /// Progress of one blob.
    Blob {
        digest: String,
        kind: BlobKind,
        done_bytes: u64,
        total_bytes: u64,
        /// Bytes already on disk from an earlier, interrupted pull.
        resumed_bytes: u64,
        /// Downloaded and verified.
        done: bool,
    },
}

const EVERY: Duration = Duration::from_millis(100);
const EVERY_BYTES: u64 = 1024 * 1024;

/// Sends events without ever stalling the pull: a reader that falls
/// behind loses intermediate reports.
#[derive(Debug, Clone)]
pub(crate) struct Reporter {
    tx: mpsc::Sender<PullEvent>,
}

impl Reporter {
    pub fn new(tx: mpsc::Sender<PullEvent>) -> Self {
        Reporter { tx }
    }

    pub fn send(&self, ev: PullEvent) {
        let _ = self.tx.try_send(ev);
    }
}

/// Throttles the byte reports of one blob.
#[derive(Debug)]
pub(crate) struct BlobReporter {
    rep: Reporter,
    digest: String,
    kind: BlobKind,
    total: u64,
    resumed: u64,
    sent: u64,
    at: Instant,
}

impl BlobReporter {
    pub fn new(rep: Reporter, digest: &str, kind: BlobKind, total: u64) -> Self {
        BlobReporter {
            rep,
            digest: digest.to_owned(),
            kind,
            total,
            resumed: 0,
            sent: 0,
            at: Instant::now(),
        }
    }

    pub fn resumed(&mut self, bytes: u64) {
        self.resumed = bytes;
    }

    fn emit(&mut self, done_bytes: u64, done: bool) {
        self.sent = done_bytes;
        self.at = Instant::now();
        self.rep.send(PullEvent::Blob {
            digest: self.digest.clone(),
            kind: self.kind,
            done_bytes,
            total_bytes: self.total,
            resumed_bytes: self.resumed,
            done,
        });
    }

    /// Bytes so far (reported when enough time or bytes have passed).
    pub fn progress(&mut self, done_bytes: u64) {
        if done_bytes.saturating_sub(self.sent) >= EVERY_BYTES || self.at.elapsed() >= EVERY {
            self.emit(done_bytes, false);
        }
    }

    /// Reported at once (start of a download).
    pub fn now(&mut self, done_bytes: u64) {
        self.emit(done_bytes, false);
    }

    pub fn done(mut self) {
        let total = self.total;
        self.emit(total, true);
    }
}
