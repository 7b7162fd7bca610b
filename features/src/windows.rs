//! Sliding windows in event time: the aggregation engine shared by every store.
//!
//! All aggregation runs here, in Rust: the embedded store keeps [`EntityState`]s in a
//! map, the Redis store reads them (one compact binary blob per entity), applies the same
//! code and writes them back with a compare-and-set. So both stores give bit-identical
//! answers and states by construction.
//!
//! ## Panes and windows
//!
//! Each window of length `L` is cut into panes of length `P` (`P` divides `L`). An event
//! at event time `t` falls in pane `p(t) = floor(t / P)`. The window *as of* `t` is the
//! `L / P` panes ending with `p(t)`: `[p(t) - L/P + 1, p(t)]`.
//!
//! Per pane an entity keeps the event count and, for each numeric field its kind
//! aggregates, `n` (events where the field was present), the sum, min and max; for a
//! distinct field in sketch mode (below), a HyperLogLog. Only non-empty panes are kept,
//! sorted by pane index; the oldest are dropped once they are more than the *ring* behind
//! the newest pane: `L/P + ceil(lateness/P) + 1` panes, just enough that every pane a
//! non-late event can need is still there.
//!
//! ## Cost: running totals, not pane scans
//!
//! Per window we keep the *running totals* of the window as of the entity's newest pane
//! (`cur`, the pane of the newest event): count, and per numeric field `n` and sum. An event
//! in the newest pane (the common case) costs one pane update and one totals update per
//! window. When an event moves `cur` forward by `g` panes, the panes that slide out are
//! subtracted: at most `min(g, L/P)` of them, and a jump of a whole window or more zeroes
//! the totals. So the work per event is bounded by how far event time moved, not by the
//! window length.
//!
//! Min and max cannot be subtracted: they are cached per window and field, updated as
//! events come in, and recomputed over the window's panes only when a pane holding the
//! current min or max slides out. A distinct sketch's registers merged over the window
//! (by max, which cannot be subtracted either) are kept by a two-stacks sliding aggregate
//! (see `WindowSketch`): a pane sliding out costs one register merge amortized, and the
//! estimate changes only where a register does.
//!
//! An out-of-order event (within the allowed lateness) updates its own pane, and the
//! totals if that pane is inside the current window. Its answer *as of its own time* is
//! derived from the totals by taking off the panes after its pane and adding back the ones
//! that slid out since (count, sum, mean); min, max and distinct are computed over the
//! panes of its window.
//!
//! Sums are updated by adding and subtracting doubles, so they carry rounding of the order
//! of 1e-16 times the largest running total. A field's sum is exactly 0 when its `n` is 0.
//!
//! ## What each aggregation answers (as of event time `t`, window `w`)
//!
//! | kind | value |
//! |---|---|
//! | `count` | events in the window |
//! | `sum` | sum of the field over the window's events where it is present |
//! | `mean` | that sum / the number of those events |
//! | `min`, `max` | smallest / largest such value |
//! | `distinct` | number of distinct values of the field in the window (exact, or estimated; below) |
//! | `seconds_since_last` | `(t - u) / 1000`, `u` the newest applied event time strictly before `t`; `-1` when there is none (the entity's first event). Not windowed. |
//!
//! An empty window (or no present value) answers `count 0, sum 0, mean 0, min 0, max 0,
//! distinct 0`.
//!
//! `seconds_since_last` is exact for any arrival order within the allowed lateness: the
//! entity keeps its applied event times within the lateness behind its newest, plus the
//! largest time that fell out of that horizon.
//!
//! ## Distinct: exact, then HyperLogLog
//!
//! Values are hashed with [`distinct_hash`] (FNV-1a 64 of the value's text, then the
//! murmur3 `fmix64` finalizer: fixed, identical in every process and version). While the
//! occurrences `(time, hash)` an entity keeps for a field (those still inside some
//! window's ring) number at most `distinct_exact_limit`, the count is exact. Beyond that the
//! field switches, losslessly (the sketches are built from the occurrences), to a
//! HyperLogLog per pane: 256 one-byte registers (the top 8 hash bits pick a register, the
//! rank of the first 1 in the other 56 bits is kept by max; in memory a pane with at most
//! 12 set registers keeps them as a short list, see `PaneRegs`), merged over the window's
//! panes by register max. The estimate has a relative standard error of `1.04 / sqrt(256)` =
//! 6.5 %, with linear counting for small ranges; it is rounded to an integer. The
//! harmonic sum behind the estimate is kept in fixed point (`2^-r` as `2^(64-r)` in a
//! `u128`), exact and order-independent, so a window's merged sketch updates its estimate
//! in O(1) per register change and a state read back from Redis answers bit for bit what
//! the live one does.
//!
//! Exact counts as of the newest pane are kept incrementally (per value its newest
//! occurrence, per window its start and count: O(windows) per in-order event, see
//! `DistinctIndex`); answers as of an older time count the occurrences of that window.
//!
//! A sketched field keeps recording occurrences as a *shadow*, complete for the times
//! after a mark (the newest time when it switched, or when the shadow last overflowed the
//! limit and was restarted). Once every window's ring starts after the mark, the shadow
//! holds every occurrence still in a ring and is within the limit: the field goes back to
//! exact counts. So an entity that was busy for a while is exact again one horizon (the
//! longest ring) after it calmed down, and a field at the limit cannot flap between modes
//! faster than once per horizon.
//!
//! ## Lateness and replays
//!
//! An event is *late* when `t < max_t - lateness` (`max_t` the entity's newest applied event
//! time) or when it is below its source partition's watermark (given by the store, see
//! [`PartitionWatermarks`]). Late events are not applied; they are answered with the values
//! as of their time (over the panes still kept, so possibly partial).
//!
//! Each entity keeps, per source (topic, partition), the highest offset applied: an
//! observation at or below it is a replay, not applied again, and answered as of its time.
//! A late event's offset is consumed too.
//!
//! ## State encoding
//!
//! [`EntityState::to_bytes`]: a compact little-endian binary, only non-empty panes, led by
//! a format version and a layout fingerprint of the entity's definition
//! ([`EntityDef::fingerprint`]); a state written under another layout is refused with a
//! clear error instead of being misread. Caches (min/max, merged sketches) are not stored;
//! they are recomputed on first use.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};

use crate::probe::{ProbeEntry, ProbeTable};

// Small per-entity lists (per numeric field, per window, per distinct field) are kept
// inline: a quiet entity's state is read cold from memory on each of its events, and every
// separate allocation it points to is another cache miss.
use smallvec::{SmallVec, smallvec};

use weir_schemas::StoreError;
use weir_schemas::store::{Applied, Observation, ObservationResult, SourcePosition};

/// Registers of a distinct sketch.
pub const HLL_REGISTERS: usize = 256;
/// Version of the binary state format; part of the fingerprint.
const FORMAT_VERSION: u8 = 4;
const MAGIC: u8 = b'w';
/// `cur` before the first event: below any real pane.
const EMPTY_PANE: i64 = i64::MIN / 4;

/// One window, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSpec {
    pub name: String,
    pub length_ms: i64,
    pub pane_ms: i64,
    /// Panes per window, `length / pane`.
    pub panes: i64,
    /// Panes kept: panes + lateness panes + 1.
    pub slots: i64,
}

impl WindowSpec {
    pub fn new(name: &str, length_ms: u64, pane_ms: u64, lateness_ms: i64) -> Self {
        let (length_ms, pane_ms) = (length_ms as i64, pane_ms as i64);
        let panes = length_ms / pane_ms;
        let slots = panes + (lateness_ms + pane_ms - 1) / pane_ms + 1;
        WindowSpec { name: name.to_string(), length_ms, pane_ms, panes, slots }
    }

    pub fn pane_of(&self, t: i64) -> i64 {
        t.div_euclid(self.pane_ms)
    }

    /// [`WindowSpec::pane_of`], without a division when `t` is in pane `near` or the next
    /// (most events of a busy entity): a 64-bit division costs tens of cycles, and an
    /// event needs one per window.
    fn pane_near(&self, t: i64, near: i64) -> i64 {
        if let Some(from) = near.checked_mul(self.pane_ms)
            && let Some(d) = t.checked_sub(from)
            && (0..2 * self.pane_ms).contains(&d)
        {
            return near + i64::from(d >= self.pane_ms);
        }
        self.pane_of(t)
    }
}

/// What a windowed aggregation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggKind {
    Count,
    Sum,
    Mean,
    Min,
    Max,
    Distinct,
}

impl AggKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AggKind::Count => "count",
            AggKind::Sum => "sum",
            AggKind::Mean => "mean",
            AggKind::Min => "min",
            AggKind::Max => "max",
            AggKind::Distinct => "distinct",
        }
    }
}

/// One windowed aggregation of an entity kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub kind: AggKind,
    /// Index into the kind's numeric fields (sum, mean, min, max) or distinct fields
    /// (distinct); unused for count.
    pub field: usize,
    /// The name part of the value: `<alias>_<kind>_<window>` (unused for count).
    pub alias: String,
}

/// What one entity kind aggregates, and how its values are named and ordered.
///
/// Value order: per window (in this order), per aggregation (in this order); then
/// `seconds_since_last` if asked; then the extra means (`<alias>_mean_<w>`) that
/// transforms need but no aggregation declares.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityDef {
    pub kind: String,
    pub windows: Vec<WindowSpec>,
    /// Aliases of the numeric fields (in [`Observation::values`] order).
    pub numeric: Vec<String>,
    /// Number of distinct fields (in [`Observation::distinct`] order).
    pub distinct: usize,
    pub aggregations: Vec<Aggregation>,
    pub seconds_since_last: bool,
    /// (numeric field, window index) means appended after everything else.
    pub extra_means: Vec<(usize, usize)>,
    pub lateness_ms: i64,
    pub distinct_exact_limit: usize,
    extremes: Vec<bool>,
    names: Vec<String>,
    /// The aggregations compiled for the per-event fast path (one window's values).
    value_ops: Vec<ValueOp>,
    /// Per aggregation, where its value sits in a window's [`WindowAnswers`]; empty when
    /// the kind has too many fields for them (then [`EntityState::values_at`] evaluates
    /// the aggregations one by one).
    answer_slots: Vec<u8>,
    fingerprint: u32,
}

