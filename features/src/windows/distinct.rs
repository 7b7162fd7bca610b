//! Exact distinct counts: a field's occurrences, the incremental index over them, and
//! the recount for answers as of an older time.

use smallvec::SmallVec;

use crate::probe::{ProbeEntry, ProbeTable};

use super::fifo::Fifo;
use super::panes::Window;
use super::spec::WindowSpec;

/// A distinct field's occurrences `(time, hash)`, ascending by time.
pub(super) type Occurrences = Fifo<(i64, u64)>;

/// [`Newest`] beyond a few values: value hash -> position, in a [`ProbeTable`] keyed by
/// the value's hash itself (mixed already, see [`distinct_hash`](super::distinct_hash)). A lookup usually reads
/// one cache line of a table that is cold on a quiet entity's event, and that line can be
/// prefetched from the event's value ([`EntityState::prefetch`](super::EntityState::prefetch)).
#[derive(Debug, Clone)]
pub(super) struct PositionTable(pub(super) ProbeTable<Position>);

/// A [`PositionTable`] entry: a value's hash and its position plus one (0: free).
#[derive(Debug, Clone, Copy)]
pub(super) struct Position {
    hash: u64,
    at: u64,
}

impl ProbeEntry for Position {
    const EMPTY: Position = Position { hash: 0, at: 0 };
    fn is_empty(&self) -> bool {
        self.at == 0
    }
}

impl PositionTable {
    pub(super) fn with_capacity(values: usize) -> Self {
        PositionTable(ProbeTable::with_capacity(values))
    }

    pub(super) fn get(&self, h: u64) -> Option<u64> {
        self.0.entry(self.0.probe(h, |e| e.hash == h)).at.checked_sub(1)
    }

    /// Sets `h`'s position, returning the one it had.
    pub(super) fn insert(&mut self, h: u64, at: u64) -> Option<u64> {
        self.0.reserve_one(|e| e.hash);
        let i = self.0.probe(h, |e| e.hash == h);
        self.0.put(i, Position { hash: h, at: at + 1 }).at.checked_sub(1)
    }

    pub(super) fn remove(&mut self, h: u64) {
        let i = self.0.probe(h, |e| e.hash == h);
        self.0.remove(i, |e| e.hash);
    }

    pub(super) fn positions(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().map(|e| e.at - 1)
    }

    pub(super) fn prefetch(&self, h: u64) {
        self.0.prefetch(h);
    }
}

/// Exact distinct counts of one field as of each window's newest pane, kept up to date as
/// occurrences arrive in time order, so that an event costs O(windows) instead of a pass
/// over the occurrences.
///
/// As of the newest pane, a window holds the occurrences at or after its start `lo`, and
/// a value is in it exactly when the value's newest occurrence is. So per value we keep
/// the position of its newest occurrence, and per window the position of its first
/// occurrence and the number of values whose newest occurrence is at or after it. An
/// occurrence appended at the end can only make its value newer; a window start moving
/// past a value's newest occurrence takes that value out. Positions are absolute
/// (`base` + index in the occurrence list) so that dropping from the front moves nothing.
///
/// Derived data: never stored, invalid after an out-of-order insertion (positions shift)
/// or a load, then rebuilt in one pass on next need.
#[derive(Debug, Clone, Default)]
pub(super) struct DistinctIndex {
    pub(super) valid: bool,
    /// No window has slid since the index last synced, so its counts answer for the
    /// windows' newest panes. [`EntityState::add`](super::EntityState::add) clears it when a window slides (a
    /// preview adds without syncing); one flag instead of each window's pane at the sync.
    pub(super) panes_synced: bool,
    /// Absolute position of the first occurrence in the list.
    pub(super) base: u64,
    /// Occurrences below this absolute position are accounted for.
    pub(super) synced: u64,
    /// Per value hash: absolute position of its newest occurrence.
    pub(super) newest: Newest,
    /// Per window: absolute position of its first occurrence, and its distinct count.
    pub(super) start: SmallVec<[u64; 4]>,
    pub(super) count: SmallVec<[u32; 4]>,
}

