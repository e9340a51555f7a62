//! An in-memory index of the containers table, kept in step with it by the
//! store itself: every write that changes a container row updates (or
//! drops) its entry while it still holds the single writer, so entries
//! change in commit order (the writes of a group, see `writer.rs`, once
//! the group commits). ListContainers is served from it: rows decoded
//! once at write time instead of at every listing (decoding a listing of
//! 1,000 rows through the driver cost ~15 ms; from here it is a walk over
//! shared entries). GetContainer finds its container here too, by id, name
//! or id prefix (`resolve`): a point read through the driver is a round
//! trip to a reader connection's thread and a row decoded. The engine's own
//! reads of one container by id (`Store::get`: the monitor on every exit,
//! the lifetimes service on every start, the cleanup on every removal) are
//! served here too. If an entry cannot be refreshed, the index is marked
//! stale and rebuilt from the table before its next use.
use crate::model::{Container, ListFilter, ListView};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Newest first, the id breaking ties (descending), as every listing.
pub(super) type Key = (Reverse<i64>, Reverse<String>);

fn key(c: &Container) -> Key {
    (Reverse(c.created_at_ns), Reverse(c.id.clone()))
}

#[derive(Debug, Default)]
struct Entries {
    /// Changed with every change of the entries (see `Index::version`).
    version: u64,
    by_key: BTreeMap<Key, Entry>,
    /// By id, in order (an id prefix is a range).
    keys: BTreeMap<String, Key>,
    /// Name -> id.
    names: HashMap<String, String>,
}

impl Entries {
    fn insert(&mut self, c: Container) {
        self.version += 1;
        let k = key(&c);
        let entry = Entry::of(c);
        let id = entry.c.id.clone();
        if let Some(old) = self.keys.insert(id.clone(), k.clone()) {
            self.forget(&old, &id);
        }
        self.names.insert(entry.c.name.clone(), id);
        self.by_key.insert(k, entry);
    }

    fn remove(&mut self, id: &str) {
        if let Some(k) = self.keys.remove(id) {
            self.version += 1;
            self.forget(&k, id);
        }
    }

    /// Drops the entry at `k` (of container `id`) and its name.
    fn forget(&mut self, k: &Key, id: &str) {
        if let Some(old) = self.by_key.remove(k)
            && self.names.get(&old.c.name).is_some_and(|i| i == id)
        {
            self.names.remove(&old.c.name);
        }
    }

    fn by_id(&self, id: &str) -> Option<&Arc<Container>> {
        self.keys
            .get(id)
            .and_then(|k| self.by_key.get(k))
            .map(|e| &e.c)
    }
}

/// What a reference names among the entries (see [`Index::resolve`]).
#[derive(Debug)]
pub(super) enum Resolved {
    One(Arc<Container>),
    /// An id prefix of more than one container.
    Ambiguous,
    None,
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
    /// While a group of writes is open (see `writer.rs`): their changes,
    /// in order, applied once the group commits (an entry never shows a
    /// row that is not committed).
    pending: Mutex<Option<Vec<Change>>>,
}

/// A change of an entry held back until its group of writes commits.
#[derive(Debug)]
enum Change {
    Put(Box<Container>),
    Remove(String),
    /// An entry could not be refreshed: stale again once the group's
    /// changes apply (a rebuild in between reads the table without them).
    Stale,
}

