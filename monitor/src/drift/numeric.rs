//! Streaming drift of one numeric feature: a binned reference and a rolling binned current
//! window over the same edges.
//!
//! What is exact and what is a sketch:
//!
//! | statistic | streaming value | against the exact-on-sample value |
//! |---|---|---|
//! | PSI | on bin counts | exact: PSI is defined on the bins |
//! | Jensen–Shannon | on bin counts | exact: defined on the bins |
//! | KS | `max |ΔCDF|` at the bin edges (and inside bins where the two sides do not overlap) | a lower bound; the exact statistic is in `[value, value + max_error]` |
//! | Wasserstein-1 | each bin's mass at the bin's mean | within `value ± max_error` |
//!
//! The bounds are computed per report from the bins themselves, so they are tight when the
//! bins are fine and honest when they are not. KS: inside bin `i` the CDF difference moves
//! by at most the bin's reference mass `pᵢ` up or its current mass `qᵢ` down, so with `D` the
//! difference at the bin's left edge, `|ΔCDF| ≤ max(|D + pᵢ|, |D − qᵢ|)` there. W1: moving a
//! bin's mass to its mean costs at most `2(μ − lo)(hi − μ)/(hi − lo)` per unit of mass (the
//! largest mean absolute deviation of a distribution on `[lo, hi]` with mean `μ`), where
//! `lo`/`hi` are the smallest and largest values seen in that bin; by the triangle
//! inequality the binned W1 is off by at most the sum of those costs on both sides.
//!
//! Memory per feature: the reference's `bins` × 4 numbers and, for the current window,
//! `panes × bins` × (count, sum, min, max) — 32 bytes each — whatever the window's length.

use super::exact;
use super::window::{PaneClock, Placement, WindowSpec};
use crate::error::{MonitorError, Result, invalid};

/// Default number of reference-quantile bins.
pub const DEFAULT_BINS: usize = 10;

/// An estimate from a sketch and a bound on its error: the exact value lies in
/// `[value - max_error, value + max_error]` (for KS, in `[value, value + max_error]`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    pub value: f64,
    pub max_error: f64,
}

/// Per-bin count, sum, min and max of a set of values.
#[derive(Debug, Clone, PartialEq)]
pub struct BinStats {
    pub counts: Vec<f64>,
    pub sums: Vec<f64>,
    pub mins: Vec<f64>,
    pub maxs: Vec<f64>,
}

impl BinStats {
    fn empty(bins: usize) -> Self {
        BinStats {
            counts: vec![0.0; bins],
            sums: vec![0.0; bins],
            mins: vec![f64::INFINITY; bins],
            maxs: vec![f64::NEG_INFINITY; bins],
        }
    }

    /// Stats of `sample` over `edges` (non-finite values skipped).
    pub fn of_sample(edges: &[f64], sample: &[f64]) -> Self {
        let mut s = BinStats::empty(edges.len() + 1);
        for &x in sample.iter().filter(|x| x.is_finite()) {
            let b = exact::bin_index(edges, x);
            s.counts[b] += 1.0;
            s.sums[b] += x;
            s.mins[b] = s.mins[b].min(x);
            s.maxs[b] = s.maxs[b].max(x);
        }
        s
    }

    pub fn total(&self) -> f64 {
        self.counts.iter().sum()
    }

    /// Each non-empty bin as (mean, count).
    fn point_masses(&self) -> Vec<(f64, f64)> {
        (0..self.counts.len()).filter(|&i| self.counts[i] > 0.0).map(|i| (self.mean(i), self.counts[i])).collect()
    }

    fn mean(&self, i: usize) -> f64 {
        // The mean of values in [lo, hi] lies there; clamp away the rounding of the sum.
        (self.sums[i] / self.counts[i]).clamp(self.mins[i], self.maxs[i])
    }

    /// Σ over bins of (mass share) × (largest mean absolute deviation around the bin mean).
    fn w1_collapse_bound(&self) -> f64 {
        let total = self.total();
        if total <= 0.0 {
            return 0.0;
        }
        (0..self.counts.len())
            .filter(|&i| self.counts[i] > 0.0 && self.maxs[i] > self.mins[i])
            .map(|i| {
                let (lo, hi, mu) = (self.mins[i], self.maxs[i], self.mean(i));
                self.counts[i] / total * 2.0 * (mu - lo) * (hi - mu) / (hi - lo)
            })
            .sum()
    }
}