/// [`DistinctIndex::newest`]: per value hash, the position of its newest occurrence. A
/// short list scanned in place while the values are few (a quiet entity's usual case, so
/// its event reads no hash table of its own, cold in memory), a [`PositionTable`] beyond.
#[derive(Debug, Clone)]
pub(super) enum Newest {
    Few(SmallVec<[(u64, u64); Newest::FEW]>),
    Many(PositionTable),
}

impl Default for Newest {
    fn default() -> Self {
        Newest::Few(SmallVec::new())
    }
}

impl Newest {
    pub(super) const FEW: usize = 8;

    pub(super) fn get(&self, h: u64) -> Option<u64> {
        match self {
            Newest::Few(few) => few.iter().find(|e| e.0 == h).map(|e| e.1),
            Newest::Many(many) => many.get(h),
        }
    }

    /// Sets `h`'s position, returning the one it had.
    pub(super) fn insert(&mut self, h: u64, at: u64) -> Option<u64> {
        match self {
            Newest::Few(few) => {
                if let Some(e) = few.iter_mut().find(|e| e.0 == h) {
                    return Some(std::mem::replace(&mut e.1, at));
                }
                if few.len() < Self::FEW {
                    few.push((h, at));
                } else {
                    let mut many = PositionTable::with_capacity(2 * Self::FEW);
                    for &(k, p) in few.iter() {
                        many.insert(k, p);
                    }
                    many.insert(h, at);
                    *self = Newest::Many(many);
                }
                None
            }
            Newest::Many(many) => many.insert(h, at),
        }
    }

    pub(super) fn remove(&mut self, h: u64) {
        match self {
            Newest::Few(few) => {
                if let Some(i) = few.iter().position(|e| e.0 == h) {
                    few.swap_remove(i);
                }
            }
            Newest::Many(many) => many.remove(h),
        }
    }

    pub(super) fn clear(&mut self) {
        *self = Newest::default();
    }

    /// How many values have their newest occurrence at or after position `from`.
    pub(super) fn count_from(&self, from: u64) -> usize {
        match self {
            Newest::Few(few) => few.iter().filter(|e| e.1 >= from).count(),
            Newest::Many(many) => many.positions().filter(|&at| at >= from).count(),
        }
    }
}

impl DistinctIndex {
    /// Accounts for `dropped`, the occurrences about to leave the front of the list (all
    /// before every window's start as of the windows' current panes).
    ///
    /// A window that slid past some of them since the last sync still has its start among
    /// them: its start moves past them here, as [`DistinctIndex::sync`] would move it,
    /// while their values' newest positions are still known. (Marking the index invalid
    /// instead would rebuild it from every occurrence on the next sync: a quiet entity,
    /// whose windows slide further than the lateness between two of its events, would pay
    /// a rebuild of its value map on each event.)
    #[inline]
    pub(super) fn drop_front(&mut self, dropped: &[(i64, u64)]) {
        let end = self.base + dropped.len() as u64;
        if self.valid {
            for k in 0..self.start.len() {
                while self.start[k] < end {
                    self.pass_start(k, dropped[(self.start[k] - self.base) as usize].1);
                }
            }
            for (i, o) in dropped.iter().enumerate() {
                let at = self.base + i as u64;
                if at < self.synced && self.newest.get(o.1) == Some(at) {
                    self.newest.remove(o.1);
                }
            }
            self.synced = self.synced.max(end);
        }
        self.base = end;
    }

