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
}

#[derive(Debug)]
struct Row {
    of: Weak<Container>,
    /// The full and the summary view's bytes, each made when first asked.
    full: Option<bytes::Bytes>,
    summary: Option<bytes::Bytes>,
}

impl Default for RowCache {
    fn default() -> Self {
        RowCache {
            inner: Mutex::new(Rows {
                by_addr: HashMap::new(),
                sweep_at: SWEEP_FLOOR,
            }),
        }
    }
}

impl RowCache {
    /// The rows of `page` in `view`, encoded, in order, while `fits` says
    /// each one's size still fits (the first is always taken); and whether
    /// the page was cut there.
    pub fn encode(
        &self,
        page: &[Arc<Container>],
        view: ListView,
        mut fits: impl FnMut(usize) -> bool,
    ) -> (Vec<bytes::Bytes>, bool) {
        let mut rows = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(page.len());
        let mut cut = false;
        for c in page {
            let row = rows
                .by_addr
                .entry(Arc::as_ptr(c) as usize)
                .or_insert_with(|| Row {
                    of: Arc::downgrade(c),
                    full: None,
                    summary: None,
                });
            let slot = match view {
                ListView::Full => &mut row.full,
                ListView::Summary => &mut row.summary,
            };
            let bytes = slot
                .get_or_insert_with(|| container_in(c, view).encode_to_vec().into())
                .clone();
            if !out.is_empty() && !fits(bytes.len()) {
                cut = true;
                break;
            }
            if out.is_empty() {
                fits(bytes.len());
            }
            out.push(bytes);
        }
        rows.sweep();
        (out, cut)
    }

    /// How many rows are kept (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().by_addr.len()
    }
}

impl Rows {
    /// Drops the rows of containers that changed or went, once the map
    /// has doubled since the last sweep: at most about twice the rows in
    /// use are kept, and a sweep costs O(1) per row listed.
    fn sweep(&mut self) {
        if self.by_addr.len() < self.sweep_at {
            return;
        }
        self.by_addr.retain(|_, r| r.of.strong_count() > 0);
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
        assert!(cache.len() < SWEEP_FLOOR, "{}", cache.len());
    }
}
