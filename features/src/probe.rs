//! The open-addressing hash table under the engine's hash lookups: the embedded store's
//! entity id -> slab slot ([`crate::embedded`]), the exact-distinct index's value -> newest
//! position, and the set of values a recount of distinct values has seen
//! ([`crate::windows`]). Linear probing from the hash's low bits in a
//! power-of-two array at most half full, so a lookup usually reads one cache line, and the
//! line is known from the hash alone: a caller can prefetch it before the lookup, which
//! std's map does not allow (it reads its control bytes, then the entry, wherever they are).
//! Removal shifts the entries after the hole back instead of leaving a tombstone.
//!
//! The table stores entries; what an entry holds, and how it is compared, is its owner's:
//! a lookup passes the hash and a predicate, growth and removal the way to rehash one.

use crate::hint::prefetch_address;

/// An entry of a [`ProbeTable`]: [`ProbeEntry::EMPTY`] marks a free one.
pub(crate) trait ProbeEntry {
    const EMPTY: Self;
    fn is_empty(&self) -> bool;
}

#[derive(Debug, Clone)]
pub(crate) struct ProbeTable<E> {
    /// A power of two long, at least [`ProbeTable::MIN`].
    entries: Box<[E]>,
    len: usize,
}

impl<E: ProbeEntry> Default for ProbeTable<E> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<E: ProbeEntry> ProbeTable<E> {
    const MIN: usize = 16;

    /// A table that holds `values` entries without growing.
    pub(crate) fn with_capacity(values: usize) -> Self {
        let size = (2 * values).next_power_of_two().max(Self::MIN);
        ProbeTable { entries: std::iter::repeat_with(|| E::EMPTY).take(size).collect(), len: 0 }
    }

    /// Empties the table, sized to hold `values` entries without growing. The array is
    /// kept when it is large enough and at most four times that, so that a table emptied
    /// often (a scratch set) neither reallocates each time nor clears far more entries
    /// than it will hold.
    pub(crate) fn clear(&mut self, values: usize) {
        let size = (2 * values).next_power_of_two().max(Self::MIN);
        if self.entries.len() < size || self.entries.len() > 4 * size {
            *self = Self::with_capacity(values);
        } else {
            self.entries.iter_mut().for_each(|e| *e = E::EMPTY);
            self.len = 0;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Entries in the array, free ones included.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// Starts loading the entry a probe of `hash` reads first.
    pub(crate) fn prefetch(&self, hash: u64) {
        prefetch_address((&self.entries[hash as usize & self.mask()] as *const E).cast());
    }

    /// The index of the first entry of `hash`'s probe run that `is`, or of the free entry
    /// that ends the run (where such an entry would go).
    pub(crate) fn probe(&self, hash: u64, is: impl Fn(&E) -> bool) -> usize {
        let mask = self.mask();
        let mut i = hash as usize & mask;
        while !self.entries[i].is_empty() && !is(&self.entries[i]) {
            i = (i + 1) & mask;
        }
        i
    }

    pub(crate) fn entry(&self, i: usize) -> &E {
        &self.entries[i]
    }

    /// Makes room for one more entry (doubling the array if it would be over half full:
    /// `hash_of` gives each entry's hash again), so that a [`ProbeTable::probe`] that
    /// follows finds where to [`ProbeTable::put`] it.
    #[inline]
    pub(crate) fn reserve_one(&mut self, hash_of: impl Fn(&E) -> u64) {
        if 2 * (self.len + 1) > self.entries.len() {
            self.grow(hash_of);
        }
    }

    /// Doubles the array (rare: out of line, so that the check above stays inline).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, hash_of: impl Fn(&E) -> u64) {
        let mut bigger = Self::with_capacity(self.entries.len());
        for entry in std::mem::take(&mut self.entries).into_vec().into_iter().filter(|e| !e.is_empty()) {
            let i = bigger.probe(hash_of(&entry), |_| false);
            bigger.entries[i] = entry;
        }
        bigger.len = self.len;
        *self = bigger;
    }

    /// Puts `entry` at `i` (from a [`ProbeTable::probe`] after a
    /// [`ProbeTable::reserve_one`]), returning what was there.
    pub(crate) fn put(&mut self, i: usize, entry: E) -> E {
        let old = std::mem::replace(&mut self.entries[i], entry);
        self.len += usize::from(old.is_empty());
        old
    }

    /// Frees entry `i` (`hash_of` gives an entry's hash): an entry after the hole moves
    /// into it unless that would put it before its home, so that every entry stays
    /// reachable from its home.
    pub(crate) fn remove(&mut self, mut hole: usize, hash_of: impl Fn(&E) -> u64) {
        if self.entries[hole].is_empty() {
            return;
        }
        let mask = self.mask();
        let mut j = (hole + 1) & mask;
        while !self.entries[j].is_empty() {
            let home = hash_of(&self.entries[j]) as usize & mask;
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.entries.swap(hole, j);
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.entries[hole] = E::EMPTY;
        self.len -= 1;
    }

    /// The entries held, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &E> + '_ {
        self.entries.iter().filter(|e| !e.is_empty())
    }
}
