//! Writable layers kept ready for cold starts (`quiltd --layer-pool N`):
//! for each of the last few kinds of layer started (`KEYS`: an image of the
//! store, synced or `--rm`), N layers made ahead (see
//! `quilt_runtime::layer`), under DATA/layers. A start takes one when it
//! can, which takes the overlay's mount off its path, and asks for a refill
//! once its container runs (`refill`), not before: made during the start,
//! the layer would compete with it for the CPU and the mount lock. Layers
//! are made and deleted by a thread of the pool's own at nice 19.
//!
//! A layer is only ever a first start's: a container directory that has a
//! layer already (a restart) keeps its own. The layers of an image go when
//! it is removed (`forget`); one whose image root is not the same directory
//! any more is dropped, not used. Only the store's images get layers (a
//! host directory run as an image is not held by mounts nobody sees). The
//! overlays are detached mounts: they go with the daemon, however it ends;
//! what it leaves under DATA/layers is discarded by the next one before it
//! makes any. Directories are deleted through the trash
//! (`support::trash`), as the containers' are.
use super::trash::Trash;
use quilt_runtime::layer::Layer;
use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// The kinds of layer kept: the last ones started.
const KEYS: usize = 4;
/// The refilling thread's nice value: it runs when starts do not.
const REFILL_NICE: i32 = 19;
/// How long shutdown waits for the ready layers to be dropped (a synced
/// overlay's unmount syncs its file system) before it lets the process's
/// end drop what is left.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// What the pool keeps layers for: an image root, and whether its
/// containers' layers are volatile (`--rm`).
type Key = (PathBuf, bool);

#[derive(Debug, Default)]
struct Ready {
    /// The ready layers of each key, and the keys by their last use (most
    /// recent first).
    layers: HashMap<Key, Vec<Layer>>,
    recent: VecDeque<Key>,
    /// What takes left to delete, sent to the thread with the next refill.
    removals: Vec<(PathBuf, Option<Layer>)>,
    /// Keys whose refill was asked for and not begun yet.
    pending: HashSet<Key>,
    closed: bool,
}

#[derive(Debug)]
enum Job {
    /// Make the layers `key` lacks.
    Refill(Key),
    /// Delete a layer's directory (and drop its overlay, if any).
    Remove(PathBuf, Option<Layer>),
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    per_image: usize,
    ready: Mutex<Ready>,
    seq: AtomicU64,
    /// The containers' directories are on another file system (a rename
    /// failed with EXDEV): no layer is taken any more.
    off: AtomicBool,
    /// Where layers' directories go to be deleted.
    trash: Arc<Trash>,
}

#[derive(Debug)]
pub(crate) struct LayerPool {
    inner: Arc<Inner>,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    /// Told when the thread ends.
    ended: Mutex<Option<mpsc::Receiver<()>>>,
}

impl LayerPool {
    /// A pool of `per_image` layers per kind under `dir` (0: none is made),
    /// whose directories go to `trash`. Its thread first discards what an
    /// earlier daemon left there.
    pub fn start(dir: PathBuf, per_image: usize, trash: Arc<Trash>) -> LayerPool {
        let inner = Arc::new(Inner {
            dir,
            per_image,
            ready: Mutex::default(),
            seq: AtomicU64::new(0),
            off: AtomicBool::new(false),
            trash,
        });
        let (tx, rx) = mpsc::channel();
        let (ended_tx, ended_rx) = mpsc::channel();
        let worker = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("quilt-layers".into())
            .spawn(move || {
                worker.serve(rx);
                let _ = ended_tx.send(());
            });
        let (tx, ended) = match spawned {
            Ok(_) => (Some(tx), Some(ended_rx)),
            Err(e) => {
                tracing::warn!(error = %e, "no thread for the layer pool: every start mounts its own");
                inner.off.store(true, Ordering::Relaxed);
                (None, None)
            }
        };
        LayerPool {
            inner,
            tx: Mutex::new(tx),
            ended: Mutex::new(ended),
        }
    }

