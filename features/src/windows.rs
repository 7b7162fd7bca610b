//! Sliding windows in event time, the reference algorithm.
//!
//! Each window of length `L` is cut into panes of length `P` (`P` divides `L`). An event
//! at event time `t` falls in pane `p(t) = floor(t / P)`. The window *as of* `t` is the
//! `L / P` panes ending with `p(t)`: `[p(t) - L/P + 1, p(t)]`.
//!
//! ## Cost: running totals, not pane scans
//!
//! Per pane we keep a count and a sum, and per window the *running totals* of the window
//! as of the entity's newest pane (`cur`, the pane of `max_t`). An event in the newest
//! pane (the common case) costs one pane update and one totals update per window. When an
//! event moves `cur` forward by `g` panes, the panes that slide out are subtracted: at most
//! `min(g, L/P)` steps, and a jump of a whole window or more just zeroes the totals. So the
//! work per event is bounded by how far event time moved, not by the window length: over
//! any stream an entity walks each pane at most once on the way out.
//!
//! An out-of-order event (within the allowed lateness) updates its own pane, and the
//! totals if that pane is inside the current window. Its answer *as of its own time* is
//! derived from the totals by taking off the panes after its pane and adding back the ones
//! that slid out since — at most `ceil(lateness / P) + 1` panes each way. Only an event
//! more than a whole window behind `cur` (late, or a replay) is summed pane by pane.
//!
//! Sums are updated by adding and subtracting doubles, so they carry rounding of the order
//! of 1e-16 times the largest running total. They never reach an empty window by
//! subtraction (the newest pane is always inside): a jump of a whole window resets the
//! totals to exactly 0, and an earlier-time answer that counts nothing is exactly 0.
//! The Redis script performs the same operations in the same order on the same doubles,
//! so both stores give bit-identical answers (`tests/tests/store_parity.rs`).
//!
//! ## The ring, and expiry
//!
//! Panes live in a ring of `L/P + ceil(lateness/P) + 1` slots indexed by `p mod slots`.
//! A slot holds the pane index it was last written for; a write for a newer pane (or to
//! an empty slot, count 0) resets it. The ring is just big enough that every pane a non-late event can need is still in
//! it, so expiry needs no separate sweep and memory per entity is fixed.
//!
//! An event is *late* when `t < max_t - lateness`, `max_t` being the newest event time seen
//! for the entity; late events are not applied (and are counted by the caller).
//!
//! ## One flat array of doubles, shared with Redis
//!
//! The state is a flat array of `f64` *cells* (layout below) plus the replay fences. The
//! Redis store keeps the same cells in the entity's state hash: the header as one binary
//! field, each ring slot ever written as one binary field, each fence as one field
//! ([`EntityState::from_hash_fields`] reads them back), so the script reads and writes only
//! the few fields an event touches and parses nothing. [`EntityState::to_bytes`] is the
//! same state as one compact string. Integers (pane indices, counts, times, offsets) are
//! exact in a double up to 2^53.
//!
//! | cells | meaning |
//! |---|---|
//! | 0 | layout fingerprint ([`layout_fingerprint`]) |
//! | 1 | `max_t`, the newest applied event time (−∞ before the first) |
//! | `2 + 3k`, `+1`, `+2` | window `k`: `cur`, count total, sum total |
//! | from `ring_base(k)` | window `k`'s ring: per slot, pane index, count, sum (all zero when empty) |
//!
//! The header (everything but the rings) is contiguous: one field in Redis, read and
//! written whole by every event.
//!
//! Fences follow the cells: per (topic, partition), a little-endian `u16` topic length,
//! the topic bytes, then the partition and the highest applied offset as doubles.

use weir_schemas::store::{Applied, Observation, ObservationResult};

/// `cur` before the first event: below any real pane.
pub const EMPTY_PANE: f64 = -9_007_199_254_740_992.0;

/// Version of the cell layout; part of the fingerprint, bump it when the layout changes.
const LAYOUT_VERSION: u32 = 2;

/// Cells before the first window.
const HEADER_CELLS: usize = 2;
/// Cells per window in the header: `cur`, count total, sum total.
const WINDOW_HEAD_CELLS: usize = 3;
/// Cells per pane: index, count, sum.
const PANE_CELLS: usize = 3;

/// One window, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    pub name: String,
    pub length_ms: i64,
    pub pane_ms: i64,
    /// Panes per window, `length / pane`.
    pub panes: i64,
    /// Ring size: panes + lateness panes + 1.
    pub slots: i64,
}

impl WindowSpec {
    pub fn new(name: &str, length_ms: u64, pane_ms: u64, lateness_ms: i64) -> Self {
        let (length_ms, pane_ms) = (length_ms as i64, pane_ms as i64);
        let panes = length_ms / pane_ms;
        let slots = panes + (lateness_ms + pane_ms - 1) / pane_ms + 1;
        WindowSpec {
            name: name.to_string(),
            length_ms,
            pane_ms,
            panes,
            slots,
        }
    }

