//! Whole ListContainers pages as they were sent, kept for the listing
//! index's version they were read at (`Engine::list_version`): the same
//! request at the same version is the same page, answered with those
//! bytes, no row looked up, copied or encoded again. Any change of a
//! container changes the version; a page of another version is never sent
//! and is dropped at the next lookup. A polling client (a dashboard, an
//! agent's `ps` every second) thus costs one copy of the page while
//! nothing changes.
use super::listing::FilterDigest;
use super::rows::ListWire;
use bytes::{BufMut, Bytes};
use prost::Message;
use quilt_sync_engine::{ListCursor, ListQuery, ListView};
use std::sync::Mutex;

/// Pages smaller than this are made again (cheap) rather than kept.
pub const MIN_KEPT: usize = 64 * 1024;
/// The most bytes kept, all pages together (one page is at most
/// `PAGE_BYTES`, 3.5 MiB).
const MAX_KEPT: usize = 4 * 1024 * 1024;
/// The most pages kept.
const MAX_PAGES: usize = 4;

/// What answers ListContainers: a page made now, or one sent before.
#[derive(Debug, Clone, PartialEq)]
pub enum ListBody {
    Rows(ListWire),
    /// An encoded `ListContainersResponse`.
    Sent(Bytes),
}

impl Default for ListBody {
    fn default() -> Self {
        ListBody::Rows(ListWire::default())
    }
}

impl Message for ListBody {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        match self {
            ListBody::Rows(w) => w.encode_raw(buf),
            ListBody::Sent(b) => buf.put_slice(b),
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        // Only ever encoded (the server's answer); decoded, as its rows.
        match self {
            ListBody::Rows(w) => w.merge_field(tag, wire_type, buf, ctx),
            ListBody::Sent(_) => prost::encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            ListBody::Rows(w) => w.encoded_len(),
            ListBody::Sent(b) => b.len(),
        }
    }

    fn clear(&mut self) {
        *self = ListBody::default();
    }
}

/// What makes two requests the same page (the filters by their digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey {
    view: ListView,
    filters: FilterDigest,
    after: Option<ListCursor>,
    limit: usize,
}

impl PageKey {
    pub fn of(q: &ListQuery, filters: FilterDigest) -> PageKey {
        PageKey {
            view: q.view,
            filters,
            after: q.after.clone(),
            limit: q.limit,
        }
    }
}

#[derive(Debug)]
struct Kept {
    key: PageKey,
    version: u64,
    body: Bytes,
}

/// The pages kept (see the module's comment).
#[derive(Debug, Default)]
pub struct PageCache {
    kept: Mutex<Vec<Kept>>,
}

impl PageCache {
    /// The page of `key` if it was read at `version` (the current one).
    /// Pages of older versions are dropped.
    pub fn get(&self, key: &PageKey, version: u64) -> Option<Bytes> {
        let mut kept = self.lock();
        kept.retain(|k| k.version >= version);
        kept.iter()
            .find(|k| k.version == version && k.key == *key)
            .map(|k| k.body.clone())
    }

    /// Keeps `body`, the page of `key` read at `version`, in place of the
    /// oldest when there is no room.
    pub fn put(&self, key: PageKey, version: u64, body: Bytes) {
        if body.len() > MAX_KEPT {
            return;
        }
        let mut kept = self.lock();
        kept.retain(|k| k.version >= version && k.key != key);
        while kept.len() >= MAX_PAGES
            || kept.iter().map(|k| k.body.len()).sum::<usize>() + body.len() > MAX_KEPT
        {
            kept.remove(0);
        }
        kept.push(Kept { key, version, body });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Kept>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quilt_proto::v1 as pb;

    fn key(limit: usize) -> PageKey {
        let (q, digest) = super::super::list_query(pb::ListContainersRequest {
            page_size: limit as u32,
            ..Default::default()
        })
        .unwrap();
        PageKey::of(&q, digest)
    }

    #[test]
    fn a_page_is_sent_again_only_at_its_version() {
        let cache = PageCache::default();
        let body = Bytes::from(vec![7u8; MIN_KEPT]);
        cache.put(key(10), 5, body.clone());
        assert_eq!(cache.get(&key(10), 5), Some(body.clone()));
        // Another request, or the same one after a change.
        assert_eq!(cache.get(&key(11), 5), None);
        assert_eq!(cache.get(&key(10), 6), None);
        // A page of an older version is gone for good.
        assert_eq!(cache.get(&key(10), 5), None);
        assert!(cache.lock().is_empty());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = PageCache::default();
        for limit in 0..10 {
            cache.put(key(limit), 1, Bytes::from(vec![0u8; MAX_KEPT / 3]));
        }
        let kept = cache.lock();
        assert!(kept.len() <= MAX_PAGES);
        assert!(kept.iter().map(|k| k.body.len()).sum::<usize>() <= MAX_KEPT);
        // The newest stays.
        assert_eq!(kept.last().map(|k| k.key.clone()), Some(key(9)));
        drop(kept);
        // Larger than all the room: not kept.
        cache.put(key(20), 1, Bytes::from(vec![0u8; MAX_KEPT + 1]));
        assert_eq!(cache.get(&key(20), 1), None);
    }

    #[test]
    fn a_kept_page_is_the_page_on_the_wire() {
        let wire = ListWire {
            containers: vec![
                pb::Container {
                    id: "a".into(),
                    ..Default::default()
                }
                .encode_to_vec()
                .into(),
            ],
            next_page_token: "t".into(),
        };
        let sent = ListBody::Sent(wire.encode_to_vec().into());
        assert_eq!(sent.encoded_len(), wire.encoded_len());
        let got = pb::ListContainersResponse::decode(sent.encode_to_vec().as_slice()).unwrap();
        assert_eq!(got.containers[0].id, "a");
        assert_eq!(got.next_page_token, "t");
    }
}
