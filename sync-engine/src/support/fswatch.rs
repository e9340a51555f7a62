//! An inotify event stream that is closed off the reactor. Closing an
//! inotify instance tears down its fsnotify group, which waits for an SRCU
//! grace period (10-20 ms measured here): done on a tokio worker, that stalls
//! every task on the thread (a log follower's last frame waited for it).
use std::ops::{Deref, DerefMut};

pub(crate) struct FsWatch(Option<inotify::EventStream<Vec<u8>>>);

impl FsWatch {
    pub fn new(stream: inotify::EventStream<Vec<u8>>) -> Self {
        FsWatch(Some(stream))
    }
}

impl Deref for FsWatch {
    type Target = inotify::EventStream<Vec<u8>>;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("FsWatch is only emptied by drop")
    }
}

impl DerefMut for FsWatch {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut().expect("FsWatch is only emptied by drop")
    }
}

impl Drop for FsWatch {
    fn drop(&mut self) {
        if let Some(stream) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(move || drop(stream))),
                Err(_) => drop(stream),
            }
        }
    }
}