impl Index {
    /// Replaces everything (at open, or after the index went stale).
    pub fn load(&self, all: Vec<Container>) {
        let mut e = Entries::default();
        for c in all {
            e.insert(c);
        }
        let mut entries = self.write();
        // Never a version the entries had before.
        e.version += entries.version + 1;
        *entries = e;
        drop(entries);
        self.stale.store(false, Ordering::Release);
    }

    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
        if let Some(changes) = self.pending().as_mut() {
            changes.push(Change::Stale);
        }
    }

    /// Inserts or replaces the entry of `c` (once its group commits).
    pub fn put(&self, c: Container) {
        match self.pending().as_mut() {
            Some(changes) => changes.push(Change::Put(Box::new(c))),
            None => self.write().insert(c),
        }
    }

    /// Drops the entry of `id` (once its group commits).
    pub fn remove(&self, id: &str) {
        match self.pending().as_mut() {
            Some(changes) => changes.push(Change::Remove(id.to_owned())),
            None => self.write().remove(id),
        }
    }

    /// A group of writes begins: their changes wait for its commit.
    pub fn hold(&self) {
        self.pending().get_or_insert_with(Vec::new);
    }

    /// The group committed: its changes apply, in order, at once.
    pub fn release(&self) {
        let Some(changes) = self.pending().take() else {
            return;
        };
        let mut e = self.write();
        for change in changes {
            match change {
                Change::Put(c) => e.insert(*c),
                Change::Remove(id) => e.remove(&id),
                Change::Stale => self.stale.store(true, Ordering::Release),
            }
        }
    }

    /// The group failed: its changes are dropped. What it did may have
    /// reached the table all the same (a commit that failed after writing),
    /// so the index is rebuilt from it before its next use.
    pub fn discard(&self) {
        self.pending().take();
        self.stale.store(true, Ordering::Release);
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Option<Vec<Change>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A number that changes whenever an entry does: two listings read at
    /// the same version list the same rows (None: stale, to be rebuilt).
    pub fn version(&self) -> Option<u64> {
        match self.is_stale() {
            true => None,
            false => Some(self.read().version),
        }
    }

    /// The container with id `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Container>> {
        self.read().by_id(id).cloned()
    }

    /// The container `reference` names, as the table's `resolve` finds
    /// it: a full id, else an exact name, else a unique hex prefix of an
    /// id (a prefix of ids sorts right before them).
    pub fn resolve(&self, reference: &str) -> Resolved {
        let e = self.read();
        if let Some(c) = e
            .by_id(reference)
            .or_else(|| e.names.get(reference).and_then(|id| e.by_id(id)))
        {
            return Resolved::One(c.clone());
        }
        if reference.is_empty()
            || !reference
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Resolved::None;
        }
        let mut with_prefix = e
            .keys
            .range::<str, _>((Bound::Included(reference), Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(reference))
            .map(|(id, _)| id);
        match (with_prefix.next(), with_prefix.next()) {
            (Some(id), None) => e
                .by_id(id)
                .map_or(Resolved::None, |c| Resolved::One(c.clone())),
            (Some(_), Some(_)) => Resolved::Ambiguous,
            (None, _) => Resolved::None,
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
    ) -> (Vec<Arc<Container>>, bool, u64) {
        use std::ops::Bound;
        let e = self.read();
        let version = e.version;
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
                return (out, true, version);
            }
            if out.is_empty() {
                fits(weight);
            }
            out.push(entry.c.clone());
        }
        (out, false, version)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, created_at_ns: i64) -> Container {
        let mut spec = crate::model::CreateSpec::new("default");
        spec.name = Some(format!("n-{id}"));
        Container::new(id.into(), spec, "default".into(), Vec::new(), created_at_ns)
    }

    #[test]
    fn the_version_changes_with_every_change_and_only_then() {
        let index = Index::default();
        let mut seen = vec![index.version().unwrap()];
        let changed = |index: &Index, seen: &mut Vec<u64>| {
            let v = index.version().unwrap();
            assert!(!seen.contains(&v), "version {v} again: {seen:?}");
            seen.push(v);
        };
        index.put(row("a", 1));
        changed(&index, &mut seen);
        index.put(row("a", 1));
        changed(&index, &mut seen);
        index.remove("a");
        changed(&index, &mut seen);
        // Nothing to remove: nothing changed.
        index.remove("a");
        assert_eq!(index.version(), seen.last().copied());
        // A reload, even of fewer rows than before, is a new version.
        index.put(row("b", 2));
        changed(&index, &mut seen);
        index.load(Vec::new());
        changed(&index, &mut seen);
        // A page is read at the version it reports.
        index.put(row("c", 3));
        let (rows, more, v) =
            index.page(&ListFilter::default(), None, 10, ListView::Full, |_| true);
        assert_eq!((rows.len(), more, Some(v)), (1, false, index.version()));
        // Stale: no version to trust until it is rebuilt.
        index.mark_stale();
        assert_eq!(index.version(), None);
    }
}