/// Every value a window can answer from its running totals and caches, computed in one
/// straight pass (count; per numeric field sum, mean, min, max; per distinct field its
/// count) and then gathered in the aggregations' order through
/// [`EntityDef::answer_slots`]. Evaluating the aggregations one by one dispatched on the
/// kind and re-found the field's totals for every value: on the feature bench (24 values
/// per event) the pass and gather save 188 of 5 387 instructions per event (callgrind).
struct WindowAnswers([f64; Self::LEN]);

impl WindowAnswers {
    /// A power of two, so that a slot masked by `LEN - 1` is in bounds without a check.
    const LEN: usize = 32;

    fn fits(numeric: usize, distinct: usize) -> bool {
        1 + 4 * numeric + distinct <= Self::LEN
    }

    fn slot(op: ValueOp, numeric: usize) -> u8 {
        let slot = match op {
            ValueOp::Count => 0,
            ValueOp::Sum(k) => 1 + 4 * k,
            ValueOp::Mean(k) => 2 + 4 * k,
            ValueOp::Min(k) => 3 + 4 * k,
            ValueOp::Max(k) => 4 + 4 * k,
            ValueOp::Distinct(d) => 1 + 4 * numeric + d,
        };
        slot as u8
    }

    fn get(&self, slot: u8) -> f64 {
        self.0[usize::from(slot) & (Self::LEN - 1)]
    }
}

/// One value of a window: an [`Aggregation`] without its name, small and `Copy` (what
/// [`EntityState::current_window_values`] checks the caches for and gathers by).
#[derive(Debug, Clone, Copy, PartialEq)]
enum ValueOp {
    Count,
    Sum(usize),
    Mean(usize),
    Min(usize),
    Max(usize),
    Distinct(usize),
}

impl EntityDef {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: &str,
        windows: Vec<WindowSpec>,
        numeric: Vec<String>,
        distinct: usize,
        aggregations: Vec<Aggregation>,
        seconds_since_last: bool,
        extra_means: Vec<(usize, usize)>,
        lateness_ms: i64,
        distinct_exact_limit: usize,
    ) -> Self {
        let mut extremes = vec![false; numeric.len()];
        for a in &aggregations {
            if matches!(a.kind, AggKind::Min | AggKind::Max) {
                extremes[a.field] = true;
            }
        }
        let mut names = Vec::new();
        for w in &windows {
            for a in &aggregations {
                names.push(match a.kind {
                    AggKind::Count => format!("count_{}", w.name),
                    k => format!("{}_{}_{}", a.alias, k.as_str(), w.name),
                });
            }
        }
        if seconds_since_last {
            names.push("seconds_since_last".to_string());
        }
        for &(f, w) in &extra_means {
            names.push(format!("{}_mean_{}", numeric[f], windows[w].name));
        }
        let mut def = EntityDef {
            kind: kind.to_string(),
            windows,
            numeric,
            distinct,
            aggregations,
            seconds_since_last,
            extra_means,
            lateness_ms,
            distinct_exact_limit,
            extremes,
            names,
            value_ops: Vec::new(),
            answer_slots: Vec::new(),
            fingerprint: 0,
        };
        def.value_ops = def
            .aggregations
            .iter()
            .map(|a| match a.kind {
                AggKind::Count => ValueOp::Count,
                AggKind::Sum => ValueOp::Sum(a.field),
                AggKind::Mean => ValueOp::Mean(a.field),
                AggKind::Min => ValueOp::Min(a.field),
                AggKind::Max => ValueOp::Max(a.field),
                AggKind::Distinct => ValueOp::Distinct(a.field),
            })
            .collect();
        if WindowAnswers::fits(def.numeric.len(), def.distinct) {
            let nf = def.numeric.len();
            def.answer_slots = def.value_ops.iter().map(|&op| WindowAnswers::slot(op, nf)).collect();
        }
        def.fingerprint = def.compute_fingerprint();
        def
    }

    /// Names of the values, in order (without the `<kind>_` prefix of feature names).
    pub fn value_names(&self) -> &[String] {
        &self.names
    }

    /// A number that changes whenever the state layout does: format version, lateness,
    /// distinct limit, per window its pane length, panes and ring, the numeric fields and
    /// which keep min/max, the distinct fields, `seconds_since_last`. Not names or the
    /// aggregation list (the same state answers any of them). FNV-1a, 32 bits.
    pub fn fingerprint(&self) -> u32 {
        self.fingerprint
    }

    fn compute_fingerprint(&self) -> u32 {
        self.fingerprint_of_format(FORMAT_VERSION)
    }

    /// The fingerprint a state of format `format` carries under this definition.
    fn fingerprint_of_format(&self, format: u8) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        let mut eat = |x: i64| {
            for b in x.to_le_bytes() {
                h ^= u32::from(b);
                h = h.wrapping_mul(0x0100_0193);
            }
        };
        eat(i64::from(format));
        eat(self.lateness_ms);
        eat(self.distinct_exact_limit as i64);
        eat(self.windows.len() as i64);
        for w in &self.windows {
            eat(w.pane_ms);
            eat(w.panes);
            eat(w.slots);
        }
        eat(self.numeric.len() as i64);
        for &e in &self.extremes {
            eat(e as i64);
        }
        eat(self.distinct as i64);
        eat(self.seconds_since_last as i64);
        h
    }

    /// The longest window plus the lateness, ms: how long an entity's state matters.
    pub fn horizon_ms(&self) -> i64 {
        self.windows.iter().map(|w| w.length_ms).max().unwrap_or(0) + self.lateness_ms
    }
}

/// The hash of a distinct value: FNV-1a 64 over its bytes, then murmur3's `fmix64` so
/// that every bit is well mixed (HyperLogLog reads the top ones). Fixed forever: states
/// and sketches written by one process are read by others.
pub fn distinct_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// Where a hash goes in HyperLogLog registers: (register, rank of the first 1 bit).
fn hll_slot(h: u64) -> (usize, u8) {
    ((h >> 56) as usize, ((h << 8) | 0x80).leading_zeros() as u8 + 1)
}

/// Adds a hash to HyperLogLog registers.
fn hll_add(regs: &mut [u8; HLL_REGISTERS], h: u64) {
    let (idx, rank) = hll_slot(h);
    regs[idx] = regs[idx].max(rank);
}

/// Register-wise max. Not inlined: on its own it compiles to 16 SIMD byte-max
/// instructions, while inlined into a loop over panes it was left scalar (10x the work).
#[inline(never)]
fn hll_merge(into: &mut [u8; HLL_REGISTERS], from: &[u8; HLL_REGISTERS]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a = (*a).max(*b);
    }
}

/// Set registers a pane keeps as a list before it switches to all 256.
const PANE_SPARSE_MAX: usize = 12;

/// One pane's HyperLogLog registers: while few are set (most panes hold a handful of
/// values) a short list of (register, rank) sorted by register, kept inline; once more are
/// set, all 256. A new pane then costs a few bytes instead of 256 zeroed ones, and an
/// entity's panes a fraction of the memory (its state is read cold on most of its
/// events). Only the representation differs: every operation answers as the 256
/// registers would, and the state encoding is the same.
#[derive(Debug, Clone)]
enum PaneRegs {
    Sparse(SmallVec<[(u8, u8); PANE_SPARSE_MAX]>),
    Dense(Box<[u8; HLL_REGISTERS]>),
}

impl Default for PaneRegs {
    fn default() -> Self {
        PaneRegs::Sparse(SmallVec::new())
    }
}

impl PartialEq for PaneRegs {
    fn eq(&self, other: &Self) -> bool {
        self.to_dense() == other.to_dense()
    }
}

impl PaneRegs {
    fn from_dense(regs: &[u8; HLL_REGISTERS]) -> Self {
        let set = regs.iter().filter(|&&r| r != 0).count();
        if set <= PANE_SPARSE_MAX {
            PaneRegs::Sparse(regs.iter().enumerate().filter(|(_, r)| **r != 0).map(|(i, &r)| (i as u8, r)).collect())
        } else {
            PaneRegs::Dense(Box::new(*regs))
        }
    }

    fn to_dense(&self) -> [u8; HLL_REGISTERS] {
        match self {
            PaneRegs::Sparse(set) => {
                let mut regs = [0; HLL_REGISTERS];
                for &(i, r) in set {
                    regs[usize::from(i)] = r;
                }
                regs
            }
            PaneRegs::Dense(regs) => **regs,
        }
    }

    fn add(&mut self, h: u64) {
        let (idx, rank) = hll_slot(h);
        match self {
            PaneRegs::Dense(regs) => regs[idx] = regs[idx].max(rank),
            PaneRegs::Sparse(set) => match set.binary_search_by_key(&(idx as u8), |e| e.0) {
                Ok(j) => set[j].1 = set[j].1.max(rank),
                Err(_) if set.len() == PANE_SPARSE_MAX => {
                    let mut regs = Box::new(self.to_dense());
                    regs[idx] = rank;
                    *self = PaneRegs::Dense(regs);
                }
                Err(j) => set.insert(j, (idx as u8, rank)),
            },
        }
    }

    /// Register-wise max into `into`.
    fn merge_into(&self, into: &mut [u8; HLL_REGISTERS]) {
        match self {
            PaneRegs::Sparse(set) => {
                for &(i, r) in set {
                    let a = &mut into[usize::from(i)];
                    *a = (*a).max(r);
                }
            }
            PaneRegs::Dense(regs) => hll_merge(into, regs),
        }
    }
}

/// `2^-r` in fixed point (`2^(64 - r)`) for every rank `r` a register can hold (at most
/// 57; 64 covers any byte after `min`): a sum of 256 terms is exact in a `u128` and does
/// not depend on the order it was added in.
const HLL_TERMS: [u128; 65] = {
    let mut t = [0u128; 65];
    let mut r = 0;
    while r < 65 {
        t[r] = 1u128 << (64 - r);
        r += 1;
    }
    t
};

