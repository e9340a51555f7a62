//! One quiltd per data dir and per socket: exclusive advisory locks held for
//! the daemon's lifetime (released by the kernel if it dies).
use crate::error::{EngineError, Result};
use std::fs::{File, OpenOptions};
use std::path::Path;

#[derive(Debug)]
pub struct InstanceLock {
    /// Held open for the lock's lifetime; closing it releases the lock.
    _file: File,
}

impl InstanceLock {
    /// Takes the lock, waiting up to `patience` for a holder that is going
    /// away (a daemon killed moments ago releases its locks as it exits).
    pub async fn acquire_within(
        path: &Path,
        what: &str,
        patience: std::time::Duration,
    ) -> Result<InstanceLock> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match Self::acquire(path, what) {
                Err(EngineError::FailedPrecondition(_))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                r => return r,
            }
        }
    }

    /// Takes the lock at `path` or fails with FailedPrecondition naming `what`.
    pub fn acquire(path: &Path, what: &str) -> Result<InstanceLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| EngineError::internal(&format!("open {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(EngineError::FailedPrecondition(format!(
                    "another quiltd is already using {what} (lock {} is held)",
                    path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(EngineError::internal(
                &format!("lock {}", path.display()),
                e,
            )),
        }
    }
}