    fn send(&self, job: Job) {
        if let Some(tx) = &*self.tx.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = tx.send(job);
        }
    }

    /// A ready layer of the image root `lower` (`volatile`: a `--rm`
    /// container's), made the container directory `dir` (renamed to it, or
    /// its directories moved into it where it exists): the overlay to hand
    /// to the shim. None when there is none to take, or `dir` has a layer
    /// of its own already. A first start's take is counted in `metrics`
    /// (hit or miss); its caller asks for the refill once the start is over
    /// (`refill`). Blocking (renames).
    pub fn take(
        &self,
        lower: &Path,
        volatile: bool,
        dir: &Path,
        metrics: &crate::metrics::Metrics,
    ) -> Option<OwnedFd> {
        if self.inner.per_image == 0 || self.inner.off.load(Ordering::Relaxed) {
            return None;
        }
        if std::fs::symlink_metadata(dir.join("upper")).is_ok() {
            return None;
        }
        let key = (lower.to_owned(), volatile);
        let layer = {
            let mut ready = self.inner.lock();
            if ready.closed {
                return None;
            }
            ready.touch(&key);
            ready.layers.get_mut(&key).and_then(Vec::pop)
        };
        let taken = match layer {
            Some(l) if l.is_of(lower) => {
                let from = l.dir().to_owned();
                match l.install(dir) {
                    Ok(installed) => {
                        if let Some(left) = installed.left {
                            self.inner.lock().removals.push((left, None));
                        }
                        Some(installed.root)
                    }
                    Err((l, e)) => {
                        tracing::warn!(container_dir = %dir.display(), error = %e, "cannot use a layer made ahead; mounting one");
                        let mut ready = self.inner.lock();
                        ready.removals.push((from, Some(l)));
                        if e.kind() == std::io::ErrorKind::CrossesDevices {
                            // Never on the same file system: no more, and
                            // the ready ones go.
                            self.inner.off.store(true, Ordering::Relaxed);
                            ready.retire(|_| true);
                        }
                        None
                    }
                }
            }
            Some(stale) => {
                // The image was made again: every layer of it goes.
                let mut ready = self.inner.lock();
                ready.removals.push((stale.dir().to_owned(), Some(stale)));
                ready.retire(|k| *k == key);
                None
            }
            None => None,
        };
        metrics.layer_take(taken.is_some());
        taken
    }

    /// After a start that took a layer of `lower` (or could not): the
    /// layers of its kind are made up for the next starts, and what the
    /// take left is deleted, in the background. Never blocks.
    pub fn refill(&self, lower: &Path, volatile: bool) {
        if self.inner.per_image == 0 {
            return;
        }
        // Turned off: what the takes left is deleted all the same.
        let off = self.inner.off.load(Ordering::Relaxed);
        let key = (lower.to_owned(), volatile);
        let asked = {
            let mut ready = self.inner.lock();
            !off && !ready.closed && ready.pending.insert(key.clone())
        };
        self.flush();
        if asked {
            self.send(Job::Refill(key));
        }
    }

    /// The images at these roots are removed: their layers go.
    pub fn forget(&self, lowers: &[PathBuf]) {
        {
            let mut ready = self.inner.lock();
            ready.recent.retain(|(l, _)| !lowers.contains(l));
            ready.retire(|(l, _)| lowers.contains(l));
        }
        self.flush();
    }

    /// Sends what is to be deleted to the pool's thread.
    fn flush(&self) {
        let removals = std::mem::take(&mut self.inner.lock().removals);
        for (dir, layer) in removals {
            self.send(Job::Remove(dir, layer));
        }
    }

    /// How many layers are ready.
    pub fn ready(&self) -> usize {
        self.inner.lock().layers.values().map(Vec::len).sum()
    }

    /// Shutdown: no layer is taken or made any more; the ready ones are
    /// dropped and their directories deleted by the pool's thread, which
    /// then ends. Blocking until it has, for `SHUTDOWN_WAIT` at most.
    pub fn shutdown(&self) {
        {
            let mut ready = self.inner.lock();
            ready.closed = true;
            ready.recent.clear();
            ready.retire(|_| true);
        }
        self.flush();
        // The thread ends with its last sender.
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(ended) = ended
            && ended.recv_timeout(SHUTDOWN_WAIT) == Err(mpsc::RecvTimeoutError::Timeout)
        {
            tracing::warn!(
                "the layers made ahead are still being dropped; leaving them to the process's end"
            );
        }
    }
}

impl Ready {
    /// Marks `key` the most recently used; the layers of the keys that
    /// fall out of the last `KEYS` are deleted.
    fn touch(&mut self, key: &Key) {
        if let Some(i) = self.recent.iter().position(|k| k == key) {
            self.recent.remove(i);
        }
        self.recent.push_front(key.clone());
        while self.recent.len() > KEYS {
            if let Some(old) = self.recent.pop_back() {
                self.retire(|k| *k == old);
            }
        }
    }

    /// The ready layers of the keys `which` selects are to be deleted.
    fn retire(&mut self, which: impl Fn(&Key) -> bool) {
        let keys: Vec<Key> = self.layers.keys().filter(|k| which(k)).cloned().collect();
        for k in keys {
            for l in self.layers.remove(&k).unwrap_or_default() {
                self.removals.push((l.dir().to_owned(), Some(l)));
            }
        }
    }

