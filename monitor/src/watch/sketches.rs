//! The drift sketches once the reference is known: one per watched numeric feature, one
//! per attribute, one for the score, each binned against its reference and read per
//! window as PSI, KS, JS and Wasserstein-1 (numeric) or PSI and chi-square (categorical).

use std::collections::HashMap;

use weir_schemas::events::Score;

use crate::config::{MonitorConfig, Statistic};
use crate::drift::{CategoricalDrift, CategoricalReference, NumericDrift, NumericReference, Observed, WindowSpec};
use crate::error::Result;
use crate::subjects::SCORE_SUBJECT;

use super::check::{Check, Rules, Sheet};
use super::profile::ReferenceProfile;
use super::quality::ValueCounts;

pub(super) struct Sketches {
    /// Watched numeric features, in the order of `numeric`.
    names: Vec<String>,
    index: HashMap<String, usize>,
    numeric: Vec<NumericDrift>,
    attributes: Vec<(String, CategoricalDrift)>,
    score: Option<NumericDrift>,
    /// Per numeric feature, whether the score being observed carried it.
    seen: Vec<bool>,
}

/// One window being read: the pane it ends with, and whether it holds enough scores to
/// be judged at all.
struct WindowRead<'a> {
    end: Option<u64>,
    enough: bool,
    cfg: &'a MonitorConfig,
    rules: &'a Rules,
}

impl WindowRead<'_> {
    /// `value`, if the window is judged and `n_current` of its scores carried the subject.
    fn judged(&self, n_current: u64, value: f64) -> Option<f64> {
        (self.enough && n_current >= self.cfg.min_window_events).then_some(value)
    }
}

impl Sketches {
    /// The sketches of `profile`'s features and attributes (restricted to `features` /
    /// `attributes` when those are configured) over `window`.
    pub fn build(profile: &ReferenceProfile, cfg: &MonitorConfig, window: WindowSpec) -> Result<Self> {
        let keep = |list: &[String], name: &str| list.is_empty() || list.iter().any(|n| n == name);
        let mut names = Vec::new();
        let mut numeric = Vec::new();
        for (name, sample) in &profile.numeric {
            if keep(&cfg.features, name) {
                numeric.push(NumericDrift::new(NumericReference::from_sample(sample, cfg.bins)?, window));
                names.push(name.clone());
            }
        }
        let mut attributes = Vec::new();
        for (name, counts) in &profile.categorical {
            if keep(&cfg.attributes, name) {
                let reference =
                    CategoricalReference::from_counts(counts.iter().map(|(k, v)| (k.as_str(), *v)), cfg.max_categories)?;
                attributes.push((name.clone(), CategoricalDrift::new(reference, window)));
            }
        }
        let score = if profile.score.iter().any(|x| x.is_finite()) {
            Some(NumericDrift::new(NumericReference::from_sample(&profile.score, cfg.bins)?, window))
        } else {
            None
        };
        let index = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        Ok(Sketches { seen: vec![false; names.len()], names, index, numeric, attributes, score })
    }

    /// Bins one score at event time `t`; `score_invalid` is 1 when its score is not a
    /// probability. Returns its value counts for data quality.
    pub fn observe(&mut self, t: u64, score: &Score, score_invalid: u64) -> ValueCounts {
        let (mut invalid, mut missing) = (score_invalid, 0u64);
        self.seen.fill(false);
        for (pos, f) in score.features.iter().enumerate() {
            // Scores usually carry the features in the reference's order: try that first.
            let i = match self.names.get(pos) {
                Some(n) if *n == f.name => pos,
                _ => match self.index.get(&f.name) {
                    Some(&i) => i,
                    None => continue,
                },
            };
            self.seen[i] = true;
            if self.numeric[i].observe(t, f.value) == Observed::Invalid {
                invalid += 1;
            }
        }
        missing += self.seen.iter().filter(|x| !**x).count() as u64;
        for (name, drift) in &mut self.attributes {
            match score.attributes.get(name.as_str()) {
                Some(v) => {
                    drift.observe(t, v);
                }
                None => missing += 1,
            }
        }
        if let Some(d) = &mut self.score {
            d.observe(t, score.value());
        }
        ValueCounts { expected: 1 + (self.names.len() + self.attributes.len()) as u64, invalid, missing }
    }

    /// Reads the window ending with pane `end` into `sheet`: the numeric features, then
    /// the score, then the attributes. `enough` says whether the window holds enough
    /// scores to be judged at all.
    pub fn read(&self, end: Option<u64>, enough: bool, cfg: &MonitorConfig, rules: &Rules, sheet: &mut Sheet) {
        let w = WindowRead { end, enough, cfg, rules };
        for (name, drift) in self.names.iter().zip(&self.numeric) {
            read_numeric(&w, name, drift, sheet);
        }
        if let Some(drift) = &self.score {
            read_numeric(&w, SCORE_SUBJECT, drift, sheet);
        }
        for (name, drift) in &self.attributes {
            read_categorical(&w, name, drift, sheet);
        }
    }
}

/// A numeric feature or the score: every statistic read, the configured one judged.
fn read_numeric(w: &WindowRead<'_>, name: &str, drift: &NumericDrift, sheet: &mut Sheet) {
    let r = drift.report_at(w.end);
    let threshold = w.cfg.numeric_threshold(name);
    sheet.read(name, "psi", r.psi);
    sheet.read(name, "ks", r.ks.value);
    sheet.read(name, "js", r.js);
    sheet.read(name, "wasserstein1", r.w1.value);
    let value = match threshold.statistic {
        Statistic::Psi => r.psi,
        Statistic::Ks => r.ks.value,
        Statistic::Js => r.js,
        Statistic::Wasserstein1 => r.w1.value,
    };
    sheet.check(Check::new(name, threshold.statistic.as_str(), w.judged(r.n_current, value), w.rules.threshold(threshold)));
}

/// A categorical attribute: every statistic read, PSI judged.
fn read_categorical(w: &WindowRead<'_>, name: &str, drift: &CategoricalDrift, sheet: &mut Sheet) {
    let r = drift.report_at(w.end);
    sheet.read(name, "psi", r.psi);
    sheet.read(name, "chi2", r.chi_square);
    sheet.read(name, "chi2_p", r.p_value);
    sheet.read(name, "other_share", r.other_share);
    let threshold = w.cfg.categorical_threshold(name);
    sheet.check(Check::new(name, "psi", w.judged(r.n_current, r.psi), w.rules.threshold(threshold)));
}
