//! Writable layers kept ready for cold starts (`quiltd --layer-pool N`):
//! for each of the last few images started (`IMAGES`), N layers made ahead
//! (see `quilt_runtime::layer`), under DATA/layers. A start takes one when
//! it can, which takes the overlay's mount off its path, and asks for a
//! refill once its container runs (`refill`); layers are made and deleted
//! by a thread of the pool's own under SCHED_IDLE, on CPU time nothing
//! else wants, so that they never compete with starts.
//!
//! A layer is only ever a first start's: a container directory that has a
//! layer already (a restart) keeps its own. A layer of an image that was
//! removed since (its root is not the same directory any more) is dropped,
//! not used. The overlays are detached mounts: they go with the daemon,
//! however it ends; what it leaves under DATA/layers is deleted by the next
//! one before it makes any.
use quilt_runtime::layer::Layer;
use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

/// The images layers are kept for: the last ones started.
const IMAGES: usize = 4;

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
}

#[derive(Debug)]
pub(crate) struct LayerPool {
    inner: Arc<Inner>,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LayerPool {
    /// A pool of `per_image` layers per image under `dir` (0: none is
    /// made). Its thread first deletes what an earlier daemon left there.
    pub fn start(dir: PathBuf, per_image: usize) -> LayerPool {
        let inner = Arc::new(Inner {
            dir,
            per_image,
            ready: Mutex::default(),
            seq: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let worker = inner.clone();
        let spawned = std::thread::Builder::new()
            .name("quilt-layers".into())
            .spawn(move || worker.serve(rx));
        let (tx, thread) = match spawned {
            Ok(t) => (Some(tx), Some(t)),
            Err(e) => {
                tracing::warn!(error = %e, "no thread for the layer pool: every start mounts its own");
                (None, None)
            }
        };
        LayerPool {
            inner,
            tx: Mutex::new(tx),
            thread: Mutex::new(thread),
        }
    }

    fn send(&self, job: Job) {
        if let Some(tx) = &*self.tx.lock().unwrap_or_else(|p| p.into_inner()) {
            let _ = tx.send(job);
        }
    }

    /// A ready layer of the image root `lower` (`volatile`: a `--rm`
    /// container's), its directories moved into the container directory
    /// `dir`: the overlay to hand to the shim. None when there is none to
    /// take, or `dir` has a layer of its own already. A first start's take
    /// is counted in `metrics` (hit or miss); its caller asks for the
    /// refill once the start is over (`refill`). Blocking (renames).
    pub fn take(
        &self,
        lower: &Path,
        volatile: bool,
        dir: &Path,
        metrics: &crate::metrics::Metrics,
    ) -> Option<OwnedFd> {
        if self.inner.per_image == 0 {
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
        let (taken, removal) = match layer {
            Some(l) if l.is_of(lower) => {
                let from = l.dir().to_owned();
                match l.install(dir) {
                    Ok(root) => (Some(root), (from, None)),
                    Err((l, e)) => {
                        tracing::warn!(container_dir = %dir.display(), error = %e, "cannot use a layer made ahead; mounting one");
                        (None, (from, Some(l)))
                    }
                }
            }
            Some(stale) => (None, (stale.dir().to_owned(), Some(stale))),
            None => {
                metrics.layer_take(false);
                return None;
            }
        };
        self.inner.lock().removals.push(removal);
        metrics.layer_take(taken.is_some());
        taken
    }

    /// After a start that took a layer of `lower` (or could not): the
    /// image's layers are made up for the next ones, and what the take
    /// left is deleted, in the background.
    pub fn refill(&self, lower: &Path, volatile: bool) {
        if self.inner.per_image == 0 {
            return;
        }
        let removals = std::mem::take(&mut self.inner.lock().removals);
        for (dir, layer) in removals {
            self.send(Job::Remove(dir, layer));
        }
        self.send(Job::Refill((lower.to_owned(), volatile)));
    }

    /// How many layers are ready.
    pub fn ready(&self) -> usize {
        self.inner.lock().layers.values().map(Vec::len).sum()
    }

    /// Shutdown: no layer is taken or made any more; the ready ones are
    /// dropped and their directories deleted by the pool's thread, which
    /// then ends. Blocking until it has.
    pub fn shutdown(&self) {
        let (all, removals) = {
            let mut ready = self.inner.lock();
            ready.closed = true;
            ready.recent.clear();
            let all: Vec<Layer> = ready.layers.drain().flat_map(|(_, v)| v).collect();
            (all, std::mem::take(&mut ready.removals))
        };
        for l in all {
            self.send(Job::Remove(l.dir().to_owned(), Some(l)));
        }
        for (dir, layer) in removals {
            self.send(Job::Remove(dir, layer));
        }
        // The thread ends with its last sender.
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Ready {
    /// Marks `key` the most recently used; the layers of the keys that
    /// fall out of the last `IMAGES` are deleted.
    fn touch(&mut self, key: &Key) {
        if let Some(i) = self.recent.iter().position(|k| k == key) {
            self.recent.remove(i);
        }
        self.recent.push_front(key.clone());
        while self.recent.len() > IMAGES {
            if let Some(old) = self.recent.pop_back() {
                for l in self.layers.remove(&old).unwrap_or_default() {
                    self.removals.push((l.dir().to_owned(), Some(l)));
                }
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

    /// The pool's thread: deletes what an earlier daemon left, then makes
    /// and deletes layers as asked, until the pool is shut down.
    fn serve(&self, rx: mpsc::Receiver<Job>) {
        if let Err(e) = quilt_runtime::become_idle_thread() {
            tracing::debug!(error = %e, "the layer pool's thread keeps its priority");
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot delete the layers an earlier daemon left");
        }
        if let Err(e) = std::fs::create_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "no directory for the layer pool: every start mounts its own");
            return;
        }
        // Spread over the file system's block groups, as the containers'
        // directories are (see `engine::spread_container_dirs`).
        let _ = std::fs::File::open(&self.dir).and_then(|d| quilt_runtime::set_topdir(&d));
        // A refill asked for again finds nothing lacking.
        while let Ok(job) = rx.recv() {
            match job {
                Job::Remove(dir, layer) => {
                    drop(layer);
                    remove(&dir);
                }
                Job::Refill(key) => self.refill(&key),
            }
        }
    }

    fn refill(&self, key: &Key) {
        let (lower, volatile) = key;
        loop {
            let lacking = self.lock().lacking(key, self.per_image);
            if lacking == 0 {
                return;
            }
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
                    remove(&dir);
                    return;
                }
                Err(e) => {
                    // Tried again at the image's next start.
                    tracing::debug!(image = %lower.display(), error = %e, "cannot make a layer ahead");
                    remove(&dir);
                    return;
                }
            }
        }
    }
}

/// Deletes a layer's directory (never following a symlink).
fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot delete a layer made ahead");
    }
}
