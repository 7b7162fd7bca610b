//! The Redis store's state cache: the entity states this process wrote last, kept
//! decoded between batches (the store's module docs, "The state cache", say when one may
//! be used).

use std::collections::HashMap;

use crate::windows::EntityState;

/// The states this store wrote last, with the version each was written as: a cached
/// state is current exactly when Redis still holds that version, which the
/// compare-and-set checks anyway. Bounded: the least recently used are dropped.
pub(super) struct StateCache {
    capacity: usize,
    tick: u64,
    /// By kind, then id (looked up by `&str`: no allocation per entity per batch). A slot
    /// is `None` while a batch has the state out.
    entries: HashMap<String, foldhash::HashMap<String, Option<Cached>>>,
    pub(super) len: usize,
    pub(super) hits: u64,
    pub(super) misses: u64,
}

struct Cached {
    version: String,
    state: EntityState,
    used: u64,
}

impl StateCache {
    pub(super) fn new(capacity: usize) -> Self {
        StateCache { capacity, tick: 0, entries: HashMap::new(), len: 0, hits: 0, misses: 0 }
    }

    /// Takes an entity's state out (so that a concurrent batch cannot use it too).
    pub(super) fn take(&mut self, kind: &str, id: &str) -> Option<(String, EntityState)> {
        let found = self.entries.get_mut(kind).and_then(|m| m.get_mut(id)).and_then(Option::take).map(|c| (c.version, c.state));
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    pub(super) fn put(&mut self, kind: &str, id: &str, version: String, state: EntityState) {
        if self.capacity == 0 {
            return;
        }
        self.tick += 1;
        let cached = Some(Cached { version, state, used: self.tick });
        if !self.entries.contains_key(kind) {
            self.entries.insert(kind.to_string(), foldhash::HashMap::default());
        }
        let Some(by_id) = self.entries.get_mut(kind) else { return };
        match by_id.get_mut(id) {
            Some(slot) => *slot = cached,
            None => {
                by_id.insert(id.to_string(), cached);
                self.len += 1;
            }
        }
        if self.len > self.capacity {
            // Drop the least recently used tenth at once (and slots a batch holds): O(n)
            // every capacity/10 inserts.
            let keep = self.capacity - self.capacity / 10;
            let mut ticks: Vec<u64> = self.entries.values().flat_map(|m| m.values().flatten().map(|c| c.used)).collect();
            let oldest_kept = match ticks.len().checked_sub(keep) {
                Some(cut) if cut < ticks.len() => *ticks.select_nth_unstable(cut).1,
                _ => 0,
            };
            for by_id in self.entries.values_mut() {
                by_id.retain(|_, c| c.as_ref().is_some_and(|c| c.used >= oldest_kept));
            }
            self.len = self.entries.values().map(|m| m.len()).sum();
        }
    }
}
