//! Streaming drift of one categorical feature: reference counts per category plus an
//! "other" bucket, and a rolling window of counts over the same buckets.
//!
//! Buckets: the reference's categories (at most `max_categories`, the most frequent ones;
//! ties broken by name so the choice is deterministic), then one last bucket, "other",
//! which holds the reference's remaining categories and, in the current window, every
//! category the reference did not keep — including ones never seen before. A new category
//! therefore shows up as mass in "other", where the reference has little or none.
//!
//! Both statistics are exact on the bucket counts (nothing is sketched beyond the bucketing):
//! PSI with [`PSI_EPSILON`](super::exact::PSI_EPSILON) for empty buckets, and Pearson's
//! chi-square test of homogeneity on the 2 × buckets table with its p-value
//! ([`chi_square_homogeneity`](super::exact::chi_square_homogeneity)).
//!
//! Memory per feature: the category map plus `panes × buckets` counters.

use std::collections::HashMap;

use super::exact;
use super::numeric::Observed;
use super::window::{PaneClock, Placement, WindowSpec};
use crate::error::{MonitorError, Result, invalid};

/// Default cap on the categories a reference keeps apart from "other".
pub const DEFAULT_MAX_CATEGORIES: usize = 64;

/// Reference counts per category, with the "other" bucket last.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoricalReference {
    names: Vec<String>,
    index: HashMap<String, usize>,
    /// `names.len() + 1` counts; the last is "other".
    counts: Vec<f64>,
}

impl CategoricalReference {
    /// From `(category, count)` pairs (a category may repeat; its counts add up).
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>, max_categories: usize) -> Result<Self> {
        if max_categories == 0 {
            return Err(invalid("max_categories", max_categories, "must be at least 1"));
        }
        let mut merged: HashMap<&str, u64> = HashMap::new();
        let mut len = 0usize;
        for (name, c) in counts {
            *merged.entry(name).or_default() += c;
            len += 1;
        }
        let mut all: Vec<(&str, u64)> = merged.into_iter().filter(|(_, c)| *c > 0).collect();
        if all.is_empty() {
            return Err(MonitorError::EmptyReference { len });
        }
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let kept = all.len().min(max_categories);
        let names: Vec<String> = all[..kept].iter().map(|(n, _)| n.to_string()).collect();
        let mut counts: Vec<f64> = all[..kept].iter().map(|(_, c)| *c as f64).collect();
        counts.push(all[kept..].iter().map(|(_, c)| *c as f64).sum());
        let index = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        Ok(CategoricalReference { names, index, counts })
    }

    /// From a sample of category values.
    pub fn from_sample<'a>(sample: impl IntoIterator<Item = &'a str>, max_categories: usize) -> Result<Self> {
        CategoricalReference::from_counts(sample.into_iter().map(|s| (s, 1)), max_categories)
    }

    /// The kept categories, most frequent first; bucket `names().len()` is "other".
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The bucket of `category`: its own, or "other".
    #[inline]
    pub fn bucket(&self, category: &str) -> usize {
        self.index.get(category).copied().unwrap_or(self.names.len())
    }

    /// Reference counts per bucket, "other" last.
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }

    pub fn buckets(&self) -> usize {
        self.counts.len()
    }
}

/// The drift statistics of a categorical window against the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CategoricalReport {
    pub n_reference: u64,
    pub n_current: u64,
    pub psi: f64,
    pub chi_square: f64,
    pub dof: usize,
    pub p_value: f64,
    /// Share of the current window in "other" (categories the reference did not keep).
    pub other_share: f64,
    pub late: u64,
}

/// Drift of one categorical feature against its reference, over a rolling window.
#[derive(Debug, Clone)]
pub struct CategoricalDrift {
    reference: CategoricalReference,
    clock: PaneClock,
    buckets: usize,
    counts: Vec<u64>,
    late: u64,
}

impl CategoricalDrift {
    pub fn new(reference: CategoricalReference, window: WindowSpec) -> Self {
        let buckets = reference.buckets();
        CategoricalDrift {
            counts: vec![0; buckets * window.slots()],
            reference,
            clock: PaneClock::new(window),
            buckets,
            late: 0,
        }
    }

    pub fn reference(&self) -> &CategoricalReference {
        &self.reference
    }

    /// Counts `category` at event time `t`.
    #[inline]
    pub fn observe(&mut self, t: u64, category: &str) -> Observed {
        let bucket = self.reference.bucket(category);
        self.observe_bucket(t, bucket)
    }

    /// Counts an already resolved bucket (see [`CategoricalReference::bucket`]); buckets
    /// past the end count as "other".
    #[inline]
    pub fn observe_bucket(&mut self, t: u64, bucket: usize) -> Observed {
        let buckets = self.buckets;
        let counts = &mut self.counts;
        match self.clock.place(t, |slot| counts[slot * buckets..(slot + 1) * buckets].fill(0)) {
            Placement::Late => {
                self.late += 1;
                Observed::Late
            }
            Placement::Slot(slot) => {
                self.counts[slot * buckets + bucket.min(buckets - 1)] += 1;
                Observed::Counted
            }
        }
    }

    /// Moves the window's end to event time `t` without an event.
    pub fn advance_to(&mut self, t: u64) {
        let buckets = self.buckets;
        let counts = &mut self.counts;
        self.clock.advance(t, |slot| counts[slot * buckets..(slot + 1) * buckets].fill(0));
    }

    /// Empties the current window.
    pub fn reset(&mut self) {
        self.counts.fill(0);
        self.clock.reset();
    }

    /// The current window's counts per bucket, "other" last.
    pub fn current(&self) -> Vec<f64> {
        self.current_at(None)
    }

    /// The counts of the window ending with pane `end` (default: the newest pane).
    pub fn current_at(&self, end: Option<u64>) -> Vec<f64> {
        let mut c = vec![0.0; self.buckets];
        for slot in self.clock.window_slots(end) {
            let slot = &self.counts[slot * self.buckets..(slot + 1) * self.buckets];
            for (acc, &n) in c.iter_mut().zip(slot) {
                *acc += n as f64;
            }
        }
        c
    }

    pub fn report(&self) -> CategoricalReport {
        self.report_at(None)
    }

    /// [`report`](Self::report) of the window ending with pane `end`; default the newest.
    pub fn report_at(&self, end: Option<u64>) -> CategoricalReport {
        let cur = self.current_at(end);
        let r = &self.reference.counts;
        let n_cur: f64 = cur.iter().sum();
        let (chi_square, dof, p_value) = exact::chi_square_homogeneity(r, &cur);
        CategoricalReport {
            n_reference: r.iter().sum::<f64>() as u64,
            n_current: n_cur as u64,
            psi: exact::psi(r, &cur, exact::PSI_EPSILON),
            chi_square,
            dof,
            p_value,
            other_share: if n_cur > 0.0 { cur[self.buckets - 1] / n_cur } else { 0.0 },
            late: self.late,
        }
    }
}