fn hll_term(r: u8) -> u128 {
    HLL_TERMS[usize::from(r.min(64))]
}

/// The HyperLogLog estimate from the harmonic sum (fixed point, [`hll_term`]) and the
/// number of zero registers: linear counting below 2.5 m, rounded.
fn hll_estimate_from(sum: u128, zeros: u32) -> f64 {
    let m = HLL_REGISTERS as f64;
    // Scaling by a power of two is exact: the only rounding is the u128 -> f64 conversion.
    let harmonic = sum as f64 / 18_446_744_073_709_551_616.0;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let e = alpha * m * m / harmonic;
    let e = if e <= 2.5 * m && zeros > 0 { LINEAR_COUNTING[zeros.min(HLL_REGISTERS as u32) as usize] } else { e };
    e.round()
}

/// Linear counting's `m ln(m / zeros)` for every count of zero registers: the same
/// expression, computed once (a logarithm per estimate was a tenth of an event's cost).
static LINEAR_COUNTING: std::sync::LazyLock<[f64; HLL_REGISTERS + 1]> = std::sync::LazyLock::new(|| {
    let m = HLL_REGISTERS as f64;
    let mut table = [0.0; HLL_REGISTERS + 1];
    for (zeros, v) in table.iter_mut().enumerate().skip(1) {
        *v = m * (m / zeros as f64).ln();
    }
    table
});

/// The HyperLogLog estimate (256 registers, linear counting below 2.5 m), rounded.
pub fn hll_estimate(regs: &[u8; HLL_REGISTERS]) -> f64 {
    Sketch::from_regs(*regs).estimate()
}

/// Registers merged over a window, with their harmonic sum and zero count kept up to
/// date, so the estimate after a register changes costs O(1) instead of a pass over 256
/// registers, and equals a recount from the registers bit for bit.
#[derive(Debug, Clone)]
struct Sketch {
    regs: [u8; HLL_REGISTERS],
    sum: u128,
    zeros: u32,
    /// The estimate from `sum` and `zeros`, kept with them: read on every event, it
    /// changes only when a register does (and costs a logarithm to compute).
    estimate: f64,
}

impl Sketch {
    const EMPTY: Sketch = Sketch { regs: [0; HLL_REGISTERS], sum: (HLL_REGISTERS as u128) << 64, zeros: HLL_REGISTERS as u32, estimate: 0.0 };

    fn from_regs(regs: [u8; HLL_REGISTERS]) -> Self {
        let sum = regs.iter().map(|&r| hll_term(r)).sum();
        let zeros = regs.iter().filter(|&&r| r == 0).count() as u32;
        Sketch { regs, sum, zeros, estimate: hll_estimate_from(sum, zeros) }
    }

    fn add(&mut self, h: u64) {
        let (idx, rank) = hll_slot(h);
        let old = self.regs[idx];
        if old < rank {
            self.regs[idx] = rank;
            self.sum = self.sum - hll_term(old) + hll_term(rank);
            self.zeros -= (old == 0) as u32;
            self.estimate = hll_estimate_from(self.sum, self.zeros);
        }
    }

    fn estimate(&self) -> f64 {
        self.estimate
    }
}

impl Sketch {
    /// Sets the registers to `new`, updating the harmonic sum and zero count only where a
    /// register changed (a pane sliding out changes a few of 256).
    fn set_regs(&mut self, new: &[u8; HLL_REGISTERS]) {
        let mut changed = false;
        for (old, new) in self.regs.chunks_exact_mut(16).zip(new.chunks_exact(16)) {
            let chunk = |c: &[u8]| u128::from_ne_bytes(c.try_into().unwrap_or([0; 16]));
            if chunk(old) == chunk(new) {
                continue;
            }
            changed = true;
            for (o, &n) in old.iter_mut().zip(new) {
                if *o != n {
                    self.sum = self.sum + hll_term(n) - hll_term(*o);
                    self.zeros = self.zeros + u32::from(n == 0) - u32::from(*o == 0);
                    *o = n;
                }
            }
        }
        if changed {
            self.estimate = hll_estimate_from(self.sum, self.zeros);
        }
    }
}

/// A window's registers merged over its panes, for one sketched distinct field, kept by a
/// *two-stacks* sliding aggregate: a pane sliding out costs O(1) register merges amortized,
/// and the estimate changes only where a register does. (Recomputing the merge over every
/// remaining pane and the harmonic sum over 256 registers on each slide was 40 % of an
/// event's cost.)
///
/// - The *back*: the window's panes older than its newest, as of the last rebuild, each
///   with the registers merged over it and every newer pane of the back (suffix maxima),
///   ascending by pane; `first` skips those that slid out.
/// - The *front*: the registers merged over the window's panes newer than the back's.
///
/// The window's registers are `max(back[first], front)`. When the back is used up and a
/// front pane slides out, both are rebuilt from the window's panes: each pane is merged
/// into a back once per pass through the window, so a slide costs one merge amortized,
/// plus one to combine back and front. An event adds its hash to `merged` and to the front
/// (or, out of order, to the back entries its pane is part of).
#[derive(Debug, Clone)]
struct WindowSketch {
    merged: Sketch,
    /// The window's first pane `merged` answers for (the window as of `cur`).
    start: i64,
    back: Vec<(i64, [u8; HLL_REGISTERS])>,
    first: usize,
    front: [u8; HLL_REGISTERS],
    /// The oldest pane merged into the front (`i64::MAX` when none).
    front_from: i64,
    /// An out-of-order event made a pane inside the back: rebuild before the next answer.
    stale: bool,
}

impl WindowSketch {
    /// The merged sketch of the window `[start, cur]` of `heads`, field `d` of `nd`.
    fn build(start: i64, cur: i64, heads: &[(i64, f64)], regs: &VecDeque<PaneRegs>, nd: usize, d: usize) -> Self {
        let mut s = WindowSketch {
            merged: Sketch::EMPTY,
            start,
            back: Vec::new(),
            first: 0,
            front: [0; HLL_REGISTERS],
            front_from: i64::MAX,
            stale: false,
        };
        s.rebuild(start, cur, heads, regs, nd, d);
        s.merged = Sketch::from_regs(s.registers());
        s
    }

    /// An empty window starting at `start`, keeping the back's allocation.
    fn clear(&mut self, start: i64) {
        self.merged = Sketch::EMPTY;
        self.start = start;
        self.back.clear();
        self.first = 0;
        self.front = [0; HLL_REGISTERS];
        self.front_from = i64::MAX;
        self.stale = false;
    }

    /// Whether `merged` answers for the window starting at `start`.
    fn is_current(&self, start: i64) -> bool {
        self.start == start && !self.stale
    }

    fn registers(&self) -> [u8; HLL_REGISTERS] {
        let mut regs = self.front;
        if let Some((_, back)) = self.back.get(self.first) {
            hll_merge(&mut regs, back);
        }
        regs
    }

    fn rebuild(&mut self, start: i64, cur: i64, heads: &[(i64, f64)], regs: &VecDeque<PaneRegs>, nd: usize, d: usize) {
        let lo = heads.partition_point(|h| h.0 < start);
        let mut hi = heads.partition_point(|h| h.0 <= cur).max(lo);
        self.front = [0; HLL_REGISTERS];
        self.front_from = i64::MAX;
        if hi > lo && heads[hi - 1].0 == cur {
            hi -= 1;
            self.front = regs[hi * nd + d].to_dense();
            self.front_from = cur;
        }
        self.back.clear();
        self.back.resize(hi - lo, (0, [0; HLL_REGISTERS]));
        self.first = 0;
        let mut acc = [0u8; HLL_REGISTERS];
        for i in (lo..hi).rev() {
            regs[i * nd + d].merge_into(&mut acc);
            self.back[i - lo] = (heads[i].0, acc);
        }
        self.stale = false;
    }

    /// Brings the window to `[start, cur]` after panes slid out.
    fn advance(&mut self, start: i64, cur: i64, heads: &[(i64, f64)], regs: &VecDeque<PaneRegs>, nd: usize, d: usize) {
        let first = self.first;
        while self.first < self.back.len() && self.back[self.first].0 < start {
            self.first += 1;
        }
        let rebuild = self.stale || self.front_from < start;
        if rebuild {
            self.rebuild(start, cur, heads, regs, nd, d);
        }
        if rebuild || self.first != first {
            let regs = self.registers();
            self.merged.set_regs(&regs);
        }
        self.start = start;
    }

    /// Adds hash `h` of an event in pane `p`, inside the window.
    fn add(&mut self, p: i64, h: u64) {
        self.merged.add(h);
        let from = self.first.min(self.back.len());
        let back = &mut self.back[from..];
        if back.last().is_none_or(|b| p > b.0) {
            hll_add(&mut self.front, h);
            self.front_from = self.front_from.min(p);
            return;
        }
        match back.binary_search_by_key(&p, |b| b.0) {
            Ok(j) => {
                // Pane p and every older back pane's suffix include it; those are
                // non-increasing going newer, so stop at the first already as high.
                let (idx, rank) = hll_slot(h);
                for b in back[..=j].iter_mut().rev() {
                    if b.1[idx] >= rank {
                        break;
                    }
                    b.1[idx] = rank;
                }
            }
            // A new pane among the back's: rare (out of order); rebuilt on next need.
            Err(_) => self.stale = true,
        }
    }
}

/// Per pane and numeric field.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    n: f64,
    sum: f64,
    min: f64,
    max: f64,
}

const EMPTY_STAT: Stat = Stat { n: 0.0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY };

/// A numeric field's totals over a window's current panes, and the cache of its extremes
/// there: one 32-byte record per field instead of a list of totals beside a list of
/// `Option`s (a quiet entity's event reads its whole state cold). "Extremes unknown" is a
/// NaN minimum: known extremes are never NaN (`f64::min` and `max` skip NaN, and the
/// minimum over no value is +inf), and a NaN event value can at worst make them unknown,
/// which is always safe: unknown extremes are recomputed from the panes.
#[derive(Debug, Clone, Copy)]
struct FieldTotals {
    n: f64,
    sum: f64,
    lo: f64,
    hi: f64,
}