    pub fn pane_of(&self, t: i64) -> i64 {
        t.div_euclid(self.pane_ms)
    }

    /// Cells of this window's ring.
    pub fn ring_cells(&self) -> usize {
        PANE_CELLS * self.slots as usize
    }
}

/// Names of the values a store returns, in order: per window, count then sum.
pub fn value_names(windows: &[WindowSpec]) -> Vec<String> {
    windows
        .iter()
        .flat_map(|w| {
            [
                format!("count_{}", w.name),
                format!("amount_sum_{}", w.name),
            ]
        })
        .collect()
}

/// Cells of the header (fingerprint, `max_t`, and per window `cur` and the totals).
pub fn header_cells(windows: &[WindowSpec]) -> usize {
    HEADER_CELLS + WINDOW_HEAD_CELLS * windows.len()
}

/// First cell of each window's ring, and the total number of cells.
pub fn ring_bases(windows: &[WindowSpec]) -> (Vec<usize>, usize) {
    let mut bases = Vec::with_capacity(windows.len());
    let mut next = header_cells(windows);
    for w in windows {
        bases.push(next);
        next += w.ring_cells();
    }
    (bases, next)
}

/// A number that changes whenever the cell layout of these windows does (layout version,
/// and per window its pane length, panes and slots; not its name). Kept in cell 0 so that
/// state written under another configuration is refused instead of misread.
pub fn layout_fingerprint(windows: &[WindowSpec]) -> f64 {
    // FNV-1a, 32 bits: small enough to be exact in a double and in Lua.
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |x: i64| {
        for b in x.to_le_bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    eat(i64::from(LAYOUT_VERSION));
    for w in windows {
        eat(w.pane_ms);
        eat(w.panes);
        eat(w.slots);
    }
    f64::from(h)
}

/// One entity's window state: the cells (see the module docs) and the replay fences.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityState {
    cells: Vec<f64>,
    /// Highest applied offset per (topic, partition): the replay fence. A short list, not
    /// a map: an entity is almost always fed by one partition, and a linear scan avoids
    /// allocating a key per event.
    fences: Vec<(String, i32, i64)>,
}

impl EntityState {
    pub fn new(windows: &[WindowSpec]) -> Self {
        let (_, len) = ring_bases(windows);
        let mut cells = vec![0.0; len];
        cells[0] = layout_fingerprint(windows);
        cells[1] = f64::NEG_INFINITY;
        // Ring slots stay all zeros: a slot with count 0 is empty (a written slot holds at
        // least one event). Redis zero-fills a new string the same way.
        for k in 0..windows.len() {
            cells[HEADER_CELLS + WINDOW_HEAD_CELLS * k] = EMPTY_PANE;
        }
        EntityState {
            cells,
            fences: Vec::new(),
        }
    }

    pub fn max_event_time(&self) -> Option<i64> {
        let t = self.cells[1];
        (t != f64::NEG_INFINITY).then_some(t as i64)
    }

    /// Applies one observation (unless fenced or late) and returns the aggregates as of its
    /// event time.
    pub fn apply(
        &mut self,
        windows: &[WindowSpec],
        lateness_ms: i64,
        obs: &Observation,
    ) -> ObservationResult {
        let t = obs.event_time_ms;
        let pos = &obs.position;
        let fence = self
            .fences
            .iter_mut()
            .find(|(topic, partition, _)| *partition == pos.partition && *topic == pos.topic);
        let applied = match fence {
            Some((_, _, applied_up_to)) if pos.offset <= *applied_up_to => Applied::Replayed,
            fence => {
                match fence {
                    Some((_, _, applied_up_to)) => *applied_up_to = pos.offset,
                    None => self
                        .fences
                        .push((pos.topic.clone(), pos.partition, pos.offset)),
                }
                if (t as f64) < self.cells[1] - lateness_ms as f64 {
                    Applied::Late
                } else {
                    self.add(windows, t, obs.value);
                    Applied::Applied
                }
            }
        };
        ObservationResult {
            applied,
            values: self.values_at(windows, t),
        }
    }

