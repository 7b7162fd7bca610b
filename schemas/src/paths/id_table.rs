//! [`IdTable`]: schema id → value, for the per-event lookup of [`super::RecordDecoder`].
//!
//! Read on every event, from every decoding thread; written a few times in a topic's
//! life (a new writer schema). So a read must not write shared memory: an `RwLock`'s
//! reader count, or an `ArcSwap`'s debt slot, is a read-modify-write on every event, and
//! the reader count's cache line bounces between cores when two threads decode at once
//! (`schemas/benches/schema_lookup.rs`). Here a read is plain loads: open addressing
//! (linear probing) over a fixed array of [`OnceLock`] slots, each filled once and never
//! changed, so a reader either sees a slot empty (the end of the probe: a miss) or
//! complete. Writers are serialized by the caller (`RecordDecoder`'s learning mutex), so
//! two never race for one slot; if they did, `OnceLock::set` would keep the first.
//!
//! Entries are never removed (ids are never retired by a registry); the table holds at
//! most [`IdTable::CAPACITY`] − 1 of them (so a probe always ends), and `insert` reports
//! a full table so the caller decodes without caching.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub(crate) struct IdTable<V> {
    slots: Box<[OnceLock<(u32, V)>]>,
    /// Filled slots (written by the one writer at a time).
    len: AtomicUsize,
}

impl<V> IdTable<V> {
    /// Slots; a power of two. At most `MAX_FOREIGN_IDS` (1024) refused ids and a subject's
    /// versions live here, so the load stays around a quarter and probes are short.
    pub(crate) const CAPACITY: usize = 4096;

    pub(crate) fn new() -> Self {
        IdTable { slots: (0..Self::CAPACITY).map(|_| OnceLock::new()).collect(), len: AtomicUsize::new(0) }
    }

    #[inline]
    fn start(id: u32) -> usize {
        // Fibonacci hashing: registry ids are small and dense; the top bits spread them.
        (u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::CAPACITY.trailing_zeros())) as usize
    }

    /// The value for `id`: loads only.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<&V> {
        let mask = Self::CAPACITY - 1;
        let mut i = Self::start(id);
        for _ in 0..Self::CAPACITY {
            match self.slots[i].get() {
                None => return None,
                Some((k, v)) if *k == id => return Some(v),
                Some(_) => i = (i + 1) & mask,
            }
        }
        None
    }

    /// Adds `id` (the caller serializes writers). False when the table is full (one slot
    /// is always left empty, so that a miss ends its probe) or `id` is already there.
    pub(crate) fn insert(&self, id: u32, value: V) -> bool {
        if self.len.load(Ordering::Relaxed) + 1 >= Self::CAPACITY {
            return false;
        }
        let mask = Self::CAPACITY - 1;
        let mut i = Self::start(id);
        loop {
            match self.slots[i].get() {
                Some((k, _)) if *k == id => return false,
                Some(_) => i = (i + 1) & mask,
                None => {
                    let set = self.slots[i].set((id, value)).is_ok();
                    if set {
                        self.len.fetch_add(1, Ordering::Relaxed);
                    }
                    return set;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_inserted_and_nothing_else() {
        let table = IdTable::new();
        for id in (1..=3000u32).step_by(3) {
            assert!(table.insert(id, id * 10));
        }
        for id in 1..=3100u32 {
            let expected = (id % 3 == 1 && id <= 3000).then_some(id * 10);
            assert_eq!(table.get(id).copied(), expected, "id {id}");
        }
        assert!(!table.insert(1, 99), "an id already there keeps its value");
        assert_eq!(table.get(1), Some(&10));
    }

    #[test]
    fn a_full_table_refuses_and_still_answers_misses() {
        let table = IdTable::new();
        for id in 0..(IdTable::<u32>::CAPACITY as u32 - 1) {
            assert!(table.insert(id, id), "{id}");
        }
        assert!(!table.insert(u32::MAX, 7));
        assert_eq!(table.get(u32::MAX), None);
        assert_eq!(table.get(17), Some(&17));
    }
}