impl FieldTotals {
    /// No value, extremes known (there are none).
    const EMPTY: FieldTotals = FieldTotals { n: 0.0, sum: 0.0, lo: f64::INFINITY, hi: f64::NEG_INFINITY };
    /// No value counted, extremes to be computed from the panes.
    const UNKNOWN_EXTREMES: FieldTotals = FieldTotals { n: 0.0, sum: 0.0, lo: f64::NAN, hi: f64::NAN };

    /// (min, max) over the window, if known; (+inf, -inf) when it holds no value.
    fn extremes(&self) -> Option<(f64, f64)> {
        (!self.lo.is_nan()).then_some((self.lo, self.hi))
    }

    fn set_extremes(&mut self, extremes: Option<(f64, f64)>) {
        (self.lo, self.hi) = extremes.unwrap_or((f64::NAN, f64::NAN));
    }
}

/// One window of one entity.
#[derive(Debug, Clone)]
struct Window {
    cur: i64,
    count: f64,
    /// Per numeric field: its totals over the current window, and its extremes cache.
    num: SmallVec<[FieldTotals; 2]>,
    /// Non-empty panes, ascending: (index, count).
    heads: Fifo<(i64, f64)>,
    /// `numeric` stats per pane, aligned with `heads`.
    stats: Fifo<Stat>,
    /// `distinct` register sets per pane, aligned with `heads`; empty unless some distinct
    /// field is in sketch mode (fields in exact mode keep zeros).
    regs: VecDeque<PaneRegs>,
    /// Cache: per distinct field in sketch mode, registers merged over the current window
    /// (`None` to build from the panes).
    /// Empty until some field is sketched (then one slot per distinct field), so that an
    /// exact-only entity carries none; a slot is updated in place, never reallocated.
    sketch: Vec<Option<WindowSketch>>,
}

impl Window {
    fn new(nf: usize) -> Self {
        Window {
            cur: EMPTY_PANE,
            count: 0.0,
            num: smallvec![FieldTotals::UNKNOWN_EXTREMES; nf],
            heads: Fifo::default(),
            stats: Fifo::default(),
            regs: VecDeque::new(),
            sketch: Vec::new(),
        }
    }

    /// Position of pane q in `heads`, searching from the newest.
    fn find(&self, q: i64) -> Result<usize, usize> {
        let mut i = self.heads.len();
        while i > 0 {
            let idx = self.heads[i - 1].0;
            if idx == q {
                return Ok(i - 1);
            }
            if idx < q {
                return Err(i);
            }
            i -= 1;
        }
        Err(0)
    }

    /// [`Window::range`] for panes at the old end of the ring (those sliding out, behind
    /// at most the lateness panes): a scan from the oldest finds them in a step or two,
    /// where a binary search over a busy window's panes takes about six per bound.
    fn front_range(&self, lo: i64, hi: i64) -> std::ops::Range<usize> {
        let start = self.heads.iter().take_while(|h| h.0 < lo).count();
        let end = start + self.heads[start..].iter().take_while(|h| h.0 <= hi).count();
        start..end
    }

    /// Positions of the panes with index in [lo, hi].
    fn range(&self, lo: i64, hi: i64) -> std::ops::Range<usize> {
        if lo > hi {
            return 0..0;
        }
        let start = self.heads.partition_point(|h| h.0 < lo);
        let end = self.heads.partition_point(|h| h.0 <= hi);
        start..end.max(start)
    }
}

/// [`Newest`] beyond a few values: value hash -> position, in a [`ProbeTable`] keyed by
/// the value's hash itself (mixed already, see [`distinct_hash`]). A lookup usually reads
/// one cache line of a table that is cold on a quiet entity's event, and that line can be
/// prefetched from the event's value ([`EntityState::prefetch`]).
#[derive(Debug, Clone)]
struct PositionTable(ProbeTable<Position>);

/// A [`PositionTable`] entry: a value's hash and its position plus one (0: free).
#[derive(Debug, Clone, Copy)]
struct Position {
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
    fn with_capacity(values: usize) -> Self {
        PositionTable(ProbeTable::with_capacity(values))
    }

    fn get(&self, h: u64) -> Option<u64> {
        self.0.entry(self.0.probe(h, |e| e.hash == h)).at.checked_sub(1)
    }

    /// Sets `h`'s position, returning the one it had.
    fn insert(&mut self, h: u64, at: u64) -> Option<u64> {
        self.0.reserve_one(|e| e.hash);
        let i = self.0.probe(h, |e| e.hash == h);
        self.0.put(i, Position { hash: h, at: at + 1 }).at.checked_sub(1)
    }

    fn remove(&mut self, h: u64) {
        let i = self.0.probe(h, |e| e.hash == h);
        self.0.remove(i, |e| e.hash);
    }

    fn positions(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().map(|e| e.at - 1)
    }