    /// How many more layers `key` needs (0 when it is not kept any more).
    fn lacking(&self, key: &Key, per_image: usize) -> usize {
        if self.closed || !self.recent.contains(key) {
            return 0;
        }
        per_image.saturating_sub(self.layers.get(key).map_or(0, Vec::len))
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pool's thread: discards what an earlier daemon left, then makes
    /// and discards layers as asked, until the pool is shut down.
    fn serve(&self, rx: mpsc::Receiver<Job>) {
        lower_priority();
        self.remove(&self.dir);
        if self.per_image == 0 {
            return;
        }
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "no directory for the layer pool: every start mounts its own");
            self.off.store(true, Ordering::Relaxed);
            return;
        }
        // Spread over the file system's block groups, as the containers'
        // directories are (see `engine::spread_container_dirs`).
        let _ = std::fs::File::open(&self.dir).and_then(|d| quilt_runtime::set_topdir(&d));
        while let Ok(job) = rx.recv() {
            match job {
                Job::Remove(dir, layer) => {
                    drop(layer);
                    self.remove(&dir);
                }
                Job::Refill(key) => {
                    self.lock().pending.remove(&key);
                    self.refill(&key);
                }
            }
        }
    }

    /// A layer's directory (or the pool's, at start) goes to the trash.
    fn remove(&self, dir: &Path) {
        if let Err(e) = self.trash.discard(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot delete a layer made ahead");
        }
    }

    fn refill(&self, key: &Key) {
        let (lower, volatile) = key;
        while self.lock().lacking(key, self.per_image) > 0 {
            let dir = self
                .dir
                .join(format!("l{}", self.seq.fetch_add(1, Ordering::Relaxed)));
            match Layer::make(lower, &dir, *volatile) {
                Ok(layer) => {
                    let mut ready = self.lock();
                    if ready.lacking(key, self.per_image) > 0 {
                        ready.layers.entry(key.clone()).or_default().push(layer);
                        continue;
                    }
                    drop(ready);
                    drop(layer);
                    self.remove(&dir);
                    return;
                }
                Err(e) => {
                    // Tried again at the next start of its kind.
                    tracing::debug!(image = %lower.display(), error = %e, "cannot make a layer ahead");
                    self.remove(&dir);
                    return;
                }
            }
        }
    }
}

/// Lowers the calling thread's priority (this thread only: on Linux a
/// thread id is a process id to setpriority).
fn lower_priority() {
    use rustix::process::setpriority_process;
    let me = rustix::thread::gettid();
    if let Err(e) = setpriority_process(Some(me), REFILL_NICE) {
        tracing::debug!(error = %e, "the layer pool's thread keeps its priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Key {
        (PathBuf::from(format!("/images/{n}")), false)
    }

    #[test]
    fn the_last_kinds_started_are_kept_and_lack_their_layers() {
        let mut r = Ready::default();
        for n in 0..6 {
            r.touch(&key(n));
        }
        let kept: Vec<Key> = r.recent.iter().cloned().collect();
        assert_eq!(kept, vec![key(5), key(4), key(3), key(2)]);
        assert_eq!(r.lacking(&key(5), 3), 3);
        assert_eq!(r.lacking(&key(1), 3), 0, "evicted");
        // Used again: the most recent.
        r.touch(&key(2));
        assert_eq!(r.recent.front(), Some(&key(2)));
        assert_eq!(r.recent.len(), KEYS);
        r.closed = true;
        assert_eq!(r.lacking(&key(2), 3), 0, "closed");
    }

    /// Real layers (needs root: overlays), made by the pool's thread.
    #[test]
    fn a_pool_makes_layers_for_a_start_hands_one_over_and_forgets_an_image() {
        assert!(
            rustix::process::geteuid().is_root(),
            "this test needs root (it mounts overlays)"
        );
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("image");
        std::fs::create_dir_all(lower.join("bin")).unwrap();
        let (pooldir, c1) = (t.path().join("layers"), t.path().join("c1"));
        std::fs::create_dir_all(&c1).unwrap();
        let metrics = crate::metrics::Metrics::new();
        let trash_dir = t.path().join("trash");
        std::fs::create_dir_all(&trash_dir).unwrap();
        let pool = LayerPool::start(
            pooldir.clone(),
            2,
            Arc::new(Trash::start(trash_dir.clone())),
        );
        let wait_ready = |n: usize| {
            quilt_testkit::retry(Duration::from_secs(10), || {
                (pool.ready() == n).then_some(())
            })
            .unwrap_or_else(|| panic!("{} ready, not {n}", pool.ready()))
        };

        // None yet: the first start of its kind mounts its own.
        assert!(pool.take(&lower, false, &c1, &metrics).is_none());
        pool.refill(&lower, false);
        wait_ready(2);
        let root = pool.take(&lower, false, &c1, &metrics).expect("a layer");
        assert!(c1.join("upper").is_dir() && c1.join("work").is_dir());
        drop(root);
        // A directory with a layer keeps it.
        assert!(pool.take(&lower, false, &c1, &metrics).is_none());
        pool.refill(&lower, false);
        wait_ready(2);

        // Its image removed: its layers go.
        pool.forget(std::slice::from_ref(&lower));
        assert_eq!(pool.ready(), 0);
        pool.refill(&lower, false);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(pool.ready(), 0, "a forgotten kind is not made again");
        pool.shutdown();
        let left: Vec<_> = std::fs::read_dir(&pooldir).unwrap().flatten().collect();
        assert!(left.is_empty(), "{left:?}");
        // What went to the trash is deleted there.
        let emptied = quilt_testkit::retry(Duration::from_secs(10), || {
            let n = std::fs::read_dir(&trash_dir).unwrap().count();
            (n == 0).then_some(())
        });
        assert!(emptied.is_some(), "the trash kept the layers");
    }
}
