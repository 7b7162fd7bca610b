//! One window of one entity: its panes, running totals and caches, and how it slides.

use std::collections::VecDeque;

use smallvec::{SmallVec, smallvec};

use super::fifo::Fifo;
use super::hll::PaneRegs;
use super::spec::WindowSpec;
use super::window_sketch::WindowSketch;

/// `cur` before the first event: below any real pane.
pub(super) const EMPTY_PANE: i64 = i64::MIN / 4;

/// Per pane and numeric field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stat {
    pub(super) n: f64,
    pub(super) sum: f64,
    pub(super) min: f64,
    pub(super) max: f64,
}

pub(super) const EMPTY_STAT: Stat = Stat { n: 0.0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY };

/// A numeric field's totals over a window's current panes, and the cache of its extremes
/// there: one 32-byte record per field instead of a list of totals beside a list of
/// `Option`s (a quiet entity's event reads its whole state cold). "Extremes unknown" is a
/// NaN minimum: known extremes are never NaN (`f64::min` and `max` skip NaN, and the
/// minimum over no value is +inf), and a NaN event value can at worst make them unknown,
/// which is always safe: unknown extremes are recomputed from the panes.
#[derive(Debug, Clone, Copy)]
pub(super) struct FieldTotals {
    pub(super) n: f64,
    pub(super) sum: f64,
    pub(super) lo: f64,
    pub(super) hi: f64,
}

impl FieldTotals {
    /// No value, extremes known (there are none).
    pub(super) const EMPTY: FieldTotals = FieldTotals { n: 0.0, sum: 0.0, lo: f64::INFINITY, hi: f64::NEG_INFINITY };
    /// No value counted, extremes to be computed from the panes.
    pub(super) const UNKNOWN_EXTREMES: FieldTotals = FieldTotals { n: 0.0, sum: 0.0, lo: f64::NAN, hi: f64::NAN };

    /// (min, max) over the window, if known; (+inf, -inf) when it holds no value.
    pub(super) fn extremes(&self) -> Option<(f64, f64)> {
        (!self.lo.is_nan()).then_some((self.lo, self.hi))
    }

    pub(super) fn set_extremes(&mut self, extremes: Option<(f64, f64)>) {
        (self.lo, self.hi) = extremes.unwrap_or((f64::NAN, f64::NAN));
    }
}

/// One window of one entity.
#[derive(Debug, Clone)]
pub(super) struct Window {
    pub(super) cur: i64,
    pub(super) count: f64,
    /// Per numeric field: its totals over the current window, and its extremes cache.
    pub(super) num: SmallVec<[FieldTotals; 2]>,
    /// Non-empty panes, ascending: (index, count).
    pub(super) heads: Fifo<(i64, f64)>,
    /// `numeric` stats per pane, aligned with `heads`.
    pub(super) stats: Fifo<Stat>,
    /// `distinct` register sets per pane, aligned with `heads`; empty unless some distinct
    /// field is in sketch mode (fields in exact mode keep zeros).
    pub(super) regs: VecDeque<PaneRegs>,
    /// Cache: per distinct field in sketch mode, registers merged over the current window
    /// (`None` to build from the panes).
    /// Empty until some field is sketched (then one slot per distinct field), so that an
    /// exact-only entity carries none; a slot is updated in place, never reallocated.
    pub(super) sketch: Vec<Option<WindowSketch>>,
}

impl Window {
    pub(super) fn new(nf: usize) -> Self {
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
    pub(super) fn find(&self, q: i64) -> Result<usize, usize> {
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
    #[inline]
    pub(super) fn range(&self, lo: i64, hi: i64) -> std::ops::Range<usize> {
        if lo > hi {
            return 0..0;
        }
        let start = self.heads.partition_point(|h| h.0 < lo);
        let end = self.heads.partition_point(|h| h.0 <= hi);
        start..end.max(start)
    }
}

/// Window `wi`'s bit in a mask of windows; windows from the 64th on share the last bit.
pub(super) fn window_bit(wi: usize) -> u64 {
    1 << wi.min(63)
}

/// Moves window `w` forward to pane `p` (> cur): subtracts the panes that slide out of
/// the window, drops those that leave the ring.
#[inline]
pub(super) fn slide(w: &mut Window, spec: &WindowSpec, p: i64, nf: usize, nd: usize) {
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