    fn prefetch(&self, h: u64) {
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
struct DistinctIndex {
    valid: bool,
    /// No window has slid since the index last synced, so its counts answer for the
    /// windows' newest panes. [`EntityState::add`] clears it when a window slides (a
    /// preview adds without syncing); one flag instead of each window's pane at the sync.
    panes_synced: bool,
    /// Absolute position of the first occurrence in the list.
    base: u64,
    /// Occurrences below this absolute position are accounted for.
    synced: u64,
    /// Per value hash: absolute position of its newest occurrence.
    newest: Newest,
    /// Per window: absolute position of its first occurrence, and its distinct count.
    start: SmallVec<[u64; 4]>,
    count: SmallVec<[u32; 4]>,
}

/// [`DistinctIndex::newest`]: per value hash, the position of its newest occurrence. A
/// short list scanned in place while the values are few (a quiet entity's usual case, so
/// its event reads no hash table of its own, cold in memory), a [`PositionTable`] beyond.
#[derive(Debug, Clone)]
enum Newest {
    Few(SmallVec<[(u64, u64); Newest::FEW]>),
    Many(PositionTable),
}

impl Default for Newest {
    fn default() -> Self {
        Newest::Few(SmallVec::new())
    }
}

impl Newest {
    const FEW: usize = 8;

    fn get(&self, h: u64) -> Option<u64> {
        match self {
            Newest::Few(few) => few.iter().find(|e| e.0 == h).map(|e| e.1),
            Newest::Many(many) => many.get(h),
        }
    }

    /// Sets `h`'s position, returning the one it had.
    fn insert(&mut self, h: u64, at: u64) -> Option<u64> {
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

    fn remove(&mut self, h: u64) {
        match self {
            Newest::Few(few) => {
                if let Some(i) = few.iter().position(|e| e.0 == h) {
                    few.swap_remove(i);
                }
            }
            Newest::Many(many) => many.remove(h),
        }
    }

    fn clear(&mut self) {
        *self = Newest::default();
    }

    /// How many values have their newest occurrence at or after position `from`.
    fn count_from(&self, from: u64) -> usize {
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
    /// instead rebuilt it from every occurrence on the next sync: a quiet entity, whose
    /// windows slide further than the lateness between two of its events, paid a rebuild
    /// of its value map on each event.)
    fn drop_front(&mut self, dropped: &[(i64, u64)]) {
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
    fn sync(&mut self, occ: &[(i64, u64)], windows: &[Window], specs: &[WindowSpec]) {
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
    fn count(&self, k: usize, len: usize) -> Option<f64> {
        (self.valid && self.panes_synced && self.synced == self.base + len as u64).then(|| f64::from(self.count[k]))
    }
}

/// A list whose oldest items are dropped often (a window's panes, a distinct field's
/// occurrences): dropping moves nothing (the live list starts at `head`), and the dead
/// prefix is compacted away when a push finds the list full and the prefix at least as
/// long as the live list, so the moves cost O(1) per item and the list reuses its memory
/// instead of growing. (Draining a `Vec` moved the whole list, up to a
/// window's ring of panes or `distinct_exact_limit` occurrences, on most events of a busy
/// entity.) Reads and writes go through the live slice.
#[derive(Debug, Clone)]
struct Fifo<T> {
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
    fn push(&mut self, x: T) {
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
    fn insert(&mut self, i: usize, x: T) {
        self.items.insert(self.head + i, x);
    }

    /// Drops the `n` oldest.
    fn drop_front(&mut self, n: usize) {
        self.head += n;
        if self.head == self.items.len() {
            self.items.clear();
            self.head = 0;
        }
    }

    fn clear(&mut self) {
        self.items.clear();
        self.head = 0;
    }
}

/// A distinct field's occurrences `(time, hash)`, ascending by time.
type Occurrences = Fifo<(i64, u64)>;

/// Window `wi`'s bit in a mask of windows; windows from the 64th on share the last bit.
fn window_bit(wi: usize) -> u64 {
    1 << wi.min(63)
}

/// Starts loading the cache line holding `x` (a hint: no effect on results).
#[inline(always)]
fn prefetch<T>(x: Option<&T>) {
    if let Some(x) = x {
        prefetch_address((x as *const T).cast::<u8>());
    }
}

/// Starts loading the cache line holding `address` (a hint: no effect on results).
#[inline(always)]
pub(crate) fn prefetch_address(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no architectural effect and never faults, whatever the
    // address (callers pass addresses inside live objects anyway). SSE is part of the
    // x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// The one shared copy of a topic name, for replay fences. Taken when an entity first sees
/// a partition or is read back, not per event; a process knows a handful of topics.
fn intern_topic(topic: &str) -> Arc<str> {
    static TOPICS: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Default::default);
    let mut topics = TOPICS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(t) = topics.get(topic) {
        return t.clone();
    }
    let t: Arc<str> = topic.into();
    topics.insert(t.clone());
    t
}

/// One entity's state: its windows, recent times, distinct occurrences and replay fences.
#[derive(Debug, Clone)]
pub struct EntityState {
    max_t: i64,
    windows: SmallVec<[Window; 4]>,
    /// Applied event times within the lateness behind `max_t`, ascending
    /// (`seconds_since_last` only).
    times: VecDeque<i64>,
    /// The largest applied time that fell out of `times` (`i64::MIN` if none).
    older: i64,
    /// Per distinct field: in sketch mode?
    sketched: SmallVec<[bool; 2]>,
    /// Per distinct field: (time, hash), ascending by time (equal times in arrival order).
    /// In exact mode every occurrence inside some window's ring; in sketch mode a shadow
    /// that is complete for times after `exact_from` and at most the limit long, so the
    /// field can go back to exact once the sketched data has left every ring.
    occurrences: SmallVec<[Occurrences; 1]>,
    /// Per distinct field in sketch mode: the shadow occurrences hold every occurrence
    /// with a time after this one. `i64::MIN` in exact mode.
    exact_from: SmallVec<[i64; 2]>,
    /// Cache per distinct field in exact mode: the counts as of each window's newest pane.
    distinct_index: SmallVec<[DistinctIndex; 1]>,
    /// Every cache is filled for the current panes (set by `fill_caches`, cleared by any
    /// change): the values of a newest pane need no check.
    warm: bool,
    /// Highest applied offset per (topic, partition): the replay fence. A short list, not
    /// a map: an entity is almost always fed by one partition.
    /// Topics are interned ([`intern_topic`]): comparing one on every event reads memory
    /// every entity shares, not a string of this entity's own (a cache miss per event).
    fences: SmallVec<[(Arc<str>, i32, i64); 1]>,
}

impl PartialEq for EntityState {
    /// Equal when their encodings are (caches aside).
    fn eq(&self, other: &Self) -> bool {
        self.max_t == other.max_t
            && self.times == other.times
            && self.older == other.older
            && self.sketched == other.sketched
            && self.occurrences == other.occurrences
            && self.exact_from == other.exact_from
            && self.fences() == other.fences()
            && self.windows.len() == other.windows.len()
            && self.windows.iter().zip(&other.windows).all(|(a, b)| {
                a.cur == b.cur
                    && a.count.to_bits() == b.count.to_bits()
                    && a.num.iter().zip(&b.num).all(|(x, y)| x.n.to_bits() == y.n.to_bits() && x.sum.to_bits() == y.sum.to_bits())
                    && a.heads == b.heads
                    && a.stats == b.stats
                    && a.regs == b.regs
            })
    }
}

impl EntityState {
    pub fn new(def: &EntityDef) -> Self {
        EntityState {
            max_t: i64::MIN,
            windows: def.windows.iter().map(|_| Window::new(def.numeric.len())).collect(),
            times: VecDeque::new(),
            older: i64::MIN,
            sketched: smallvec![false; def.distinct],
            occurrences: smallvec![Occurrences::default(); def.distinct],
            exact_from: smallvec![i64::MIN; def.distinct],
            distinct_index: smallvec![DistinctIndex::default(); def.distinct],
            warm: false,
            fences: SmallVec::new(),
        }
    }

    /// Asks the CPU to start loading the memory `obs`, an event of this entity, will touch
    /// (its newest panes and the slots after them, its oldest, the merged sketches'
    /// registers its hash sets, the newest occurrences and its value's entry in the
    /// distinct index), without waiting for it. A store prefetches a batch's states some
    /// events before applying them, so that their cache misses overlap instead of
    /// following one another (a quiet entity's state is cold on each of its events). Reads
    /// the state's own struct: call [`EntityState::prefetch_lines`] some time before.
    pub fn prefetch(&self, obs: &Observation) {
        for w in &self.windows {
            prefetch(w.heads.last());
            prefetch(w.stats.last());
            // A new newest pane goes into the slots after them.
            prefetch_address(w.heads.as_ptr().wrapping_add(w.heads.len()).cast());
            prefetch_address(w.stats.as_ptr().wrapping_add(w.stats.len()).cast());
            // A quiet entity's event slides its windows, which reads their oldest panes.
            prefetch(w.heads.first());
            prefetch(w.stats.first());
            prefetch(w.regs.back());
        }
        for (d, (occ, index)) in self.occurrences.iter().zip(&self.distinct_index).enumerate() {
            prefetch(occ.last());
            // The occurrences at the windows' starts, which sliding windows move past.
            for &start in &index.start {
                prefetch(start.checked_sub(index.base).and_then(|i| occ.get(i as usize)));
            }
            let Some(Some(h)) = obs.distinct.get(d) else { continue };
            if self.is_sketched(d) {
                let (register, _) = hll_slot(*h);
                let nd = self.occurrences.len();
                for w in &self.windows {
                    // The newest pane's registers, if a full set on the heap.
                    if let Some(PaneRegs::Dense(regs)) = w.regs.len().checked_sub(nd - d).and_then(|i| w.regs.get(i)) {
                        prefetch(Some(&regs[register]));
                    }
                    if let Some(Some(c)) = w.sketch.get(d) {
                        prefetch(Some(&c.merged.sum));
                        prefetch(Some(&c.first));
                        prefetch(Some(&c.merged.regs[register]));
                        prefetch(Some(&c.front[register]));
                        prefetch(c.back.last());
                        // A slide moves past the back's oldest entries, reading them.
                        prefetch(c.back.get(c.first));
                    }
                }
            } else if let Newest::Many(table) = &index.newest {
                table.prefetch(*h);
            }
        }
    }

    /// Asks the CPU to start loading every cache line of this state's own struct (not
    /// what its lists point to: see [`EntityState::prefetch`]).
    pub fn prefetch_lines(&self) {
        let start = (self as *const Self).cast::<u8>();
        for offset in (0..std::mem::size_of::<Self>()).step_by(64) {
            prefetch_address(start.wrapping_add(offset));
        }
    }

    pub fn max_event_time(&self) -> Option<i64> {
        (self.max_t != i64::MIN).then_some(self.max_t)
    }

    /// Whether distinct field `d` has switched to sketches.
    pub fn is_sketched(&self, d: usize) -> bool {
        self.sketched.get(d).copied().unwrap_or(false)
    }

    /// Applies one observation (unless fenced or late) and returns the values as of its
    /// event time. `floor` is its partition's watermark (events below it are late), if any.
    pub fn apply(&mut self, def: &EntityDef, obs: &Observation, floor: Option<i64>) -> ObservationResult {
        let t = obs.event_time_ms;
        let pos = &obs.position;
        let fence = self.fences.iter_mut().find(|(topic, partition, _)| *partition == pos.partition && **topic == *pos.topic);
        let applied = match fence {
            Some((_, _, up_to)) if pos.offset <= *up_to => Applied::Replayed,
            fence => {
                match fence {
                    Some((_, _, up_to)) => *up_to = pos.offset,
                    None => self.fences.push((intern_topic(&pos.topic), pos.partition, pos.offset)),
                }
                if self.is_late(def, t, floor) {
                    Applied::Late
                } else {
                    let stale = self.add(def, obs);
                    self.fill_caches(def, stale);
                    Applied::Applied
                }
            }
        };
        ObservationResult { applied, values: self.values_at(def, t) }
    }

    /// What [`EntityState::apply`] would answer for `obs` without its fence or a
    /// partition watermark, leaving this state as it is.
    pub fn preview(&self, def: &EntityDef, obs: &Observation) -> ObservationResult {
        let t = obs.event_time_ms;
        if self.is_late(def, t, None) {
            return ObservationResult { applied: Applied::Late, values: self.values_at(def, t) };
        }
        let mut copy = self.clone();
        copy.add(def, obs);
        ObservationResult { applied: Applied::Applied, values: copy.values_at(def, t) }
    }

    fn is_late(&self, def: &EntityDef, t: i64, floor: Option<i64>) -> bool {
        (self.max_t != i64::MIN && t < self.max_t.saturating_sub(def.lateness_ms)) || floor.is_some_and(|f| t < f)
    }

    /// Adds a non-late event. Returns the windows whose caches may be missing now (a
    /// [`window_bit`] mask): those the event slid or did not fall in the newest pane of.
    /// In a window whose newest pane it fell in, the merged sketches and extremes were
    /// updated in place and still answer, so [`EntityState::fill_caches`] can skip it.
    /// All windows if the caches were not all filled before, or a distinct field changed
    /// mode.
    fn add(&mut self, def: &EntityDef, obs: &Observation) -> u64 {
        let mut stale = if self.warm { 0 } else { u64::MAX };
        self.warm = false;
        let t = obs.event_time_ms;
        let nf = def.numeric.len();
        let nd = def.distinct;
        let any_sketched = self.sketched.iter().any(|&s| s);
        let mut slid = false;
        for (wi, (w, spec)) in self.windows.iter_mut().zip(&def.windows).enumerate() {
            let p = spec.pane_near(t, w.cur);
            if p != w.cur {
                stale |= window_bit(wi);
            }
            if p > w.cur {
                slide(w, spec, p, nf, nd);
                slid = true;
            }
            let at = match w.find(p) {
                Ok(i) => i,
                // The common case: a new newest pane.
                Err(i) if i == w.heads.len() => {
                    w.heads.push((p, 0.0));
                    for _ in 0..nf {
                        w.stats.push(EMPTY_STAT);
                    }
                    if any_sketched {
                        for _ in 0..nd {
                            w.regs.push_back(PaneRegs::default());
                        }
                    }
                    i
                }
                Err(i) => {
                    w.heads.insert(i, (p, 0.0));
                    for k in 0..nf {
                        w.stats.insert(i * nf + k, EMPTY_STAT);
                    }
                    if any_sketched {
                        for k in 0..nd {
                            w.regs.insert(i * nd + k, PaneRegs::default());
                        }
                    }
                    i
                }
            };
            let inside = p > w.cur - spec.panes;
            w.heads[at].1 += 1.0;
            if inside {
                w.count += 1.0;
            }
            for (k, v) in obs.values.iter().enumerate().take(nf) {
                let Some(x) = *v else { continue };
                let s = &mut w.stats[at * nf + k];
                s.n += 1.0;
                s.sum += x;
                s.min = s.min.min(x);
                s.max = s.max.max(x);
                if inside {
                    let f = &mut w.num[k];
                    if let Some((lo, hi)) = f.extremes() {
                        f.set_extremes(Some(if f.n == 0.0 { (x, x) } else { (lo.min(x), hi.max(x)) }));
                    }
                    f.n += 1.0;
                    f.sum += x;
                }
            }
            for (d, h) in obs.distinct.iter().enumerate().take(nd) {
                let Some(h) = *h else { continue };
                if self.sketched[d] {
                    w.regs[at * nd + d].add(h);
                    if inside && let Some(c) = &mut w.sketch[d] {
                        c.add(p, h);
                    }
                }
            }
        }
        if slid {
            for index in &mut self.distinct_index {
                index.panes_synced = false;
            }
        }
        if def.seconds_since_last {
            let i = self.times.partition_point(|&u| u <= t);
            self.times.insert(i, t);
        }
        for (d, h) in obs.distinct.iter().enumerate().take(nd) {
            if let Some(h) = *h {
                let occ = &mut self.occurrences[d];
                let i = occ.len() - occ.iter().rev().take_while(|o| o.0 > t).count();
                if i == occ.len() {
                    occ.push((t, h));
                } else {
                    // Out of order: the index's positions shift; rebuilt on next need.
                    occ.insert(i, (t, h));
                    self.distinct_index[d].valid = false;
                }
            }
        }
        if t > self.max_t {
            self.max_t = t;
        }
        if !self.prune(def) {
            stale = u64::MAX;
        }
        stale
    }

    /// Drops times and occurrences nothing can need any more; switches a distinct field
    /// over its limit to sketches, and a sketched one back to exact once every ring holds
    /// only times its shadow occurrences cover. Returns false if some field switched.
    fn prune(&mut self, def: &EntityDef) -> bool {
        let keep_from = self.max_t.saturating_sub(def.lateness_ms);
        while let Some(&u) = self.times.front() {
            if u >= keep_from {
                break;
            }
            self.older = self.older.max(u);
            self.times.pop_front();
        }
        if def.distinct == 0 {
            return true;
        }
        // The oldest time still inside some window's kept panes.
        let horizon = self
            .windows
            .iter()
            .zip(&def.windows)
            .map(|(w, s)| (w.cur - s.slots + 1).saturating_mul(s.pane_ms))
            .min()
            .unwrap_or(i64::MAX);
        let mut kept = true;
        for d in 0..def.distinct {
            let occ = &mut self.occurrences[d];
            // Usually none or one: a scan from the oldest, not a binary search.
            let drop = occ.iter().take_while(|o| o.0 < horizon).count();
            if drop > 0 {
                self.distinct_index[d].drop_front(&occ[..drop]);
                occ.drop_front(drop);
            }
            let over = occ.len() > def.distinct_exact_limit;
            match (self.sketched[d], over) {
                (false, true) => {
                    self.switch_to_sketch(def, d);
                    kept = false;
                }
                (true, true) => {
                    // The shadow overflowed: start it again from here.
                    occ.clear();
                    self.exact_from[d] = self.max_t;
                }
                (true, false) if horizon > self.exact_from[d] => {
                    self.switch_to_exact(def, d);
                    kept = false;
                }
                _ => {}
            }
        }
        kept
    }

    /// Switches sketched field `d` back to exact counts from its shadow occurrences (which
    /// cover every time still in a ring).
    fn switch_to_exact(&mut self, def: &EntityDef, d: usize) {
        let nd = def.distinct;
        self.sketched[d] = false;
        self.exact_from[d] = i64::MIN;
        self.distinct_index[d].valid = false;
        let none_sketched = !self.sketched.iter().any(|&s| s);
        for w in &mut self.windows {
            if none_sketched {
                w.sketch = Vec::new();
                w.regs = VecDeque::new();
            } else {
                w.sketch[d] = None;
                for i in 0..w.heads.len() {
                    w.regs[i * nd + d] = PaneRegs::default();
                }
            }
        }
    }

    /// Switches distinct field `d` to per-pane sketches, built from its occurrences.
    fn switch_to_sketch(&mut self, def: &EntityDef, d: usize) {
        let nd = def.distinct;
        let first = !self.sketched.iter().any(|&s| s);
        let occ = std::mem::take(&mut self.occurrences[d]);
        // The shadow starts empty: complete for what comes after the newest time so far.
        self.exact_from[d] = self.max_t;
        self.distinct_index[d] = DistinctIndex::default();
        for (w, spec) in self.windows.iter_mut().zip(&def.windows) {
            if first {
                w.regs = std::iter::repeat_n(PaneRegs::default(), w.heads.len() * nd).collect();
                w.sketch = vec![None; nd];
            }
            for &(t, h) in occ.iter() {
                if let Ok(i) = w.find(spec.pane_of(t)) {
                    w.regs[i * nd + d].add(h);
                }
            }
            w.sketch[d] = None;
        }
        self.sketched[d] = true;
    }

    /// Recomputes the missing caches of the current windows in `stale` (a [`window_bit`]
    /// mask; the others' are known to be filled) and syncs the distinct indexes.
    fn fill_caches(&mut self, def: &EntityDef, stale: u64) {
        let nf = def.numeric.len();
        let nd = def.distinct;
        for (wi, (w, spec)) in self.windows.iter_mut().zip(&def.windows).enumerate() {
            if stale & window_bit(wi) == 0 {
                continue;
            }
            // The current window's panes, found on first need.
            let mut r: Option<std::ops::Range<usize>> = None;
            let mut r = |w: &Window| r.get_or_insert_with(|| w.range(w.cur - spec.panes + 1, w.cur)).clone();
            for k in 0..nf {
                if def.extremes[k] && w.num[k].extremes().is_none() {
                    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                    for i in r(w) {
                        let s = &w.stats[i * nf + k];
                        lo = lo.min(s.min);
                        hi = hi.max(s.max);
                    }
                    w.num[k].set_extremes(Some((lo, hi)));
                }
            }
            let start = w.cur - spec.panes + 1;
            for d in 0..nd {
                if !self.sketched[d] {
                    continue;
                }
                match &mut w.sketch[d] {
                    Some(c) if c.is_current(start) => {}
                    Some(c) => c.advance(start, w.cur, &w.heads, &w.regs, nd, d),
                    None => w.sketch[d] = Some(WindowSketch::build(start, w.cur, &w.heads, &w.regs, nd, d)),
                }
            }
        }
        for d in 0..nd {
            if !self.sketched[d] {
                self.distinct_index[d].sync(&self.occurrences[d], &self.windows, &def.windows);
            }
        }
        self.warm = true;
    }

    /// The values as of event time `t` (see [`EntityDef`] for the order).
    pub fn values_at(&self, def: &EntityDef, t: i64) -> Vec<f64> {
        let mut out = Vec::with_capacity(def.names.len());
        // Exact distinct counts per field, all windows at once, counted on first use (when
        // the incremental index cannot answer).
        let mut exact: Vec<Vec<f64>> = Vec::new();
        let nf = def.numeric.len();
        let nd = def.distinct;
        // Per window: count, and (n, sum) of a numeric field, as of t (in pane pt).
        let totals = |w: &Window, spec: &WindowSpec, pt: i64, field: Option<usize>| -> (f64, f64) {
            let get = |i: usize| match field {
                None => (w.heads[i].1, 0.0),
                Some(k) => (w.stats[i * nf + k].n, w.stats[i * nf + k].sum),
            };
            if pt == w.cur {
                return match field {
                    None => (w.count, 0.0),
                    Some(k) => (w.num[k].n, w.num[k].sum),
                };
            }
            let (mut n, mut s);
            if pt > w.cur || w.cur - pt >= spec.panes {
                (n, s) = (0.0, 0.0);
                for i in w.range(pt - spec.panes + 1, pt) {
                    let (a, b) = get(i);
                    n += a;
                    s += b;
                }
            } else {
                (n, s) = match field {
                    None => (w.count, 0.0),
                    Some(k) => (w.num[k].n, w.num[k].sum),
                };
                for i in w.range(pt + 1, w.cur) {
                    let (a, b) = get(i);
                    n -= a;
                    s -= b;
                }
                for i in w.range(pt - spec.panes + 1, w.cur - spec.panes) {
                    let (a, b) = get(i);
                    n += a;
                    s += b;
                }
            }
            if n == 0.0 {
                s = 0.0;
            }
            (n, s)
        };
        for (wi, (w, spec)) in self.windows.iter().zip(&def.windows).enumerate() {
            // The newest event is in every window's newest pane (no division needed).
            let pt = if t == self.max_t { w.cur } else { spec.pane_of(t) };
            if pt == w.cur && self.current_window_values(def, wi, &mut out) {
                continue;
            }
            for a in &def.aggregations {
                let v = match a.kind {
                    AggKind::Count => totals(w, spec, pt, None).0,
                    AggKind::Sum => totals(w, spec, pt, Some(a.field)).1,
                    AggKind::Mean => {
                        let (n, s) = totals(w, spec, pt, Some(a.field));
                        if n > 0.0 { s / n } else { 0.0 }
                    }
                    AggKind::Min | AggKind::Max => {
                        let k = a.field;
                        let (lo, hi) = match w.num[k].extremes() {
                            Some(c) if pt == w.cur => c,
                            _ => {
                                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                                for i in w.range(pt - spec.panes + 1, pt) {
                                    let s = &w.stats[i * nf + k];
                                    lo = lo.min(s.min);
                                    hi = hi.max(s.max);
                                }
                                (lo, hi)
                            }
                        };
                        let v = if a.kind == AggKind::Min { lo } else { hi };
                        if v.is_finite() { v } else { 0.0 }
                    }
                    AggKind::Distinct => {
                        let d = a.field;
                        if self.sketched[d] {
                            match &w.sketch[d] {
                                Some(c) if pt == w.cur && c.is_current(w.cur - spec.panes + 1) => c.merged.estimate(),
                                _ => {
                                    let mut regs = [0u8; HLL_REGISTERS];
                                    for i in w.range(pt - spec.panes + 1, pt) {
                                        w.regs[i * nd + d].merge_into(&mut regs);
                                    }
                                    hll_estimate(&regs)
                                }
                            }
                        } else if pt == w.cur && let Some(n) = self.distinct_index[d].count(wi, self.occurrences[d].len()) {
                            n
                        } else {
                            if exact.is_empty() {
                                exact = vec![Vec::new(); def.distinct];
                            }
                            if exact[d].is_empty() {
                                exact[d] = SCRATCH.with(|set| exact_distinct(&self.occurrences[d], &def.windows, t, &mut set.borrow_mut()));
                            }
                            exact[d][wi]
                        }
                    }
                };
                out.push(v);
            }
        }
        if def.seconds_since_last {
            let i = self.times.partition_point(|&u| u < t);
            let before = if i > 0 { self.times[i - 1] } else { self.older };
            out.push(if before != i64::MIN && before < t { (t - before) as f64 / 1000.0 } else { -1.0 });
        }
        for &(k, wi) in &def.extra_means {
            let spec = &def.windows[wi];
            let w = &self.windows[wi];
            let (n, s) = totals(w, spec, if t == self.max_t { w.cur } else { spec.pane_of(t) }, Some(k));
            out.push(if n > 0.0 { s / n } else { 0.0 });
        }
        out
    }

    /// The fast path of [`EntityState::values_at`] for a time in window `wi`'s newest pane:
    /// every value straight from the running totals and caches, through [`WindowAnswers`].
    /// Pushes the window's values and returns true, or pushes nothing and returns false
    /// when some cache is missing or the kind is too wide for `WindowAnswers` (then
    /// `values_at` evaluates the aggregations one by one).
    fn current_window_values(&self, def: &EntityDef, wi: usize, out: &mut Vec<f64>) -> bool {
        if def.answer_slots.is_empty() {
            return false;
        }
        let w = &self.windows[wi];
        let start = w.cur - def.windows[wi].panes + 1;
        let ready = self.warm
            || def.value_ops.iter().all(|op| match *op {
                ValueOp::Min(k) | ValueOp::Max(k) => w.num[k].extremes().is_some(),
                ValueOp::Distinct(d) if self.sketched[d] => w.sketch[d].as_ref().is_some_and(|c| c.is_current(start)),
                ValueOp::Distinct(d) => self.distinct_index[d].count(wi, self.occurrences[d].len()).is_some(),
                _ => true,
            });
        if !ready {
            return false;
        }
        let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
        let mut answers = WindowAnswers([0.0; WindowAnswers::LEN]);
        let (count, rest) = answers.0.split_at_mut(1);
        count[0] = w.count;
        let (numeric, distinct) = rest.split_at_mut(4 * def.numeric.len());
        for (slots, f) in numeric.chunks_exact_mut(4).zip(w.num.iter()) {
            let (n, s) = (f.n, f.sum);
            // Extremes are known wherever a min or max is asked for (`ready`); elsewhere
            // their slots are not gathered, and an unknown NaN would read as 0 anyway.
            slots.copy_from_slice(&[s, if n > 0.0 { s / n } else { 0.0 }, finite(f.lo), finite(f.hi)]);
        }
        for (d, slot) in distinct.iter_mut().take(def.distinct).enumerate() {
            *slot = if self.sketched[d] {
                w.sketch[d].as_ref().map_or(0.0, |c| c.merged.estimate())
            } else {
                self.distinct_index[d].count(wi, self.occurrences[d].len()).unwrap_or(0.0)
            };
        }
        out.extend(def.answer_slots.iter().map(|&slot| answers.get(slot)));
        true
    }

    /// Values as of the newest event, or `None` before the first.
    pub fn current_values(&self, def: &EntityDef) -> Option<Vec<f64>> {
        self.max_event_time().map(|t| self.values_at(def, t))
    }

    /// The replay fences, sorted: (topic, partition, highest applied offset).
    pub fn fences(&self) -> Vec<(String, i32, i64)> {
        let mut fences: Vec<(String, i32, i64)> = self.fences.iter().map(|(t, p, o)| (t.to_string(), *p, *o)).collect();
        fences.sort();
        fences
    }

    /// The state as compact binary (module docs).
    pub fn to_bytes(&self, def: &EntityDef) -> Vec<u8> {
        let nf = def.numeric.len();
        let nd = def.distinct;
        let any_sketched = self.sketched.iter().any(|&s| s);
        let mut out = Vec::with_capacity(64 + self.windows.iter().map(|w| w.heads.len() * (12 + nf * 24)).sum::<usize>());
        out.push(MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&def.fingerprint.to_le_bytes());
        out.extend_from_slice(&self.max_t.to_le_bytes());
        out.extend_from_slice(&self.older.to_le_bytes());
        put_u32(&mut out, self.times.len());
        for t in &self.times {
            out.extend_from_slice(&t.to_le_bytes());
        }
        for d in 0..nd {
            out.push(self.sketched[d] as u8);
            out.extend_from_slice(&self.exact_from[d].to_le_bytes());
            put_u32(&mut out, self.occurrences[d].len());
            for (t, h) in self.occurrences[d].iter() {
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&h.to_le_bytes());
            }
        }
        for w in &self.windows {
            out.extend_from_slice(&w.cur.to_le_bytes());
            out.extend_from_slice(&w.count.to_le_bytes());
            for f in &w.num {
                out.extend_from_slice(&f.n.to_le_bytes());
                out.extend_from_slice(&f.sum.to_le_bytes());
            }
            put_u32(&mut out, w.heads.len());
            for (i, (q, c)) in w.heads.iter().enumerate() {
                out.extend_from_slice(&q.to_le_bytes());
                put_u32(&mut out, *c as usize);
                for k in 0..nf {
                    let s = &w.stats[i * nf + k];
                    put_u32(&mut out, s.n as usize);
                    out.extend_from_slice(&s.sum.to_le_bytes());
                    if def.extremes[k] {
                        out.extend_from_slice(&s.min.to_le_bytes());
                        out.extend_from_slice(&s.max.to_le_bytes());
                    }
                }
                if any_sketched {
                    for d in 0..nd {
                        put_regs(&mut out, &w.regs[i * nd + d].to_dense());
                    }
                }
            }
        }
        put_u32(&mut out, self.fences.len());
        for (topic, partition, offset) in &self.fences {
            out.extend_from_slice(&(topic.len() as u16).to_le_bytes());
            out.extend_from_slice(topic.as_bytes());
            out.extend_from_slice(&partition.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
        }
        out
    }

    /// Reads a state written by [`EntityState::to_bytes`] (or by the previous format, 3,
    /// which lacks the shadow mark of sketched fields), refusing one written for another
    /// layout or format.
    pub fn from_bytes(def: &EntityDef, bytes: &[u8]) -> Result<Self, String> {
        let mut r = Reader { bytes, at: 0 };
        let magic = r.take(1)?[0];
        let version = r.take(1)?[0];
        if magic != MAGIC || !(version == FORMAT_VERSION || version == 3) {
            return Err(format!(
                "state of kind {:?} has format {magic}/{version}, this weir reads {MAGIC}/3 and {MAGIC}/{FORMAT_VERSION}",
                def.kind
            ));
        }
        let fingerprint = r.u32()?;
        let expected = if version == FORMAT_VERSION { def.fingerprint } else { def.fingerprint_of_format(version) };
        if fingerprint != expected {
            return Err(format!(
                "state of kind {:?} has layout fingerprint {fingerprint}, the configured definition has {expected}: it was written under other feature settings (windows, lateness, fields)",
                def.kind
            ));
        }
        let nf = def.numeric.len();
        let nd = def.distinct;
        let mut s = EntityState::new(def);
        s.max_t = r.i64()?;
        s.older = r.i64()?;
        let n = r.count(8)?;
        for _ in 0..n {
            s.times.push_back(r.i64()?);
        }
        for d in 0..nd {
            s.sketched[d] = r.take(1)?[0] != 0;
            s.exact_from[d] = if version == 3 {
                // Format 3 kept no shadow: it is complete only for what comes next.
                if s.sketched[d] { s.max_t } else { i64::MIN }
            } else {
                r.i64()?
            };
            let n = r.count(16)?;
            let mut occ = Vec::with_capacity(n);
            for _ in 0..n {
                occ.push((r.i64()?, r.u64()?));
            }
            s.occurrences[d] = occ.into();
        }
        let any_sketched = s.sketched.iter().any(|&x| x);
        for (w, _) in s.windows.iter_mut().zip(&def.windows) {
            if any_sketched {
                w.sketch = vec![None; nd];
            }
            w.cur = r.i64()?;
            w.count = r.f64()?;
            for k in 0..nf {
                (w.num[k].n, w.num[k].sum) = (r.f64()?, r.f64()?);
            }
            let panes = r.count(12)?;
            for _ in 0..panes {
                let q = r.i64()?;
                if w.heads.last().is_some_and(|h| h.0 >= q) {
                    return Err(format!("state of kind {:?}: panes out of order", def.kind));
                }
                w.heads.push((q, f64::from(r.u32()?)));
                for k in 0..nf {
                    let n = f64::from(r.u32()?);
                    let sum = r.f64()?;
                    let (min, max) = if def.extremes[k] { (r.f64()?, r.f64()?) } else { (f64::INFINITY, f64::NEG_INFINITY) };
                    w.stats.push(Stat { n, sum, min, max });
                }
                if any_sketched {
                    for _ in 0..nd {
                        w.regs.push_back(PaneRegs::from_dense(&r.regs()?));
                    }
                }
            }
        }
        let n = r.count(14)?;
        for _ in 0..n {
            let len = u16::from_le_bytes(r.take(2)?.try_into().unwrap_or([0; 2])) as usize;
            let topic = intern_topic(std::str::from_utf8(r.take(len)?).map_err(|_| "fence topic is not utf-8".to_string())?);
            let partition = r.u32()? as i32;
            s.fences.push((topic, partition, r.i64()?));
        }
        if r.at != bytes.len() {
            return Err(format!("state of kind {:?} has {} trailing bytes", def.kind, bytes.len() - r.at));
        }
        Ok(s)
    }
}

thread_local! {
    /// The hash set exact distinct counts reuse (no allocation per event).
    static SCRATCH: std::cell::RefCell<HashSet64> = std::cell::RefCell::new(HashSet64::default());
}

/// A set of hashes for exact distinct counts: open addressing, cleared by generation.
#[derive(Default)]
struct HashSet64 {
    keys: Vec<u64>,
    stamps: Vec<u32>,
    generation: u32,
}

impl HashSet64 {
    /// Empties the set, sized for up to `n` elements.
    fn reset(&mut self, n: usize) {
        let size = (2 * n).next_power_of_two().max(16);
        if self.keys.len() < size {
            self.keys = vec![0; size];
            self.stamps = vec![0; size];
            self.generation = 0;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
    }

    /// Inserts `h`; whether it was new.
    fn insert(&mut self, h: u64) -> bool {
        let mask = self.keys.len() - 1;
        let mut i = (h as usize) & mask;
        loop {
            if self.stamps[i] != self.generation {
                self.stamps[i] = self.generation;
                self.keys[i] = h;
                return true;
            }
            if self.keys[i] == h {
                return false;
            }
            i = (i + 1) & mask;
        }
    }
}

/// Exact distinct counts of `occ` (ascending by time) in every window as of `t`. The
/// windows whose end is past the newest occurrence (all of them when `t` is the newest
/// event) are counted in one pass from the newest occurrence back, by window start.
fn exact_distinct(occ: &[(i64, u64)], windows: &[WindowSpec], t: i64, set: &mut HashSet64) -> Vec<f64> {
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

/// Moves window `w` forward to pane `p` (> cur): subtracts the panes that slide out of
/// the window, drops those that leave the ring.
fn slide(w: &mut Window, spec: &WindowSpec, p: i64, nf: usize, nd: usize) {
    if w.cur == EMPTY_PANE || p - w.cur >= spec.panes {
        w.count = 0.0;
        w.num.fill(FieldTotals::EMPTY);
        // Only sketched fields have a merged sketch (and `None` is built from the panes,
        // which are empty for this window now).
        for c in w.sketch.iter_mut().flatten() {
            c.clear(p - spec.panes + 1);
        }
    } else {
        // Panes [cur - panes + 1, p - panes] slide out, oldest first.
        let out = w.front_range(w.cur - spec.panes + 1, p - spec.panes);
        if !out.is_empty() {
            for i in out {
                w.count -= w.heads[i].1;
                for k in 0..nf {
                    let s = w.stats[i * nf + k];
                    let f = &mut w.num[k];
                    f.n -= s.n;
                    f.sum -= s.sum;
                    if let Some(c) = f.extremes()
                        && s.n > 0.0
                        && (s.min <= c.0 || s.max >= c.1)
                    {
                        f.set_extremes(None);
                    }
                }
            }
            if w.count == 0.0 {
                // Nothing left in the window: its caches are known without a pass (a quiet
                // entity's short windows empty out on almost every event; recomputing a
                // merged sketch costs a pass over 256 registers per pane).
                w.num.fill(FieldTotals::EMPTY);
                for c in w.sketch.iter_mut().flatten() {
                    c.clear(p - spec.panes + 1);
                }
            } else {
                for f in &mut w.num {
                    // A sum is exactly 0 when no value is left (no rounding residue).
                    if f.n == 0.0 {
                        f.sum = 0.0;
                    }
                }
            }
        }
    }
    w.cur = p;
    // Panes that left the ring are the oldest: drop them from the front.
    let first_kept = p - spec.slots + 1;
    let gone = w.heads.iter().take_while(|h| h.0 < first_kept).count();
    if gone > 0 {
        // A short memmove for the pane heads and stats (a window keeps at most its ring of
        // panes); the 256-byte sketch registers sit in a ring buffer, which moves nothing.
        w.heads.drop_front(gone);
        w.stats.drop_front(gone * nf);
        if !w.regs.is_empty() {
            w.regs.drain(..gone * nd);
        }
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

/// Registers: a count of non-zero ones then (index, value) pairs when that is shorter,
/// else 255 then all 256.
fn put_regs(out: &mut Vec<u8>, regs: &[u8; HLL_REGISTERS]) {
    let nonzero = regs.iter().filter(|&&r| r != 0).count();
    if nonzero < 127 {
        out.push(nonzero as u8);
        for (i, &r) in regs.iter().enumerate() {
            if r != 0 {
                out.push(i as u8);
                out.push(r);
            }
        }
    } else {
        out.push(255);
        out.extend_from_slice(regs);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("state is truncated at byte {} (needs {n} more)", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn eight(&mut self) -> Result<[u8; 8], String> {
        Ok(self.take(8)?.try_into().unwrap_or([0; 8]))
    }
    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.eight()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.eight()?))
    }
    fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(self.eight()?))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or([0; 4])))
    }
    /// A count of items of at least `min_size` bytes each, checked against what is left.
    fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_size) > self.bytes.len() - self.at {
            return Err(format!("state is truncated: {n} items at byte {}", self.at));
        }
        Ok(n)
    }
    fn regs(&mut self) -> Result<[u8; HLL_REGISTERS], String> {
        let mut regs = [0u8; HLL_REGISTERS];
        let n = self.take(1)?[0];
        if n == 255 {
            regs.copy_from_slice(self.take(HLL_REGISTERS)?);
        } else {
            for pair in self.take(2 * n as usize)?.chunks_exact(2) {
                regs[pair[0] as usize] = pair[1];
            }
        }
        Ok(regs)
    }
}

/// Per source (topic, partition): the newest event time seen, so the *watermark*
/// `newest - lateness`. An event below its partition's watermark is late, whichever
/// entity it belongs to.
#[derive(Debug, Clone, Default)]
pub struct PartitionWatermarks {
    lateness_ms: i64,
    /// Newest event time by topic, then partition: looked up by `&str`, so an event
    /// allocates nothing (a topic is cloned once, when first seen).
    newest: foldhash::HashMap<String, foldhash::HashMap<i32, i64>>,
}

impl PartitionWatermarks {
    pub fn new(lateness_ms: i64) -> Self {
        PartitionWatermarks { lateness_ms, newest: Default::default() }
    }

    /// The watermark of `pos`'s partition, if an event was seen on it.
    pub fn watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.newest.get(topic)?.get(&partition).map(|t| t.saturating_sub(self.lateness_ms))
    }

    /// Raises a partition's watermark to at least `watermark` (a persisted one).
    pub fn raise(&mut self, topic: &str, partition: i32, watermark: i64) {
        let t = watermark.saturating_add(self.lateness_ms);
        let e = self.partition(topic).entry(partition).or_insert(t);
        *e = (*e).max(t);
    }

    /// For each observation in batch order, its partition's watermark before it (the
    /// floor it is late below), advancing the watermarks over the batch.
    pub fn floors(&mut self, batch: &[Observation]) -> Vec<Option<i64>> {
        let lateness_ms = self.lateness_ms;
        let mut floors = Vec::with_capacity(batch.len());
        // A batch is runs of one topic (usually one run): its partitions are found once per run.
        for run in batch.chunk_by(|a, b| a.position.topic == b.position.topic) {
            let partitions = self.partition(&run[0].position.topic);
            for o in run {
                floors.push(match partitions.entry(o.position.partition) {
                    std::collections::hash_map::Entry::Occupied(mut e) => {
                        let floor = e.get().saturating_sub(lateness_ms);
                        *e.get_mut() = (*e.get()).max(o.event_time_ms);
                        Some(floor)
                    }
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(o.event_time_ms);
                        None
                    }
                });
            }
        }
        floors
    }

    /// The partitions of `topic`, created on first sight.
    fn partition(&mut self, topic: &str) -> &mut foldhash::HashMap<i32, i64> {
        if !self.newest.contains_key(topic) {
            return self.newest.entry(topic.to_string()).or_default();
        }
        self.newest.get_mut(topic).unwrap_or_else(|| unreachable!("checked just above"))
    }

    /// The watermarks of the partitions in `batch` (after it): (topic, partition, watermark).
    pub fn of_batch(&self, batch: &[Observation]) -> Vec<(String, i32, i64)> {
        let mut seen: Vec<(String, i32, i64)> = Vec::new();
        for o in batch {
            let p = &o.position;
            if !seen.iter().any(|(t, q, _)| *q == p.partition && *t == p.topic)
                && let Some(w) = self.watermark(&p.topic, p.partition)
            {
                seen.push((p.topic.clone(), p.partition, w));
            }
        }
        seen
    }
}

/// The entity kinds a store aggregates, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    pub entities: Vec<EntityDef>,
    pub lateness_ms: i64,
}

impl EngineSpec {
    pub fn new(entities: Vec<EntityDef>, lateness_ms: i64) -> Self {
        EngineSpec { entities, lateness_ms }
    }

    /// The definition of `kind`, or a protocol error naming it.
    pub fn def(&self, kind: &str) -> Result<&EntityDef, StoreError> {
        Ok(&self.entities[self.index(kind)?])
    }

    /// The position of `kind`'s definition in `entities`.
    pub fn index(&self, kind: &str) -> Result<usize, StoreError> {
        self.entities
            .iter()
            .position(|e| e.kind == kind)
            .ok_or_else(|| StoreError::Protocol(format!("no feature definition for entity kind {kind:?}")))
    }

    /// The longest horizon of any kind.
    pub fn horizon_ms(&self) -> i64 {
        self.entities.iter().map(EntityDef::horizon_ms).max().unwrap_or(0)
    }
}

/// A position that no fence ever refuses (for previews).
pub fn preview_position() -> SourcePosition {
    SourcePosition { topic: String::new(), partition: -1, offset: i64::MAX }
}

#[cfg(test)]
mod tests;