    /// Brings the index up to date with `occ` and the windows' current panes.
    #[inline]
    pub(super) fn sync(&mut self, occ: &[(i64, u64)], windows: &[Window], specs: &[WindowSpec]) {
        let lo = |k: usize| (windows[k].cur - specs[k].panes + 1).saturating_mul(specs[k].pane_ms);
        let end = self.base + occ.len() as u64;
        if !self.valid {
            self.newest.clear();
            for (i, o) in occ.iter().enumerate() {
                self.newest.insert(o.1, self.base + i as u64);
            }
            self.start = (0..specs.len()).map(|k| self.base + occ.partition_point(|o| o.0 < lo(k)) as u64).collect();
            self.count = self.start.iter().map(|&s| self.newest.count_from(s) as u32).collect();
            self.synced = end;
            self.panes_synced = true;
            self.valid = true;
            return;
        }
        for at in self.synced..end {
            let h = occ[(at - self.base) as usize].1;
            let old = self.newest.insert(h, at);
            // The value's newest occurrence moves to `at`, which every window contains
            // (starts never pass `synced`); count it where its old one was not.
            for (count, &start) in self.count.iter_mut().zip(&self.start) {
                if old.is_none_or(|p| p < start) {
                    *count += 1;
                }
            }
        }
        self.synced = end;
        for k in 0..specs.len() {
            let lo = lo(k);
            while self.start[k] < end {
                let o = occ[(self.start[k] - self.base) as usize];
                if o.0 >= lo {
                    break;
                }
                self.pass_start(k, o.1);
            }
        }
        self.panes_synced = true;
    }

    /// Moves window `k`'s start past the occurrence there, of value hash `h`: the value
    /// leaves the window if that was its newest occurrence.
    fn pass_start(&mut self, k: usize, h: u64) {
        if self.newest.get(h) == Some(self.start[k]) {
            self.count[k] -= 1;
        }
        self.start[k] += 1;
    }

    /// Window `k`'s count as of its newest pane, if the index was synced with a list of
    /// `len` occurrences and the windows' panes.
    pub(super) fn count(&self, k: usize, len: usize) -> Option<f64> {
        (self.valid && self.panes_synced && self.synced == self.base + len as u64).then(|| f64::from(self.count[k]))
    }
}

thread_local! {
    /// The hash set exact distinct counts reuse (no allocation per event).
    pub(super) static SCRATCH: std::cell::RefCell<SeenHashes> = std::cell::RefCell::new(SeenHashes::default());
}

/// The value hashes a recount of distinct values has seen: a [`ProbeTable`] of
/// [`Position`]s whose position is unused (an entry present is a hash seen).
#[derive(Default)]
pub(super) struct SeenHashes(ProbeTable<Position>);

impl SeenHashes {
    /// Empties the set, sized for up to `n` elements.
    fn reset(&mut self, n: usize) {
        self.0.clear(n);
    }

    /// Inserts `h`; whether it was new.
    fn insert(&mut self, h: u64) -> bool {
        self.0.reserve_one(|e| e.hash);
        let i = self.0.probe(h, |e| e.hash == h);
        self.0.put(i, Position { hash: h, at: 1 }).is_empty()
    }
}

/// Exact distinct counts of `occ` (ascending by time) in every window as of `t`. The
/// windows whose end is past the newest occurrence (all of them when `t` is the newest
/// event) are counted in one pass from the newest occurrence back, by window start.
pub(super) fn exact_distinct(occ: &[(i64, u64)], windows: &[WindowSpec], t: i64, set: &mut SeenHashes) -> Vec<f64> {
    let ranges: Vec<(i64, i64)> = windows
        .iter()
        .map(|s| {
            let pt = s.pane_of(t);
            ((pt - s.panes + 1).saturating_mul(s.pane_ms), (pt + 1).saturating_mul(s.pane_ms))
        })
        .collect();
    let newest = occ.last().map_or(i64::MIN, |o| o.0);
    let mut out = vec![0.0; windows.len()];
    let mut open: Vec<usize> = (0..windows.len()).filter(|&k| ranges[k].1 > newest).collect();
    open.sort_by_key(|&k| std::cmp::Reverse(ranges[k].0));
    set.reset(occ.len());
    let (mut j, mut count) = (occ.len(), 0.0);
    for &k in &open {
        while j > 0 && occ[j - 1].0 >= ranges[k].0 {
            j -= 1;
            count += set.insert(occ[j].1) as u8 as f64;
        }
        out[k] = count;
    }
    for k in (0..windows.len()).filter(|&k| ranges[k].1 <= newest) {
        let (lo, hi) = ranges[k];
        let start = occ.partition_point(|o| o.0 < lo);
        let end = occ.partition_point(|o| o.0 < hi).max(start);
        set.reset(end - start);
        out[k] = occ[start..end].iter().map(|o| set.insert(o.1) as u8 as f64).sum();
    }
    out
}
