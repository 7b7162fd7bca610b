//! A list whose oldest items are dropped often.

/// A list whose oldest items are dropped often (a window's panes, a distinct field's
/// occurrences): dropping moves nothing (the live list starts at `head`), and the dead
/// prefix is compacted away when a push finds the list full and the prefix at least as
/// long as the live list, so the moves cost O(1) per item and the list reuses its memory
/// instead of growing (draining a `Vec` would move the whole list, up to a window's ring
/// of panes or `distinct_exact_limit` occurrences, on most events of a busy entity).
/// Reads and writes go through the live slice.
#[derive(Debug, Clone)]
pub(super) struct Fifo<T> {
    items: Vec<T>,
    head: usize,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Fifo { items: Vec::new(), head: 0 }
    }
}

impl<T> std::ops::Deref for Fifo<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items[self.head..]
    }
}

impl<T> std::ops::DerefMut for Fifo<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items[self.head..]
    }
}

impl<T: PartialEq> PartialEq for Fifo<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T> From<Vec<T>> for Fifo<T> {
    fn from(items: Vec<T>) -> Self {
        Fifo { items, head: 0 }
    }
}

impl<T> Fifo<T> {
    pub(super) fn push(&mut self, x: T) {
        // Full: reuse the dead prefix if it is at least half, rather than grow. So a list
        // settles at a capacity of under 4x its live length (2x its longest, rounded up to
        // a power of two) instead of reallocating into fresh memory as items pass through,
        // and each move of the live items is paid for by as many pushes.
        if self.items.len() == self.items.capacity() && 2 * self.head >= self.items.len() {
            self.items.drain(..self.head);
            self.head = 0;
        }
        self.items.push(x);
    }

    /// Inserts at position `i` of the live list.
    pub(super) fn insert(&mut self, i: usize, x: T) {
        self.items.insert(self.head + i, x);
    }

    /// Drops the `n` oldest.
    pub(super) fn drop_front(&mut self, n: usize) {
        self.head += n;
        if self.head == self.items.len() {
            self.items.clear();
            self.head = 0;
        }
    }

    pub(super) fn clear(&mut self) {
        self.items.clear();
        self.head = 0;
    }
}
