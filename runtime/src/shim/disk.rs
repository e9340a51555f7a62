//! The disk budget of a container, checked by its supervisor: what the
//! container wrote (its own layer, overlay work dir, logs and exec outputs,
//! everything in its directory) is measured from time to time; over budget,
//! the workload is killed and its exit says why. (A file system with
//! project quotas would refuse the writes themselves; this check works on
//! any file system.)
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Shortest time between two measurements.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// A measurement may take at most this share of the time (the interval
/// grows for large trees).
const DUTY: u32 = 20;

#[derive(Debug)]
pub struct DiskBudget {
    limit: u64,
    dir: PathBuf,
    next: Instant,
    interval: Duration,
}

impl DiskBudget {
    pub fn new(limit: u64, dir: &Path) -> DiskBudget {
        DiskBudget {
            limit,
            dir: dir.to_path_buf(),
            next: Instant::now() + MIN_INTERVAL,
            interval: MIN_INTERVAL,
        }
    }

    /// Time left until the next measurement is due.
    pub fn due_in(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    /// Measures when due; Some(used bytes) once the budget is exceeded.
    pub fn check(&mut self) -> Option<u64> {
        if Instant::now() < self.next {
            return None;
        }
        let t = Instant::now();
        let used = usage(&self.dir);
        self.interval = MIN_INTERVAL.max(t.elapsed() * DUTY);
        self.next = Instant::now() + self.interval;
        (used > self.limit).then_some(used)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// Bytes allocated under `dir` (st_blocks, hard links counted once),
/// without following symlinks or crossing into other file systems (the
/// rootfs mount point is the overlay, mounted only in the container).
pub fn usage(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let dev = top.dev();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut total = 0u64;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            total = total.saturating_add(m.blocks().saturating_mul(512));
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_allocated_bytes_once() {
        let d = tempfile::tempdir().unwrap();
        let before = usage(d.path());
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/a"), vec![1u8; 256 * 1024]).unwrap();
        std::fs::hard_link(d.path().join("sub/a"), d.path().join("b")).unwrap();
        std::os::unix::fs::symlink("/usr", d.path().join("l")).unwrap();
        let after = usage(d.path());
        let grew = after - before;
        assert!((256 * 1024..300 * 1024).contains(&grew), "grew by {grew}");
        let mut b = DiskBudget::new(100 * 1024, d.path());
        b.next = Instant::now();
        assert!(b.check().is_some_and(|u| u >= 256 * 1024));
        assert!(b.check().is_none(), "not due again at once");
    }
}
