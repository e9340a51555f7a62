//! Disk space held back next to the database. When the disk fills up, new
//! work is refused (RESOURCE_EXHAUSTED), but the facts the engine must not
//! lose (an exit, a failure, a removal) are still recorded: their writes
//! release this file and try again. It is made again once a write succeeds
//! and there is room.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How much space is held back: enough for thousands of small WAL frames.
const RESERVE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(super) struct Reserve {
    /// None for a database on another host (PostgreSQL): nothing to hold.
    path: Option<PathBuf>,
    /// Set while the file is missing (released, or never made).
    released: Arc<AtomicBool>,
}

impl Reserve {
    pub fn new(db_path: &Path) -> Reserve {
        let mut name = db_path.as_os_str().to_owned();
        name.push(".reserve");
        Reserve {
            path: Some(PathBuf::from(name)),
            released: Arc::new(AtomicBool::new(true)),
        }
    }

    /// No reserve: the database's disk is not ours.
    pub fn none() -> Reserve {
        Reserve {
            path: None,
            released: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Makes the reserve file if it is missing (best effort, off the reactor).
    pub async fn ensure(&self) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let released = self.released.clone();
        let _ = tokio::task::spawn_blocking(move || make(&path, &released)).await;
    }

    /// After a successful write: remake a released reserve in the background.
    pub fn refill_if_released(&self) {
        if let Some(path) = &self.path
            && self.released.load(Ordering::Relaxed)
        {
            let (path, released) = (path.clone(), self.released.clone());
            // Only one refill at a time: claim it by clearing the flag.
            if released.swap(false, Ordering::AcqRel) {
                tokio::task::spawn_blocking(move || {
                    if !make(&path, &released) {
                        released.store(true, Ordering::Release);
                    }
                });
            }
        }
    }

    /// Gives the space back; false when there was none to give.
    pub async fn release(&self) -> bool {
        let Some(path) = self.path.clone() else {
            return false;
        };
        if self.released.swap(true, Ordering::AcqRel) {
            return false;
        }
        matches!(
            tokio::task::spawn_blocking(move || std::fs::remove_file(path)).await,
            Ok(Ok(()))
        )
    }
}

/// Writes the reserve file in full (so its blocks are really allocated).
/// True when it exists afterwards.
fn make(path: &Path, released: &AtomicBool) -> bool {
    use std::io::Write;
    if std::fs::metadata(path).is_ok_and(|m| m.len() as usize >= RESERVE_BYTES) {
        released.store(false, Ordering::Release);
        return true;
    }
    let tmp = path.with_extension("reserve.tmp");
    let made = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            let zeros = vec![0u8; 1024 * 1024];
            for _ in 0..RESERVE_BYTES / zeros.len() {
                f.write_all(&zeros)?;
            }
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    match made {
        Ok(()) => {
            released.store(false, Ordering::Release);
            true
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(error = %e, "cannot make the disk reserve yet");
            false
        }
    }
}
