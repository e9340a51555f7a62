//! Listed containers as they go on the wire, each encoded once.
//!
//! A container's row is immutable behind its `Arc` (the store replaces the
//! `Arc` when the row changes), so the bytes of its `quilt.v1.Container`
//! in each view are computed the first time a listing sends it and reused
//! until the row changes. A page is then a copy of those bytes, where it
//! was a conversion, a clone of every string and an encoding per row.
use super::containers::container_in;
use prost::Message;
use quilt_sync_engine::{Container, ListView};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// `ListContainersResponse` as it is sent: field 1 (`repeated Container`)
/// holds each row's encoded bytes, which on the wire is the same as the
/// message itself (both are length-delimited), so clients decode it as
/// `quilt.v1.ListContainersResponse`.
#[derive(Clone, PartialEq, Message)]
pub struct ListWire {
    /// Each an encoded `quilt.v1.Container`.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub containers: Vec<bytes::Bytes>,
    #[prost(string, tag = "2")]
    pub next_page_token: String,
}

/// Fewest entries kept before dead ones are swept out.
const SWEEP_FLOOR: usize = 4096;
/// Rows larger than this (a big env or many mounts) are encoded at each
/// listing rather than kept.
const MAX_ROW: usize = 16 * 1024;
/// The most encoded bytes kept; past it, new rows are not kept until a
/// sweep makes room.
const MAX_BYTES: usize = 32 * 1024 * 1024;

/// The encoded rows of the containers listed lately.
#[derive(Debug)]
pub struct RowCache {
    inner: Mutex<Rows>,
}

#[derive(Debug)]
struct Rows {
    /// By the address of the row's allocation. The entry's `Weak` keeps
    /// that allocation (not the row) alive, so the address cannot be given
    /// to another row while the entry exists: a hit is always the same row.
    by_addr: HashMap<usize, Row>,
    /// Sweep rows no longer listed once there are this many entries.
    sweep_at: usize,
    /// Encoded bytes kept.
    bytes: usize,
}

#[derive(Debug)]
struct Row {
    of: Weak<Container>,
    /// The full and the summary view's bytes, each made when first asked.
    full: Option<bytes::Bytes>,
    summary: Option<bytes::Bytes>,
}

impl Row {
    fn slot(&mut self, view: ListView) -> &mut Option<bytes::Bytes> {
        match view {
            ListView::Full => &mut self.full,
            ListView::Summary => &mut self.summary,
        }
    }

    fn bytes(&self) -> usize {
        self.full.as_ref().map_or(0, |b| b.len()) + self.summary.as_ref().map_or(0, |b| b.len())
    }
}

impl Default for RowCache {
    fn default() -> Self {
        RowCache {
            inner: Mutex::new(Rows {
                by_addr: HashMap::new(),
                sweep_at: SWEEP_FLOOR,
                bytes: 0,
            }),
        }
    }
}

impl RowCache {
    /// The rows of `page` in `view`, encoded, in order, while `fits` says
    /// each one's size still fits (the first is always taken); and whether
    /// the page was cut there. Rows not kept yet are encoded outside the
    /// lock, so concurrent listings only wait for lookups.
    pub fn encode(
        &self,
        page: &[Arc<Container>],
        view: ListView,
        mut fits: impl FnMut(usize) -> bool,
    ) -> (Vec<bytes::Bytes>, bool) {
        let kept: Vec<Option<bytes::Bytes>> = {
            let mut rows = self.lock();
            page.iter()
                .map(|c| {
                    let row = rows.by_addr.get_mut(&(Arc::as_ptr(c) as usize))?;
                    row.slot(view).clone()
                })
                .collect()
        };
        let mut out = Vec::with_capacity(page.len());
        let mut made = Vec::new();
        let mut cut = false;
        for (c, kept) in page.iter().zip(kept) {
            let bytes = match kept {
                Some(b) => b,
                None => {
                    let b: bytes::Bytes = container_in(c, view).encode_to_vec().into();
                    if b.len() <= MAX_ROW {
                        made.push((c, b.clone()));
                    }
                    b
                }
            };
            if !out.is_empty() && !fits(bytes.len()) {
                cut = true;
                break;
            }
            if out.is_empty() {
                fits(bytes.len());
            }
            out.push(bytes);
        }
        if !made.is_empty() {
            let mut rows = self.lock();
            for (c, b) in made {
                rows.keep(c, view, b);
            }
            rows.sweep();
        }
        (out, cut)
    }

    /// Drops the rows of containers that changed or went, however few are
    /// kept: after removals, which no listing may follow to sweep them.
    pub fn sweep_dead(&self) {
        let mut rows = self.lock();
        rows.sweep_at = 0;
        rows.sweep();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rows> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many rows and bytes are kept (tests).
    #[cfg(test)]
    fn kept(&self) -> (usize, usize) {
        let rows = self.lock();
        (rows.by_addr.len(), rows.bytes)
    }
}

impl Rows {
    /// Keeps `b` as the row's bytes in `view`, if there is room.
    fn keep(&mut self, c: &Arc<Container>, view: ListView, b: bytes::Bytes) {
        if self.bytes + b.len() > MAX_BYTES {
            self.sweep_at = 0;
            self.sweep();
            if self.bytes + b.len() > MAX_BYTES {
                return;
            }
        }
        let row = self
            .by_addr
            .entry(Arc::as_ptr(c) as usize)
            .or_insert_with(|| Row {
                of: Arc::downgrade(c),
                full: None,
                summary: None,
            });
        let slot = row.slot(view);
        if slot.is_none() {
            self.bytes += b.len();
            *slot = Some(b);
        }
    }

