//! Directories deleted off their caller's path. A removal renames the
//! directory into `DATA/trash` (one rename on the same file system) and
//! one background thread deletes it from there, in order. Deleting is
//! what costs: every freed block is slow on some hosts (ext4 mounted with
//! `discard` trims each one as it is freed, about 0.2 ms a file or
//! directory on a VM), and nothing waits for that space but the disk.
//!
//! What a daemon left in the trash when it stopped is deleted after its
//! next start; an entry that could not be deleted is tried again every
//! minute while any is left. The trash is never read: a name there is the
//! removed directory's own with a counter, so two removals of the same
//! name do not meet.
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Trash {
    dir: PathBuf,
    seq: AtomicU64,
    /// To the thread that deletes; it ends when this is dropped.
    tx: mpsc::Sender<PathBuf>,
}

impl Trash {
    /// The trash at `dir` (made by the caller, root only), its deleting
    /// thread started: it deletes what an earlier daemon left there, then
    /// what is discarded. Without that thread (it could not be started),
    /// every directory is deleted in place, as before.
    pub fn start(dir: PathBuf) -> Trash {
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let leftovers = dir.clone();
        let spawned = std::thread::Builder::new()
            .name("quilt-trash".into())
            .spawn(move || empty(&leftovers, rx, RETRY));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no thread for the trash: removed directories are deleted in place");
        }
        Trash {
            dir,
            seq: AtomicU64::new(0),
            tx,
        }
    }

    /// Removes the directory `path` for its caller: moved into the trash
    /// and deleted later, or, where it cannot be moved there, deleted now.
    /// Ok when it does not exist. Blocking (a rename, or the deletion).
    pub fn discard(&self, path: &Path) -> io::Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = self.dir.join(format!(
            "{name}.{}",
            self.seq.fetch_add(1, Ordering::Relaxed)
        ));
        match std::fs::rename(path, &to) {
            Ok(()) => {
                if let Err(mpsc::SendError(p)) = self.tx.send(to) {
                    delete(&p);
                }
                Ok(())
            }
            // Another file system, a name left there by an earlier daemon,
            // or no trash (ENOENT, as for no `path`): deleted in place.
            Err(_) => match std::fs::remove_dir_all(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            },
        }
    }
}

/// How long an entry that could not be deleted waits for its next try.
const RETRY: Duration = Duration::from_secs(60);

/// The deleting thread: what is in `dir` first (an earlier daemon's), then
/// each entry as it is discarded; while an entry could not be deleted,
/// everything in `dir` again every `retry`. Ends with its sender.
fn empty(dir: &Path, rx: mpsc::Receiver<PathBuf>, retry: Duration) {
    let sweep = || {
        let mut left = false;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                left |= !delete(&e.path());
            }
        }
        left
    };
    let mut left = sweep();
    loop {
        let next = match left {
            true => rx.recv_timeout(retry),
            false => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(p) => left |= !delete(&p),
            Err(mpsc::RecvTimeoutError::Timeout) => left = sweep(),
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Deletes `p` (never following a symlink); false when it is still there.
fn delete(p: &Path) -> bool {
    let r = match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            tracing::warn!(path = %p.display(), error = %e, "cannot delete from the trash; trying again later");
            false
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `p` is gone within `d`.
    fn gone_within(p: &Path, d: Duration) -> bool {
        quilt_testkit::retry(d, || (!p.exists()).then_some(())).is_some()
    }

    /// Whether the trash `dir` is empty within `d`.
    fn emptied_within(dir: &Path, d: Duration) -> bool {
        quilt_testkit::retry(d, || {
            std::fs::read_dir(dir)
                .unwrap()
                .next()
                .is_none()
                .then_some(())
        })
        .is_some()
    }

    #[test]
    fn discarded_directories_leave_at_once_and_are_deleted() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("trash");
        // Left by an earlier daemon: deleted after the start.
        std::fs::create_dir_all(dir.join("old.0/sub")).unwrap();
        std::fs::write(dir.join("stray"), b"x").unwrap();
        let trash = Trash::start(dir.clone());
        assert!(gone_within(&dir.join("old.0"), Duration::from_secs(5)));
        assert!(gone_within(&dir.join("stray"), Duration::from_secs(5)));

        // The same name twice: both go.
        for _ in 0..2 {
            let victim = data.path().join("c1");
            std::fs::create_dir_all(victim.join("upper/etc")).unwrap();
            std::fs::write(victim.join("upper/etc/hosts"), b"127.0.0.1 x\n").unwrap();
            trash.discard(&victim).unwrap();
            assert!(!victim.exists(), "moved away before discard returns");
        }
        assert!(emptied_within(&dir, Duration::from_secs(5)));
        // Nothing there: Ok, nothing done.
        trash.discard(&data.path().join("never")).unwrap();
        // No trash any more (someone removed it): deleted in place.
        let gone = data.path().join("gone-trash");
        let without = Trash::start(gone.clone());
        let victim = data.path().join("c2");
        std::fs::create_dir_all(victim.join("upper")).unwrap();
        without.discard(&victim).unwrap();
        assert!(!victim.exists() && !gone.exists());
        // A symlink is moved as it is, never followed.
        let target = data.path().join("kept");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("f"), b"keep me").unwrap();
        let link = data.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        trash.discard(&link).unwrap();
        assert!(emptied_within(&dir, Duration::from_secs(5)));
        assert_eq!(std::fs::read(target.join("f")).unwrap(), b"keep me");
    }

    /// An entry that cannot be deleted yet (here: an immutable directory,
    /// which even root cannot empty) is tried again until it goes.
    #[test]
    fn what_cannot_be_deleted_is_tried_again() {
        let data = tempfile::tempdir().unwrap();
        let dir = data.path().join("trash");
        std::fs::create_dir_all(dir.join("stuck.0")).unwrap();
        std::fs::write(dir.join("stuck.0/f"), b"x").unwrap();
        // A file system that does not take the flag cannot run this test.
        let pinned = |on: bool| {
            std::process::Command::new("chattr")
                .arg(if on { "+i" } else { "-i" })
                .arg(dir.join("stuck.0"))
                .status()
                .is_ok_and(|s| s.success())
        };
        if !pinned(true) {
            eprintln!("chattr +i not available here: skipped");
            return;
        }
        let (tx, rx) = mpsc::channel();
        let d = dir.clone();
        let t = std::thread::spawn(move || empty(&d, rx, Duration::from_millis(20)));
        std::thread::sleep(Duration::from_millis(100));
        assert!(dir.join("stuck.0").exists(), "kept while it cannot go");
        assert!(pinned(false));
        assert!(gone_within(&dir.join("stuck.0"), Duration::from_secs(5)));
        drop(tx);
        t.join().unwrap();
    }
}