/// KS between two binned distributions: `max |ΔCDF|` at the edges, raised where a bin's
/// values on one side all lie below the other side's (then the excursion inside the bin is
/// attained), with the bound of the module docs.
pub fn binned_ks(p: &BinStats, q: &BinStats) -> Estimate {
    let (np, nq) = (p.total(), q.total());
    if np <= 0.0 || nq <= 0.0 {
        return Estimate::default();
    }
    let (mut cp, mut cq) = (0.0, 0.0);
    let (mut lower, mut upper): (f64, f64) = (0.0, 0.0);
    for i in 0..p.counts.len() {
        let (pi, qi) = (p.counts[i] / np, q.counts[i] / nq);
        let d = cp - cq;
        let (up, down) = ((d + pi).abs(), (d - qi).abs());
        let one_point = p.mins[i] == p.maxs[i] && q.mins[i] == q.maxs[i] && p.mins[i] == q.mins[i];
        if pi > 0.0 && qi > 0.0 && one_point {
            // both sides hold a single value here: both CDFs jump together, no excursion
        } else {
            upper = upper.max(up).max(down);
        }
        if pi > 0.0 && qi > 0.0 {
            if p.maxs[i] < q.mins[i] {
                // all of P's mass in the bin comes first: ΔCDF reaches d + pᵢ
                lower = lower.max(up);
            } else if q.maxs[i] < p.mins[i] {
                lower = lower.max(down);
            }
        }
        cp += pi;
        cq += qi;
        lower = lower.max((cp - cq).abs());
        upper = upper.max((cp - cq).abs());
    }
    // Rounding of the cumulative sums may leave a residue past 1.
    let lower = lower.min(1.0);
    Estimate { value: lower, max_error: (upper.min(1.0) - lower).max(0.0) }
}

/// Wasserstein-1 between two binned distributions, each bin's mass at its mean, with the
/// bound of the module docs.
pub fn binned_w1(p: &BinStats, q: &BinStats) -> Estimate {
    if p.total() <= 0.0 || q.total() <= 0.0 {
        return Estimate::default();
    }
    Estimate {
        value: exact::wasserstein1_weighted(&p.point_masses(), &q.point_masses()),
        max_error: p.w1_collapse_bound() + q.w1_collapse_bound(),
    }
}

/// The reference distribution of one numeric feature, binned at its own quantiles.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericReference {
    edges: Vec<f64>,
    stats: BinStats,
}

impl NumericReference {
    /// Bins `sample` at its `bins` quantiles (see [`exact::quantile_edges`] for ties).
    /// Non-finite values are ignored; at least one finite value is needed.
    pub fn from_sample(sample: &[f64], bins: usize) -> Result<Self> {
        if bins < 2 {
            return Err(invalid("bins", bins, "must be at least 2"));
        }
        let mut sorted: Vec<f64> = sample.iter().copied().filter(|x| x.is_finite()).collect();
        if sorted.is_empty() {
            return Err(MonitorError::EmptyReference { len: sample.len() });
        }
        sorted.sort_by(f64::total_cmp);
        let edges = exact::quantile_edges_sorted(&sorted, bins);
        let stats = BinStats::of_sample(&edges, &sorted);
        Ok(NumericReference { edges, stats })
    }

    /// The strictly increasing interior edges; there are `edges().len() + 1` bins.
    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    pub fn stats(&self) -> &BinStats {
        &self.stats
    }

    pub fn bins(&self) -> usize {
        self.edges.len() + 1
    }
}

/// What happened to an observed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Counted,
    /// Older than the window.
    Late,
    /// NaN or infinite.
    Invalid,
}

/// Drift of one numeric feature against its reference, over a rolling window.
#[derive(Debug, Clone)]
pub struct NumericDrift {
    reference: NumericReference,
    clock: PaneClock,
    bins: usize,
    // slot-major: index = slot * bins + bin
    counts: Vec<u64>,
    sums: Vec<f64>,
    mins: Vec<f64>,
    maxs: Vec<f64>,
    late: u64,
    invalid: u64,
    epsilon: f64,
}

/// The drift statistics of a window against the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericReport {
    pub n_reference: u64,
    pub n_current: u64,
    pub psi: f64,
    pub js: f64,
    pub ks: Estimate,
    pub w1: Estimate,
    /// Events refused since creation: older than the window, and non-finite.
    pub late: u64,
    pub invalid: u64,
}