    /// Adds a non-late event to every window.
    fn add(&mut self, windows: &[WindowSpec], t: i64, v: f64) {
        let c = &mut self.cells;
        let mut r = header_cells(windows);
        for (k, w) in windows.iter().enumerate() {
            let b = HEADER_CELLS + WINDOW_HEAD_CELLS * k;
            let p = w.pane_of(t);
            let cur = c[b] as i64;
            if p > cur {
                if p - cur >= w.panes {
                    c[b + 1] = 0.0;
                    c[b + 2] = 0.0;
                } else {
                    // Panes [cur - panes + 1, p - panes] slide out, oldest first.
                    let first = cur - w.panes + 1;
                    let mut s = first.rem_euclid(w.slots) as usize;
                    for q in first..=p - w.panes {
                        let at = r + PANE_CELLS * s;
                        if c[at] == q as f64 {
                            c[b + 1] -= c[at + 1];
                            c[b + 2] -= c[at + 2];
                        }
                        s += 1;
                        if s == w.slots as usize {
                            s = 0;
                        }
                    }
                }
                c[b] = p as f64;
            }
            let at = r + PANE_CELLS * p.rem_euclid(w.slots) as usize;
            if c[at] < p as f64 || c[at + 1] == 0.0 {
                c[at] = p as f64;
                c[at + 1] = 0.0;
                c[at + 2] = 0.0;
            }
            // c[at] > p cannot happen for a non-late event (ring size).
            if c[at] == p as f64 {
                c[at + 1] += 1.0;
                c[at + 2] += v;
                if p > c[b] as i64 - w.panes {
                    c[b + 1] += 1.0;
                    c[b + 2] += v;
                }
            }
            r += w.ring_cells();
        }
        if t as f64 > c[1] {
            c[1] = t as f64;
        }
    }

    /// Aggregates as of event time `t`: per window, count then sum.
    pub fn values_at(&self, windows: &[WindowSpec], t: i64) -> Vec<f64> {
        let c = &self.cells;
        let mut out = Vec::with_capacity(windows.len() * 2);
        let mut r = header_cells(windows);
        for (k, w) in windows.iter().enumerate() {
            let b = HEADER_CELLS + WINDOW_HEAD_CELLS * k;
            let pt = w.pane_of(t);
            let cur = c[b] as i64;
            let pane = |q: i64| {
                let at = r + PANE_CELLS * q.rem_euclid(w.slots) as usize;
                (c[at] == q as f64).then(|| (c[at + 1], c[at + 2]))
            };
            let (mut count, mut sum);
            if pt == cur {
                (count, sum) = (c[b + 1], c[b + 2]);
            } else if pt > cur || cur - pt >= w.panes {
                // Nothing shared with the current window: sum the panes (those still in
                // the ring; a late event's older panes may have been recycled).
                (count, sum) = (0.0, 0.0);
                for q in pt - w.panes + 1..=pt {
                    if let Some((n, s)) = pane(q) {
                        count += n;
                        sum += s;
                    }
                }
            } else {
                // The current totals, minus the panes after pt, plus the panes that slid
                // out of the current window but are inside the window as of t.
                (count, sum) = (c[b + 1], c[b + 2]);
                for q in pt + 1..=cur {
                    if let Some((n, s)) = pane(q) {
                        count -= n;
                        sum -= s;
                    }
                }
                for q in pt - w.panes + 1..=cur - w.panes {
                    if let Some((n, s)) = pane(q) {
                        count += n;
                        sum += s;
                    }
                }
                if count == 0.0 {
                    sum = 0.0;
                }
            }
            out.push(count);
            out.push(sum);
            r += w.ring_cells();
        }
        out
    }

    /// Aggregates as of the newest event (what the readable Redis hash holds): the running
    /// totals.
    pub fn current_values(&self, windows: &[WindowSpec]) -> Option<Vec<f64>> {
        self.max_event_time()?;
        let mut out = Vec::with_capacity(windows.len() * 2);
        for k in 0..windows.len() {
            let b = HEADER_CELLS + WINDOW_HEAD_CELLS * k;
            out.push(self.cells[b + 1]);
            out.push(self.cells[b + 2]);
        }
        Some(out)
    }

    /// The cells (see the module docs).
    pub fn cells(&self) -> &[f64] {
        &self.cells
    }

    /// The replay fences, sorted by topic and partition: (topic, partition, highest applied
    /// offset).
    pub fn fences(&self) -> Vec<(String, i32, i64)> {
        let mut fences = self.fences.clone();
        fences.sort();
        fences
    }

