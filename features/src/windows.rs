//! Sliding windows in event time: the aggregation engine shared by every store.
//!
//! All aggregation runs here, in Rust: the embedded store keeps [`EntityState`]s in a
//! map, the Redis store reads them (one compact binary blob per entity), applies the same
//! code and writes them back with a compare-and-set. So both stores give bit-identical
//! answers and states by construction.
//!
//! ## Files
//!
//! - `spec`: windows, aggregations, entity kinds ([`EntityDef`]) and [`EngineSpec`];
//!   `answers`: the layout of a window's values gathered in one pass (the fast path).
//! - `panes`: one window of one entity: its panes, running totals, caches, and sliding.
//! - `hll`: [`distinct_hash`] and HyperLogLog registers; `window_sketch`: a window's
//!   registers merged over its panes (two stacks).
//! - `distinct`: exact distinct counts: occurrences, the incremental index, the recount.
//! - `fifo`: the drop-from-the-front list that panes and occurrences live in.
//! - `state`: [`EntityState`]: apply, prune, switch modes, answer; `codec`: its encoding.
//! - `watermarks`: [`PartitionWatermarks`]; `fences`: replay fences' shared topic names
//!   and [`preview_position`].
//!
//! Dependencies point one way: `codec` -> `state` -> `panes`, `distinct` ->
//! `window_sketch`, `hll`, `fifo`, `spec` -> `answers`; `distinct` uses the crate's hash
//! table (`probe`), `state` its prefetch hint (`hint`).
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

mod answers;
mod codec;
mod distinct;
mod fences;
mod fifo;
mod hll;
mod panes;
mod spec;
mod state;
mod watermarks;
mod window_sketch;

pub use fences::preview_position;
pub use hll::{HLL_REGISTERS, distinct_hash, hll_estimate};
pub use spec::{AggKind, Aggregation, EngineSpec, EntityDef, WindowSpec};
pub use state::EntityState;
pub use watermarks::PartitionWatermarks;

#[cfg(test)]
mod tests;
