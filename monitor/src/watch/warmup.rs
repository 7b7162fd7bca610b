//! The reference collected from the first scores: a seeded reservoir sample of each
//! numeric feature and of the score, exact category counts of each attribute, over the
//! first `warmup_secs` of event time. See "Reference" in the [module docs](super).

use std::collections::BTreeMap;

use weir_schemas::events::Score;

use crate::config::MonitorConfig;

use super::profile::ReferenceProfile;
use super::quality::ValueCounts;

/// Seed of the reservoirs' generator: the same stream gives the same reference.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The reference being collected from the first scores.
#[derive(Default)]
pub(super) struct Warmup {
    profile: ReferenceProfile,
    /// Values offered to each feature's reservoir, by name.
    offered: BTreeMap<String, u64>,
    /// Values offered to the score's reservoir.
    score_offered: u64,
    rng: u64,
    /// Event time the warm-up span ends (exclusive), set by the first score.
    span_end: Option<u64>,
    /// Features and attributes watched: configured, or else those of the first score.
    features: Option<Vec<String>>,
    attributes: Option<Vec<String>>,
    /// Scores past the span read before the reference is ready (a partition read ahead),
    /// binned once it is; at most `warmup_buffer`.
    after_span: Vec<Score>,
}

impl Warmup {
    pub fn new() -> Self {
        Warmup { rng: SEED, ..Warmup::default() }
    }

    /// Whether `t` is past the span (known once the first score has come).
    pub fn past_span(&self, t: u64) -> bool {
        self.span_end.is_some_and(|end| t >= end)
    }

    /// Keeps a score past the span until the reference is ready; false if `cap` are
    /// kept already (it is then never binned).
    pub fn hold(&mut self, score: &Score, cap: usize) -> bool {
        if self.after_span.len() < cap {
            self.after_span.push(score.clone());
            true
        } else {
            false
        }
    }

    /// Whether the warm-up is over at `watermark`: it is a window (`window_len`) past the
    /// span, so the span's out-of-order scores have come and later ones never enter it.
    pub fn is_over(&self, watermark: Option<u64>, window_len: u64) -> bool {
        match (self.span_end, watermark) {
            (Some(span_end), Some(wm)) => wm >= span_end.saturating_add(window_len),
            _ => false,
        }
    }

    /// The collected profile and the scores held past the span, leaving them empty.
    pub fn take(&mut self) -> (ReferenceProfile, Vec<Score>) {
        (std::mem::take(&mut self.profile), std::mem::take(&mut self.after_span))
    }

    /// Offers one score at event time `t` to the reference (if it falls in the span);
    /// `score_invalid` is 1 when its score is not a probability. Returns its value counts
    /// for data quality.
    pub fn observe(&mut self, t: u64, score: &Score, score_invalid: u64, cfg: &MonitorConfig) -> ValueCounts {
        let span_end = *self.span_end.get_or_insert(t.saturating_add(cfg.warmup_secs * 1000));
        let features = self.features.get_or_insert_with(|| {
            if cfg.features.is_empty() {
                score.features.iter().map(|f| f.name.clone()).collect()
            } else {
                cfg.features.clone()
            }
        });
        let attributes = self.attributes.get_or_insert_with(|| {
            if cfg.attributes.is_empty() {
                score.attributes.keys().cloned().collect()
            } else {
                cfg.attributes.clone()
            }
        });
        let in_span = t < span_end;
        let (mut invalid, mut missing) = (score_invalid, 0u64);
        for name in features.iter() {
            match score.features.iter().find(|f| f.name == *name) {
                Some(f) if f.value.is_finite() => {
                    if in_span {
                        let offered = self.offered.entry(name.clone()).or_default();
                        *offered += 1;
                        let sample = self.profile.numeric.entry(name.clone()).or_default();
                        reservoir(sample, cfg.reference_sample, *offered, f.value, &mut self.rng);
                    }
                }
                Some(_) => invalid += 1,
                None => missing += 1,
            }
        }
        for name in attributes.iter() {
            match score.attributes.get(name) {
                Some(v) => {
                    if in_span {
                        let counts = self.profile.categorical.entry(name.clone()).or_default();
                        // Bounded: past 16× max_categories distinct values, new
                        // ones are not counted (they would land in "other" anyway).
                        if counts.len() < 16 * cfg.max_categories || counts.contains_key(v) {
                            *counts.entry(v.clone()).or_default() += 1;
                        }
                    }
                }
                None => missing += 1,
            }
        }
        if score_invalid == 0 && in_span {
            self.score_offered += 1;
            reservoir(&mut self.profile.score, cfg.reference_sample, self.score_offered, score.value(), &mut self.rng);
        }
        let expected = 1 + (features.len() + attributes.len()) as u64;
        ValueCounts { expected, invalid, missing }
    }
}

/// Algorithm R: `x` is the `offered`-th value (1-based) offered to `sample`.
fn reservoir(sample: &mut Vec<f64>, cap: usize, offered: u64, x: f64, rng: &mut u64) {
    if sample.len() < cap {
        sample.push(x);
    } else {
        // xorshift64*: deterministic, so the same stream gives the same reference.
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        let j = rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % offered;
        if (j as usize) < cap {
            sample[j as usize] = x;
        }
    }
}