    /// Rebuilds a state from the fields of the Redis state hash (`h` the header as doubles;
    /// a ring slot named by 3 bytes: window number from 1, slot / 256, slot % 256;
    /// `f:<topic>:<partition>` a fence), refusing one written for another window layout.
    pub fn from_hash_fields(windows: &[WindowSpec], fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Self, String> {
        let mut state = EntityState::new(windows);
        let (bases, _) = ring_bases(windows);
        let doubles = |bytes: &[u8]| -> Vec<f64> {
            bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()
        };
        let mut header = false;
        for (name, value) in fields {
            if let [k, hi, lo] = name[..] {
                let (k, s) = (k as usize, usize::from(hi) * 256 + usize::from(lo));
                if k < 1 || k > windows.len() || s >= windows[k - 1].slots as usize {
                    return Err(format!("unexpected state field {name:?}"));
                }
                let cells = doubles(value);
                if cells.len() != PANE_CELLS || value.len() != PANE_CELLS * 8 {
                    return Err(format!("state field {name:?} is {} bytes, not {}", value.len(), PANE_CELLS * 8));
                }
                let at = bases[k - 1] + PANE_CELLS * s;
                state.cells[at..at + PANE_CELLS].copy_from_slice(&cells);
                continue;
            }
            let name = String::from_utf8_lossy(name);
            if name == "h" {
                let cells = doubles(value);
                if cells.len() != header_cells(windows) || value.len() % 8 != 0 {
                    return Err(format!("state header is {} bytes, the window layout needs {}", value.len(), header_cells(windows) * 8));
                }
                let expected = layout_fingerprint(windows);
                if cells[0] != expected {
                    return Err(format!(
                        "state has layout fingerprint {}, the configured windows have {expected}: it was written under other window settings",
                        cells[0]
                    ));
                }
                state.cells[..cells.len()].copy_from_slice(&cells);
                header = true;
            } else if let Some(fence) = name.strip_prefix("f:") {
                let (topic, partition) = fence.rsplit_once(':').ok_or_else(|| format!("bad fence field {name:?}"))?;
                let partition = partition.parse().map_err(|_| format!("bad fence field {name:?}"))?;
                let offset = String::from_utf8_lossy(value);
                let offset = offset.parse().map_err(|_| format!("fence {name:?} holds {offset:?}"))?;
                state.fences.push((topic.to_string(), partition, offset));
            } else {
                return Err(format!("unexpected state field {name:?}"));
            }
        }
        if !header && !fields.is_empty() {
            return Err("state has no header field".to_string());
        }
        state.fences.sort();
        Ok(state)
    }

    /// The state as one compact string: cells then fences, little-endian (for snapshots
    /// and tests; the Redis store keeps the same cells split into hash fields).
    pub fn to_bytes(&self) -> Vec<u8> {
        let fence_bytes: usize = self
            .fences
            .iter()
            .map(|(topic, _, _)| 2 + topic.len() + 16)
            .sum();
        let mut out = Vec::with_capacity(self.cells.len() * 8 + fence_bytes);
        for x in &self.cells {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for (topic, partition, offset) in &self.fences {
            // Topics are at most 249 bytes (Kafka's limit).
            out.extend_from_slice(&(topic.len() as u16).to_le_bytes());
            out.extend_from_slice(topic.as_bytes());
            out.extend_from_slice(&f64::from(*partition).to_le_bytes());
            out.extend_from_slice(&(*offset as f64).to_le_bytes());
        }
        out
    }

    /// Reads a state written by [`EntityState::to_bytes`] or the Redis script, refusing one
    /// written for another window layout.
    pub fn from_bytes(windows: &[WindowSpec], bytes: &[u8]) -> Result<Self, String> {
        let (_, len) = ring_bases(windows);
        if bytes.len() < len * 8 {
            return Err(format!(
                "state is {} bytes, the window layout needs at least {}",
                bytes.len(),
                len * 8
            ));
        }
        let double = |at: usize| f64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        let cells: Vec<f64> = (0..len).map(|i| double(i * 8)).collect();
        let expected = layout_fingerprint(windows);
        if cells[0] != expected {
            return Err(format!(
                "state has layout fingerprint {}, the configured windows have {expected}: it was written under other window settings",
                cells[0]
            ));
        }
        let mut fences = Vec::new();
        let mut at = len * 8;
        while at < bytes.len() {
            let truncated = || format!("fence at byte {at} is truncated");
            let n = u16::from_le_bytes(
                bytes
                    .get(at..at + 2)
                    .ok_or_else(truncated)?
                    .try_into()
                    .unwrap_or([0; 2]),
            ) as usize;
            let topic = bytes.get(at + 2..at + 2 + n).ok_or_else(truncated)?;
            let topic = String::from_utf8(topic.to_vec())
                .map_err(|_| format!("fence topic at byte {at} is not utf-8"))?;
            if bytes.len() < at + 2 + n + 16 {
                return Err(truncated());
            }
            fences.push((
                topic,
                double(at + 2 + n) as i32,
                double(at + 2 + n + 8) as i64,
            ));
            at += 2 + n + 16;
        }
        Ok(EntityState { cells, fences })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use weir_schemas::store::SourcePosition;

    /// 2026-01-01T00:00:00Z, a multiple of both pane lengths below.
    const T0: i64 = 1_767_225_600_000;
    const LATENESS: i64 = 60_000;

    /// The default windows: 1m in 5 s panes (12 panes, 12 + 12 + 1 = 25 slots) and 1h in
    /// 60 s panes (60 panes, 60 + 1 + 1 = 62 slots).
    fn default_windows() -> Vec<WindowSpec> {
        vec![
            WindowSpec::new("1m", 60_000, 5_000, LATENESS),
            WindowSpec::new("1h", 3_600_000, 60_000, LATENESS),
        ]
    }

    fn obs(t: i64, value: f64, offset: i64) -> Observation {
        obs_at("transactions", 0, t, value, offset)
    }

    fn obs_at(topic: &str, partition: i32, t: i64, value: f64, offset: i64) -> Observation {
        Observation {
            entity: "card-1".into(),
            event_time_ms: t,
            value,
            position: SourcePosition {
                topic: topic.into(),
                partition,
                offset,
            },
        }
    }

    #[test]
    fn window_spec_geometry() {
        let w = default_windows();
        assert_eq!((w[0].panes, w[0].slots), (12, 25));
        assert_eq!((w[1].panes, w[1].slots), (60, 62));
        // Lateness not a multiple of the pane rounds up.
        let odd = WindowSpec::new("x", 10_000, 1_000, 2_500);
        assert_eq!((odd.panes, odd.slots), (10, 10 + 3 + 1));
        let none = WindowSpec::new("x", 10_000, 1_000, 0);
        assert_eq!(none.slots, 11);
        // Panes are floor(t / P), also before the epoch.
        assert_eq!(odd.pane_of(0), 0);
        assert_eq!(odd.pane_of(999), 0);
        assert_eq!(odd.pane_of(1_000), 1);
        assert_eq!(odd.pane_of(-1), -1);
        assert_eq!(odd.pane_of(-1_000), -1);
        assert_eq!(odd.pane_of(-1_001), -2);
        assert_eq!(
            value_names(&w),
            vec!["count_1m", "amount_sum_1m", "count_1h", "amount_sum_1h"]
        );
        assert!(value_names(&[]).is_empty());
    }

    #[test]
    fn unknown_entity_has_no_values() {
        let w = default_windows();
        let s = EntityState::new(&w);
        assert_eq!(s.max_event_time(), None);
        assert_eq!(s.current_values(&w), None);
        assert_eq!(s.values_at(&w, T0), vec![0.0; 4]);
    }

    /// One card through both default windows. Pane indices relative to T0:
    /// p = 1m pane (5 s), q = 1h pane (60 s). Values are [count_1m, sum_1m, count_1h, sum_1h].
    #[test]
    fn golden_stream_for_one_card() {
        let w = default_windows();
        let mut s = EntityState::new(&w);
        let mut apply = |o: Observation| s.apply(&w, LATENESS, &o);
        let applied = |values: [f64; 4]| ObservationResult {
            applied: Applied::Applied,
            values: values.to_vec(),
        };

        // #0 t = T0 exactly on a pane boundary: p0, q0.            1m {#0} = 10; 1h {#0} = 10
        assert_eq!(apply(obs(T0, 10.0, 0)), applied([1.0, 10.0, 1.0, 10.0]));
        // #1 last ms of the same 5 s pane: p0.                     10 + 20 = 30
        assert_eq!(
            apply(obs(T0 + 4_999, 20.0, 1)),
            applied([2.0, 30.0, 2.0, 30.0])
        );
        // #2 first ms of the next pane: p1.                        30 + 5 = 35
        assert_eq!(
            apply(obs(T0 + 5_000, 5.0, 2)),
            applied([3.0, 35.0, 3.0, 35.0])
        );
        // #3 t = T0 + 59 999: p11, window [p0, p11] still holds all. 35 + 1 = 36
        assert_eq!(
            apply(obs(T0 + 59_999, 1.0, 3)),
            applied([4.0, 36.0, 4.0, 36.0])
        );
        // #4 t = T0 + 60 000: p12, the 1m window is [p1, p12], so #0 and #1 (p0) slide out:
        //    1m {#2, #3, #4} = 5 + 1 + 100 = 106; 1h pane q1, window [q-58, q1]: all = 136
        assert_eq!(
            apply(obs(T0 + 60_000, 100.0, 4)),
            applied([3.0, 106.0, 5.0, 136.0])
        );
        // #5 out of order, 30 s behind max_t (within lateness): p6, q0. As of ITS time:
        //    1m [p-5, p6] = {#0, #1, #2, #5} = 10 + 20 + 5 + 7 = 42
        //    1h [q-59, q0] = {#0, #1, #2, #3, #5} = 10 + 20 + 5 + 1 + 7 = 43 (#4 is in q1)
        assert_eq!(
            apply(obs(T0 + 30_000, 7.0, 5)),
            applied([4.0, 42.0, 5.0, 43.0])
        );
        // #6 exactly `lateness` behind max_t (T0 + 60 000): not late. p0, q0.
        //    1m [p-11, p0] = {#0, #1, #6} = 10 + 20 + 2 = 32
        //    1h [q-59, q0] = {#0, #1, #2, #3, #5, #6} = 43 + 2 = 45
        assert_eq!(apply(obs(T0, 2.0, 6)), applied([3.0, 32.0, 6.0, 45.0]));
        // #7 one ms further back: late, not applied; values as of T0 - 1 (p-1, q-1): empty.
        assert_eq!(
            apply(obs(T0 - 1, 1_000.0, 7)),
            ObservationResult {
                applied: Applied::Late,
                values: vec![0.0, 0.0, 0.0, 0.0]
            }
        );
        // #4 again (offset 4 <= fence 7): replayed, values as of its time T0 + 60 000:
        //    1m [p1, p12] = {#2, #3, #4, #5} = 5 + 1 + 100 + 7 = 113
        //    1h [q-58, q1] = all applied = 10+20+5+1+100+7+2 = 145
        let before = s.clone();
        let mut apply = |o: Observation| s.apply(&w, LATENESS, &o);
        assert_eq!(
            apply(obs(T0 + 60_000, 100.0, 4)),
            ObservationResult {
                applied: Applied::Replayed,
                values: vec![4.0, 113.0, 7.0, 145.0]
            }
        );
        // A replay of the late one is a replay too (its offset was consumed).
        assert_eq!(apply(obs(T0 - 1, 1_000.0, 7)).applied, Applied::Replayed);
        assert_eq!(s, before, "replays change nothing");
        assert_eq!(s.max_event_time(), Some(T0 + 60_000));
        assert_eq!(s.current_values(&w), Some(vec![4.0, 113.0, 7.0, 145.0]));

        // #8 a gap longer than both rings: t = T0 + 3 750 000 = p750 = p0 + 30 * 25 slots
        //    (the slot of p0, holding {#0, #1, #6}) and q62 = q0 + 62 slots (the slot of q0,
        //    holding 6 events). Both slots must be reset, not added to:
        //    1m [p739, p750] = {#8} = 50; 1h [q3, q62] = {#8} = 50
        let mut apply = |o: Observation| s.apply(&w, LATENESS, &o);
        assert_eq!(
            apply(obs(T0 + 3_750_000, 50.0, 8)),
            applied([1.0, 50.0, 1.0, 50.0])
        );
        // #9 exactly lateness behind: t = T0 + 3 690 000 = p738, q61. Its 1m window
        //    [p727, p738] maps onto the slots of the stale panes p6, p11 and p12 (731, 736,
        //    737 mod 25), which must be ignored: 1m {#9} = 3; 1h [q2, q61] = {#9} = 3
        //    (#8 is after it, in p750 / q62).
        assert_eq!(
            apply(obs(T0 + 3_690_000, 3.0, 9)),
            applied([1.0, 3.0, 1.0, 3.0])
        );
        // Current values, as of max_t = T0 + 3 750 000:
        //    1m [p739, p750] = {#8} = 50; 1h [q3, q62] = {#8, #9} = 53
        assert_eq!(s.current_values(&w), Some(vec![1.0, 50.0, 2.0, 53.0]));
        assert_eq!(s.max_event_time(), Some(T0 + 3_750_000));
    }

    #[test]
    fn fences_are_per_topic_and_partition() {
        let w = default_windows();
        let mut s = EntityState::new(&w);
        assert_eq!(
            s.apply(&w, LATENESS, &obs_at("a", 0, T0, 1.0, 10)).applied,
            Applied::Applied
        );
        assert_eq!(
            s.apply(&w, LATENESS, &obs_at("a", 1, T0, 1.0, 10)).applied,
            Applied::Applied
        );
        assert_eq!(
            s.apply(&w, LATENESS, &obs_at("b", 0, T0, 1.0, 10)).applied,
            Applied::Applied
        );
        assert_eq!(
            s.apply(&w, LATENESS, &obs_at("a", 0, T0, 1.0, 10)).applied,
            Applied::Replayed
        );
        assert_eq!(
            s.apply(&w, LATENESS, &obs_at("a", 0, T0, 1.0, 3)).applied,
            Applied::Replayed
        );
        // Offsets may skip (compacted topics, transactional markers).
        assert_eq!(
            s.apply(&w, LATENESS, &obs_at("a", 0, T0, 1.0, 12)).applied,
            Applied::Applied
        );
        assert_eq!(s.current_values(&w), Some(vec![4.0, 4.0, 4.0, 4.0]));
    }

    #[test]
    fn state_bytes_round_trip_and_refuse_another_layout() {
        let w = default_windows();
        let mut s = EntityState::new(&w);
        s.apply(&w, LATENESS, &obs_at("transactions", 3, T0, 12.5, 41));
        s.apply(&w, LATENESS, &obs_at("t\u{e9}", 0, T0 + 61_000, 1.0, 2));
        let bytes = s.to_bytes();
        // 2 header cells + (3 + 3 * 25) + (3 + 3 * 62) cells, then two fences.
        let cells = 2 + 78 + 189;
        assert_eq!(bytes.len(), cells * 8 + (2 + 12 + 16) + (2 + 3 + 16));
        assert_eq!(EntityState::from_bytes(&w, &bytes), Ok(s.clone()));
        // Other pane lengths, pane counts or lateness change the layout; names do not.
        let renamed = vec![
            WindowSpec::new("a", 60_000, 5_000, LATENESS),
            WindowSpec::new("b", 3_600_000, 60_000, LATENESS),
        ];
        assert_eq!(layout_fingerprint(&renamed), layout_fingerprint(&w));
        for other in [
            vec![WindowSpec::new("1m", 60_000, 5_000, LATENESS)],
            vec![
                WindowSpec::new("1m", 60_000, 5_000, 0),
                WindowSpec::new("1h", 3_600_000, 60_000, 0),
            ],
            vec![
                WindowSpec::new("1m", 60_000, 10_000, LATENESS),
                WindowSpec::new("1h", 3_600_000, 60_000, LATENESS),
            ],
        ] {
            assert_ne!(layout_fingerprint(&other), layout_fingerprint(&w));
            assert!(EntityState::from_bytes(&other, &bytes).is_err());
        }
        assert!(
            EntityState::from_bytes(&w, &bytes[..100])
                .unwrap_err()
                .contains("needs at least")
        );
        assert!(
            EntityState::from_bytes(&w, &bytes[..bytes.len() - 3])
                .unwrap_err()
                .contains("truncated")
        );
    }

    #[test]
    fn zero_lateness_refuses_anything_older_than_max() {
        let w = vec![WindowSpec::new("10s", 10_000, 1_000, 0)];
        assert_eq!(w[0].slots, 11);
        let mut s = EntityState::new(&w);
        assert_eq!(
            s.apply(&w, 0, &obs(T0 + 5_000, 1.0, 0)).applied,
            Applied::Applied
        );
        assert_eq!(
            s.apply(&w, 0, &obs(T0 + 5_000, 2.0, 1)).applied,
            Applied::Applied,
            "same time is not late"
        );
        assert_eq!(
            s.apply(&w, 0, &obs(T0 + 4_999, 4.0, 2)).applied,
            Applied::Late
        );
        assert_eq!(s.current_values(&w), Some(vec![2.0, 3.0]));
    }

    /// Brute force: per window, count and sum of the events whose pane is in the window
    /// as of `t`.
    fn brute_force(windows: &[WindowSpec], events: &[(i64, f64)], t: i64) -> Vec<f64> {
        let mut out = Vec::new();
        for w in windows {
            let last = w.pane_of(t);
            let first = last - w.panes + 1;
            let inside = events
                .iter()
                .filter(|(e, _)| (first..=last).contains(&w.pane_of(*e)));
            let (count, sum) = inside.fold((0u64, 0.0), |(c, s), (_, v)| (c + 1, s + v));
            out.push(count as f64);
            out.push(sum);
        }
        out
    }

    fn assert_close(actual: &[f64], expected: &[f64]) -> Result<(), TestCaseError> {
        prop_assert_eq!(actual.len(), expected.len());
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            if i % 2 == 0 {
                prop_assert_eq!(a, e, "count {} of {:?} vs {:?}", i / 2, actual, expected);
            } else {
                let tol = 1e-9 * a.abs().max(e.abs()).max(1.0);
                prop_assert!(
                    (a - e).abs() <= tol,
                    "sum {}: {} vs {} ({:?} vs {:?})",
                    i / 2,
                    a,
                    e,
                    actual,
                    expected
                );
            }
        }
        Ok(())
    }

    /// (windows, lateness): the defaults, and small windows whose rings wrap often.
    fn configs() -> impl Strategy<Value = (Vec<WindowSpec>, i64)> {
        prop_oneof![
            Just((default_windows(), LATENESS)),
            Just((
                vec![
                    WindowSpec::new("4s", 4_000, 1_000, 7_500),
                    WindowSpec::new("10s", 10_000, 2_000, 7_500)
                ],
                7_500
            )),
        ]
    }

    /// A config and events (time, amount) spanning less than its lateness, so none is late;
    /// then a permutation of them.
    fn in_lateness_events()
    -> impl Strategy<Value = (Vec<WindowSpec>, i64, Vec<(i64, f64)>, Vec<(i64, f64)>)> {
        configs().prop_flat_map(|(w, lateness)| {
            let event = (0..lateness, 0.0..5_000.0f64);
            (
                Just(w),
                Just(lateness),
                0..10_000_000i64,
                proptest::collection::vec(event, 1..60),
            )
                .prop_flat_map(|(w, lateness, base, events)| {
                    let events: Vec<(i64, f64)> = events
                        .into_iter()
                        .map(|(dt, v)| (T0 + base + dt, v))
                        .collect();
                    let shuffled = Just(events.clone()).prop_shuffle();
                    (Just(w), Just(lateness), Just(events), shuffled)
                })
        })
    }

    fn apply_all(
        w: &[WindowSpec],
        lateness: i64,
        events: &[(i64, f64)],
    ) -> (EntityState, Vec<ObservationResult>) {
        let mut s = EntityState::new(w);
        let results = events
            .iter()
            .enumerate()
            .map(|(i, &(t, v))| s.apply(w, lateness, &obs(t, v, i as i64)))
            .collect();
        (s, results)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn any_order_within_lateness_gives_the_same_windows((w, lateness, events, shuffled) in in_lateness_events()) {
            let mut sorted = events.clone();
            sorted.sort_by_key(|e| e.0);
            let (s_sorted, _) = apply_all(&w, lateness, &sorted);
            let (s_shuffled, results) = apply_all(&w, lateness, &shuffled);
            prop_assert!(results.iter().all(|r| r.applied == Applied::Applied));
            let max_t = events.iter().map(|e| e.0).max().unwrap();
            prop_assert_eq!(s_sorted.max_event_time(), Some(max_t));
            prop_assert_eq!(s_shuffled.max_event_time(), Some(max_t));
            let a = s_sorted.current_values(&w).unwrap();
            let b = s_shuffled.current_values(&w).unwrap();
            assert_close(&b, &a)?;
            assert_close(&a, &brute_force(&w, &events, max_t))?;
        }

        /// Every answer, in any order, is the brute force over the events applied so far,
        /// as of the event's own time.
        #[test]
        fn each_answer_is_the_brute_force_as_of_its_time((w, lateness, _events, shuffled) in in_lateness_events()) {
            let (_, results) = apply_all(&w, lateness, &shuffled);
            for (i, r) in results.iter().enumerate() {
                assert_close(&r.values, &brute_force(&w, &shuffled[..=i], shuffled[i].0))?;
            }
        }

        /// Events over a span wider than the lateness: late ones are refused exactly when
        /// `t < max_t - lateness`, and the windows are the brute force over the applied ones.
        #[test]
        fn late_events_are_refused_and_the_rest_are_exact(
            (w, lateness) in configs(),
            steps in proptest::collection::vec((-40_000i64..40_000, 0.0..100.0f64), 1..80),
        ) {
            let mut s = EntityState::new(&w);
            let mut t = T0;
            let mut max_t = None::<i64>;
            let mut applied = Vec::new();
            for (i, (dt, v)) in steps.into_iter().enumerate() {
                t += dt;
                let r = s.apply(&w, lateness, &obs(t, v, i as i64));
                let late = max_t.is_some_and(|m| t < m - lateness);
                prop_assert_eq!(r.applied, if late { Applied::Late } else { Applied::Applied });
                if !late {
                    applied.push((t, v));
                    max_t = Some(max_t.map_or(t, |m| m.max(t)));
                    assert_close(&r.values, &brute_force(&w, &applied, t))?;
                } else {
                    // A late event's answer can only be partial: panes more than the ring
                    // behind max_t have been recycled. It never counts more than the truth.
                    prop_assert_eq!(&r.values, &s.values_at(&w, t));
                    let truth = brute_force(&w, &applied, t);
                    for i in (0..truth.len()).step_by(2) {
                        prop_assert!(r.values[i] <= truth[i], "{:?} vs {:?}", r.values, truth);
                    }
                }
            }
            prop_assert_eq!(s.max_event_time(), max_t);
            let max_t = max_t.unwrap();
            assert_close(&s.current_values(&w).unwrap(), &brute_force(&w, &applied, max_t))?;
        }

        /// The fence: replaying any prefix of the offsets (same positions) changes nothing
        /// and answers as of each replayed event's time.
        #[test]
        fn replaying_a_prefix_changes_nothing(
            (w, lateness) in configs(),
            steps in proptest::collection::vec((-20_000i64..20_000, 0.0..100.0f64), 1..60),
            prefix in any::<proptest::sample::Index>(),
        ) {
            let mut s = EntityState::new(&w);
            let mut t = T0;
            let mut batch = Vec::new();
            for (i, (dt, v)) in steps.into_iter().enumerate() {
                t += dt;
                batch.push(obs(t, v, 100 + i as i64));
            }
            for o in &batch {
                s.apply(&w, lateness, o);
            }
            let before = s.clone();
            let k = prefix.index(batch.len() + 1);
            for o in &batch[..k] {
                let r = s.apply(&w, lateness, o);
                prop_assert_eq!(r.applied, Applied::Replayed);
                prop_assert_eq!(r.values, before.values_at(&w, o.event_time_ms));
            }
            prop_assert_eq!(&s, &before);
            // The next offset is applied again.
            let next = obs(before.max_event_time().unwrap(), 1.0, 100 + batch.len() as i64);
            prop_assert_eq!(s.apply(&w, lateness, &next).applied, Applied::Applied);
        }
    }
}