    /// Drops the rows of containers that changed or went, once the map
    /// has doubled since the last sweep: at most about twice the rows in
    /// use are kept, and a sweep costs O(1) per row listed.
    fn sweep(&mut self) {
        if self.by_addr.len() < self.sweep_at {
            return;
        }
        let mut freed = 0;
        self.by_addr.retain(|_, r| {
            let live = r.of.strong_count() > 0;
            if !live {
                freed += r.bytes();
            }
            live
        });
        self.bytes -= freed;
        self.sweep_at = (self.by_addr.len() * 2).max(SWEEP_FLOOR);
        self.by_addr.shrink_to(self.sweep_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quilt_proto::v1 as pb;

    fn row(name: &str) -> Arc<Container> {
        let mut spec = quilt_sync_engine::CreateSpec::new("default");
        spec.name = Some(name.into());
        spec.command = vec!["sleep".into(), "1".into()];
        spec.env = vec!["A=1".into()];
        let id = format!("{:0>64}", name);
        Arc::new(Container::new(id, spec, "default".into(), Vec::new(), 1))
    }

    #[test]
    fn rows_decode_as_the_message_and_follow_changes() {
        let cache = RowCache::default();
        let a = row("a");
        let b = row("b");
        let (rows, cut) = cache.encode(&[a.clone(), b.clone()], ListView::Full, |_| true);
        assert!(!cut);
        let wire = ListWire {
            containers: rows,
            next_page_token: "t".into(),
        };
        // What a client reads is exactly the converted rows.
        let got = pb::ListContainersResponse::decode(wire.encode_to_vec().as_slice()).unwrap();
        assert_eq!(
            got.containers,
            vec![
                container_in(&a, ListView::Full),
                container_in(&b, ListView::Full)
            ]
        );
        assert_eq!(got.next_page_token, "t");
        // The summary view is its own encoding.
        let (rows, _) = cache.encode(std::slice::from_ref(&a), ListView::Summary, |_| true);
        let summary = pb::Container::decode(rows[0].as_ref()).unwrap();
        assert!(summary.env.is_empty());
        assert_eq!(summary, container_in(&a, ListView::Summary));
        // A changed row is a new Arc, and is encoded anew.
        let mut changed = (*a).clone();
        changed.name = "renamed".into();
        let changed = Arc::new(changed);
        let (rows, _) = cache.encode(std::slice::from_ref(&changed), ListView::Full, |_| true);
        assert_eq!(
            pb::Container::decode(rows[0].as_ref()).unwrap().name,
            "renamed"
        );
    }

    #[test]
    fn pages_are_cut_by_size_and_dead_rows_are_swept() {
        let cache = RowCache::default();
        let page: Vec<_> = (0..10).map(|i| row(&format!("c{i}"))).collect();
        let mut room = 3;
        let (rows, cut) = cache.encode(&page, ListView::Summary, |_| {
            room -= 1;
            room >= 0
        });
        assert_eq!(rows.len(), 3);
        assert!(cut);
        // The first row is sent whatever its size.
        let (rows, cut) = cache.encode(&page, ListView::Summary, |_| false);
        assert_eq!((rows.len(), cut), (1, true));
        drop(page);
        // Rows of containers gone are dropped once the map has grown enough.
        for _ in 0..(SWEEP_FLOOR / 100 + 1) {
            let page: Vec<_> = (0..100).map(|i| row(&format!("d{i}"))).collect();
            cache.encode(&page, ListView::Summary, |_| true);
        }
        assert!(cache.kept().0 < SWEEP_FLOOR, "{:?}", cache.kept());
    }

    #[test]
    fn a_forced_sweep_drops_every_dead_row() {
        let cache = RowCache::default();
        let live = row("live");
        let page: Vec<_> = (0..10).map(|i| row(&format!("c{i}"))).collect();
        cache.encode(&page, ListView::Full, |_| true);
        let (kept, _) = cache.encode(std::slice::from_ref(&live), ListView::Summary, |_| true);
        assert_eq!(cache.kept().0, 11);
        // Below the floor a listing would not sweep them; this does.
        drop(page);
        cache.sweep_dead();
        assert_eq!(cache.kept(), (1, kept[0].len()));
    }

    #[test]
    fn large_rows_are_not_kept() {
        let cache = RowCache::default();
        let mut spec = quilt_sync_engine::CreateSpec::new("default");
        spec.env = vec![format!("BIG={}", "x".repeat(MAX_ROW))];
        let big = Arc::new(Container::new(
            "b".repeat(64),
            spec,
            "default".into(),
            Vec::new(),
            1,
        ));
        let (rows, _) = cache.encode(std::slice::from_ref(&big), ListView::Full, |_| true);
        assert!(rows[0].len() > MAX_ROW);
        assert_eq!(cache.kept(), (0, 0));
        // Its summary (without the env) is small, and kept.
        let (rows, _) = cache.encode(std::slice::from_ref(&big), ListView::Summary, |_| true);
        assert_eq!(cache.kept(), (1, rows[0].len()));
    }
}
