//! An in-memory index of the containers table, kept in step with it by the
//! store itself: every write that changes a container row updates (or
//! drops) its entry while it still holds the single writer, so entries
//! change in commit order. ListContainers is served from it: rows decoded
//! once at write time instead of at every listing (decoding a listing of
//! 1,000 rows through the driver cost ~15 ms; from here it is a walk over
//! shared entries). Point reads (GetContainer, status) still go to SQLite.
//! If an entry cannot be refreshed, the index is marked stale and rebuilt
//! from the table before its next use.
use crate::model::{Container, ListFilter, ListView};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// Newest first, the id breaking ties (descending), as every listing.
pub(super) type Key = (Reverse<i64>, Reverse<String>);

fn key(c: &Container) -> Key {
    (Reverse(c.created_at_ns), Reverse(c.id.clone()))
}

#[derive(Debug, Default)]
struct Entries {
    by_key: BTreeMap<Key, Entry>,
    keys: HashMap<String, Key>,
}

/// A row and what it weighs in each view, computed when it is stored, so
/// that a page walks the entries without reading every row's strings.
#[derive(Debug)]
struct Entry {
    c: Arc<Container>,
    full: usize,
    summary: usize,
}

impl Entry {
    fn of(c: Container) -> Entry {
        Entry {
            full: c.weight(ListView::Full),
            summary: c.weight(ListView::Summary),
            c: Arc::new(c),
        }
    }

    fn weight(&self, view: ListView) -> usize {
        match view {
            ListView::Full => self.full,
            ListView::Summary => self.summary,
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Index {
    entries: RwLock<Entries>,
    /// Set when an entry could not be refreshed: rebuild before use.
    stale: AtomicBool,
}

impl Index {
    /// Replaces everything (at open, or after the index went stale).
    pub fn load(&self, all: Vec<Container>) {
        let mut e = Entries::default();
        for c in all {
            let k = key(&c);
            e.keys.insert(c.id.clone(), k.clone());
            e.by_key.insert(k, Entry::of(c));
        }
        *self.write() = e;
        self.stale.store(false, Ordering::Release);
    }

    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// Inserts or replaces the entry of `c`.
    pub fn put(&self, c: Container) {
        let k = key(&c);
        let entry = Entry::of(c);
        let mut e = self.write();
        if let Some(old) = e.keys.insert(entry.c.id.clone(), k.clone())
            && old != k
        {
            e.by_key.remove(&old);
        }
        e.by_key.insert(k, entry);
    }

    pub fn remove(&self, id: &str) {
        let mut e = self.write();
        if let Some(k) = e.keys.remove(id) {
            e.by_key.remove(&k);
        }
    }

    /// Up to `limit` entries matching `filter` after `after` (a key), in
    /// listing order, for as long as `fits` says the next one's weight in
    /// `view` still fits; and whether more match after them.
    pub fn page(
        &self,
        filter: &ListFilter,
        after: Option<&Key>,
        limit: usize,
        view: ListView,
        mut fits: impl FnMut(usize) -> bool,
    ) -> (Vec<Arc<Container>>, bool) {
        use std::ops::Bound;
        let e = self.read();
        let from = match after {
            Some(k) => Bound::Excluded(k.clone()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        let unfiltered = filter.is_empty();
        for entry in e
            .by_key
            .range((from, Bound::Unbounded))
            .map(|(_, entry)| entry)
            .filter(|entry| unfiltered || matches(&entry.c, filter))
        {
            let weight = entry.weight(view);
            if out.len() == limit || (!out.is_empty() && !fits(weight)) {
                return (out, true);
            }
            if out.is_empty() {
                fits(weight);
            }
            out.push(entry.c.clone());
        }
        (out, false)
    }

    /// How many containers are in each state.
    pub fn count_by_state(&self) -> HashMap<crate::model::State, usize> {
        let mut counts = HashMap::new();
        for entry in self.read().by_key.values() {
            *counts.entry(entry.c.state).or_insert(0) += 1;
        }
        counts
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The key of a listing cursor.
pub(super) fn cursor_key(created_at_ns: i64, id: &str) -> Key {
    (Reverse(created_at_ns), Reverse(id.to_owned()))
}

/// Whether `c` passes the filters of a listing.
fn matches(c: &Container, f: &ListFilter) -> bool {
    (f.states.is_empty() || f.states.contains(&c.state))
        && f.name_contains
            .as_ref()
            .is_none_or(|n| c.name.contains(n.as_str()))
        && f.labels.iter().all(|(k, v)| c.labels.get(k) == Some(v))
        && f.node.as_ref().is_none_or(|n| c.node.as_ref() == Some(n))
}