impl NumericDrift {
    pub fn new(reference: NumericReference, window: WindowSpec) -> Self {
        let bins = reference.bins();
        let cells = bins * window.slots();
        NumericDrift {
            reference,
            clock: PaneClock::new(window),
            bins,
            counts: vec![0; cells],
            sums: vec![0.0; cells],
            mins: vec![f64::INFINITY; cells],
            maxs: vec![f64::NEG_INFINITY; cells],
            late: 0,
            invalid: 0,
            epsilon: exact::PSI_EPSILON,
        }
    }

    pub fn reference(&self) -> &NumericReference {
        &self.reference
    }

    /// Counts `x` at event time `t`.
    #[inline]
    pub fn observe(&mut self, t: u64, x: f64) -> Observed {
        if !x.is_finite() {
            self.invalid += 1;
            return Observed::Invalid;
        }
        let bins = self.bins;
        let (counts, sums, mins, maxs) = (&mut self.counts, &mut self.sums, &mut self.mins, &mut self.maxs);
        let placement = self.clock.place(t, |slot| {
            let r = slot * bins..(slot + 1) * bins;
            counts[r.clone()].fill(0);
            sums[r.clone()].fill(0.0);
            mins[r.clone()].fill(f64::INFINITY);
            maxs[r].fill(f64::NEG_INFINITY);
        });
        match placement {
            Placement::Late => {
                self.late += 1;
                Observed::Late
            }
            Placement::Slot(slot) => {
                let i = slot * bins + exact::bin_index(&self.reference.edges, x);
                self.counts[i] += 1;
                self.sums[i] += x;
                if x < self.mins[i] {
                    self.mins[i] = x;
                }
                if x > self.maxs[i] {
                    self.maxs[i] = x;
                }
                Observed::Counted
            }
        }
    }

    /// Moves the window's end to event time `t` without an event (e.g. on a quiet stream).
    pub fn advance_to(&mut self, t: u64) {
        let bins = self.bins;
        let (counts, sums, mins, maxs) = (&mut self.counts, &mut self.sums, &mut self.mins, &mut self.maxs);
        self.clock.advance(t, |slot| {
            let r = slot * bins..(slot + 1) * bins;
            counts[r.clone()].fill(0);
            sums[r.clone()].fill(0.0);
            mins[r.clone()].fill(f64::INFINITY);
            maxs[r].fill(f64::NEG_INFINITY);
        });
    }

    /// Empties the current window (the reference and the refused counts stay).
    pub fn reset(&mut self) {
        self.counts.fill(0);
        self.sums.fill(0.0);
        self.mins.fill(f64::INFINITY);
        self.maxs.fill(f64::NEG_INFINITY);
        self.clock.reset();
    }

    /// The current window's per-bin stats (summed over its panes).
    pub fn current(&self) -> BinStats {
        self.current_at(None)
    }

    /// The per-bin stats of the window ending with pane `end` (default: the newest pane).
    pub fn current_at(&self, end: Option<u64>) -> BinStats {
        let mut s = BinStats::empty(self.bins);
        for slot in self.clock.window_slots(end) {
            for b in 0..self.bins {
                let i = slot * self.bins + b;
                s.counts[b] += self.counts[i] as f64;
                s.sums[b] += self.sums[i];
                s.mins[b] = s.mins[b].min(self.mins[i]);
                s.maxs[b] = s.maxs[b].max(self.maxs[i]);
            }
        }
        s
    }

    /// All statistics of the current window against the reference. Costs
    /// O(panes × bins + bins·log bins); meant to be called per report, not per event.
    pub fn report(&self) -> NumericReport {
        self.report_at(None)
    }

    /// [`report`](Self::report) of the window ending with pane `end` (event time / pane
    /// length), with panes after it still open; default the newest pane.
    pub fn report_at(&self, end: Option<u64>) -> NumericReport {
        let cur = self.current_at(end);
        let r = &self.reference.stats;
        NumericReport {
            n_reference: r.total() as u64,
            n_current: cur.total() as u64,
            psi: exact::psi(&r.counts, &cur.counts, self.epsilon),
            js: exact::js_distance(&r.counts, &cur.counts),
            ks: binned_ks(r, &cur),
            w1: binned_w1(r, &cur),
            late: self.late,
            invalid: self.invalid,
        }
    }
}
