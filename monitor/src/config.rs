//! `[monitor]` in `weir.toml`: windows, reference, thresholds, hysteresis, fairness and
//! concept-drift settings of the streaming [`Monitor`](crate::watch::Monitor).
//!
//! Every field has a default, so an empty `[monitor]` section is a working monitor:
//! 10-minute windows sliding by one minute, the first 5 000 scores as the reference, PSI
//! alerts at 0.25 (the usual "significant shift" level) that must persist three windows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Settings of the streaming monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Length of one pane of the rolling windows, in seconds of event time. Statistics are
    /// evaluated each time a pane closes (the window slides by one pane). Default 60.
    #[serde(default = "d_pane_secs")]
    pub pane_secs: u64,
    /// Panes per window: a window covers `pane_secs × window_panes` seconds of event time.
    /// Default 10.
    #[serde(default = "d_window_panes")]
    pub window_panes: usize,
    /// Without a reference profile, the scores of the first `warmup_secs` seconds of event
    /// time (from the first score seen) are the reference. Scores of that span arriving
    /// out of order are still taken until the newest event time is one window past it —
    /// so a consumer reading partitions unevenly cannot mix later, drifted scores into
    /// the reference. Default 600.
    #[serde(default = "d_warmup_secs")]
    pub warmup_secs: u64,
    /// Most values kept per feature (and of the score) for the warm-up reference: a
    /// seeded uniform reservoir sample, so memory does not grow with the event rate.
    /// Category counts are exact. Default 10 000.
    #[serde(default = "d_reference_sample")]
    pub reference_sample: usize,
    /// Most scores past the warm-up span kept while the warm-up reference is not ready
    /// yet (a backlog read unevenly: one partition is read past the span while another is
    /// still in it); they are binned once the reference is ready. Beyond this many, they
    /// count only in data quality (`unbinned_before_reference`). Each holds a scored
    /// event (about 1 KB with 20 features). Default 20 000.
    #[serde(default = "d_warmup_buffer")]
    pub warmup_buffer: usize,
    /// A window holding fewer scores than this is not evaluated (its statistics would be
    /// noise). Default 500.
    #[serde(default = "d_min_window_events")]
    pub min_window_events: u64,
    /// Event-time watermarks: each partition of the scores topic has its own, its newest
    /// event time minus this many seconds (the disorder tolerated inside one partition).
    /// The monitor's watermark is the minimum over active partitions; a pane closes (its
    /// window is evaluated) once that passes the pane's end plus `allowed_lateness_secs`.
    /// Default 5.
    #[serde(default = "d_out_of_orderness_secs")]
    pub out_of_orderness_secs: u64,
    /// Seconds of event time a pane stays open after the monitor's watermark passes its
    /// end. A score behind the watermark by more than this (its pane closed) is late:
    /// counted in `late_rate` of the next window to close, not in the statistics.
    /// Default 0.
    #[serde(default)]
    pub allowed_lateness_secs: u64,
    /// A partition with no score for this many seconds of processing (wall-clock) time is
    /// idle and stops holding the watermark back until it delivers again; a partition
    /// assigned but not yet read holds it back this long at most. Revoked partitions
    /// stop at once. Default 30.
    #[serde(default = "d_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Most seconds of event time kept open ahead of the oldest open pane: when one
    /// partition runs this far ahead of the slowest, the oldest panes are closed anyway
    /// (counted in `forced_closes`) and the slow partition's scores for them count as
    /// late. Bounds memory at `window_panes + max_open_secs / pane_secs` panes per
    /// sketch. Default 1800.
    #[serde(default = "d_max_open_secs")]
    pub max_open_secs: u64,
    /// Reference-quantile bins per numeric feature (PSI and JS are computed on them).
    /// Default 10.
    #[serde(default = "d_bins")]
    pub bins: usize,
    /// Categories of an attribute kept apart from "other" in its reference. Default 64.
    #[serde(default = "d_max_categories")]
    pub max_categories: usize,
    /// Numeric features to watch, by name. Default: empty, meaning every feature of the
    /// scored vector.
    #[serde(default)]
    pub features: Vec<String>,
    /// Categorical attributes of the scores to watch (`customer_segment`, `country`, ...).
    /// Default: empty, meaning every attribute present on the first scores.
    #[serde(default)]
    pub attributes: Vec<String>,
    /// Consecutive breaching evaluations before an alert fires. Default 3.
    #[serde(default = "d_persist")]
    pub persist_windows: u32,
    /// Consecutive evaluations at or below the clear level before a firing alert clears.
    /// Default 3.
    #[serde(default = "d_persist")]
    pub clear_windows: u32,
    /// Threshold of every numeric feature without an override. Default PSI 0.25, critical 0.5.
    #[serde(default = "d_numeric")]
    pub numeric: Threshold,
    /// Threshold of every categorical attribute without an override (PSI only). Default
    /// PSI 0.25, critical 0.5.
    #[serde(default = "d_numeric")]
    pub categorical: Threshold,
    /// Threshold of the score (prediction) distribution. Default PSI 0.2, critical 0.4.
    #[serde(default = "d_score")]
    pub score: Threshold,
    /// Per-subject overrides, keyed by feature name, attribute name or `score`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Threshold>,
    /// Data-quality rates.
    #[serde(default)]
    pub quality: QualityConfig,
    /// Fairness by group.
    #[serde(default)]
    pub fairness: FairnessConfig,
    /// Concept drift on the error rate and label rate, once labels arrive.
    #[serde(default)]
    pub concept: ConceptConfig,
}

/// Which statistic a threshold applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    /// Population stability index on the reference bins (numeric and categorical).
    Psi,
    /// Two-sample Kolmogorov–Smirnov statistic (numeric; the sketch's lower bound).
    Ks,
    /// Jensen–Shannon distance, base 2, on the reference bins (numeric).
    Js,
    /// Wasserstein-1 distance, in the feature's own unit (numeric).
    Wasserstein1,
}

impl Statistic {
    pub fn as_str(self) -> &'static str {
        match self {
            Statistic::Psi => "psi",
            Statistic::Ks => "ks",
            Statistic::Js => "js",
            Statistic::Wasserstein1 => "wasserstein1",
        }
    }
}

/// When a statistic breaches, and when it has recovered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// The statistic watched. Default `psi`.
    #[serde(default = "d_statistic")]
    pub statistic: Statistic,
    /// A value above this breaches (severity `warning`).
    pub warning: f64,
    /// A value at or above this makes the alert `critical`. Default: none.
    #[serde(default)]
    pub critical: Option<f64>,
    /// A firing alert recovers at or below this level. Default 0.8 × `warning`, so a value
    /// hovering at the threshold does not flap.
    #[serde(default)]
    pub clear: Option<f64>,
}

impl Threshold {
    pub fn psi(warning: f64, critical: f64) -> Self {
        Threshold { statistic: Statistic::Psi, warning, critical: Some(critical), clear: None }
    }

    pub fn clear_level(&self) -> f64 {
        self.clear.unwrap_or(0.8 * self.warning)
    }

    fn problems(&self, at: &str, p: &mut Vec<String>) {
        if !(self.warning.is_finite() && self.warning > 0.0) {
            p.push(format!("{at}.warning {} must be a positive number", self.warning));
        }
        if let Some(c) = self.critical
            && !(c.is_finite() && c >= self.warning)
        {
            p.push(format!("{at}.critical {c} must be at least warning {}", self.warning));
        }
        if let Some(c) = self.clear
            && !(c.is_finite() && c >= 0.0 && c <= self.warning)
        {
            p.push(format!("{at}.clear {c} must be in [0, warning {}]", self.warning));
        }
    }
}

/// Alert levels for the share of bad values in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityConfig {
    /// Share of feature values that are NaN/infinite (and scores outside [0, 1]) above
    /// which `data_quality/invalid_rate` breaches. Default 0.01.
    #[serde(default = "d_rate_1pc")]
    pub max_invalid_rate: f64,
    /// Share of expected values (reference features and attributes) missing from scores.
    /// Default 0.01.
    #[serde(default = "d_rate_1pc")]
    pub max_missing_rate: f64,
    /// Share of scores that arrive after their pane closed (behind the monitor's watermark
    /// by more than `allowed_lateness_secs`). Default 0.05.
    #[serde(default = "d_rate_5pc")]
    pub max_late_rate: f64,
}

/// Fairness by group of one attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairnessConfig {
    /// The attribute whose values are the groups. Default `customer_segment`; `""` turns
    /// fairness monitoring off.
    #[serde(default = "d_fair_attr")]
    pub attribute: String,
    /// Largest tolerated gap between groups' decision rates (share of scores not
    /// `approve`). Default 0.1.
    #[serde(default = "d_gap_decision")]
    pub max_decision_rate_gap: f64,
    /// Largest tolerated gap between groups' true-positive rates (flagged share of the
    /// events labelled fraud). Default 0.2.
    #[serde(default = "d_gap_tpr")]
    pub max_tpr_gap: f64,
    /// A group enters the decision-rate gap with at least this many scores in the window.
    /// Default 200.
    #[serde(default = "d_min_group_events")]
    pub min_group_events: u64,
    /// A group enters the TPR gap with at least this many positive labels in the window.
    /// Default 20.
    #[serde(default = "d_min_group_positives")]
    pub min_group_positives: u64,
    /// Most groups tracked; later ones are ignored. Default 32.
    #[serde(default = "d_max_groups")]
    pub max_groups: usize,
}

/// Concept drift: detectors on per-label indicators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConceptConfig {
    /// ADWIN's confidence δ on the error indicator and on the label (fraud) indicator.
    /// Default 0.002 (River's default).
    #[serde(default = "d_adwin_delta")]
    pub adwin_delta: f64,
    /// Page–Hinkley's threshold λ on the error indicator. Default 50 (River's default).
    #[serde(default = "d_ph_threshold")]
    pub page_hinkley_threshold: f64,
    /// Scored events kept waiting for their label, oldest dropped first. Default 100 000.
    #[serde(default = "d_join_capacity")]
    pub label_join_capacity: usize,
}

fn d_pane_secs() -> u64 {
    60
}
fn d_window_panes() -> usize {
    10
}
fn d_warmup_secs() -> u64 {
    600
}
fn d_reference_sample() -> usize {
    10_000
}
fn d_min_window_events() -> u64 {
    500
}
fn d_warmup_buffer() -> usize {
    20_000
}
fn d_out_of_orderness_secs() -> u64 {
    5
}
fn d_idle_timeout_secs() -> u64 {
    30
}
fn d_max_open_secs() -> u64 {
    1800
}
fn d_bins() -> usize {
    crate::drift::DEFAULT_BINS
}
fn d_max_categories() -> usize {
    crate::drift::DEFAULT_MAX_CATEGORIES
}
fn d_persist() -> u32 {
    3
}
fn d_statistic() -> Statistic {
    Statistic::Psi
}
fn d_numeric() -> Threshold {
    Threshold::psi(0.25, 0.5)
}
fn d_score() -> Threshold {
    Threshold::psi(0.2, 0.4)
}
fn d_rate_1pc() -> f64 {
    0.01
}
fn d_rate_5pc() -> f64 {
    0.05
}
fn d_fair_attr() -> String {
    "customer_segment".into()
}
fn d_gap_decision() -> f64 {
    0.1
}
fn d_gap_tpr() -> f64 {
    0.2
}
fn d_min_group_events() -> u64 {
    200
}
fn d_min_group_positives() -> u64 {
    20
}
fn d_max_groups() -> usize {
    32
}
fn d_adwin_delta() -> f64 {
    0.002
}
fn d_ph_threshold() -> f64 {
    50.0
}
fn d_join_capacity() -> usize {
    100_000
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            pane_secs: d_pane_secs(),
            window_panes: d_window_panes(),
            warmup_secs: d_warmup_secs(),
            reference_sample: d_reference_sample(),
            warmup_buffer: d_warmup_buffer(),
            min_window_events: d_min_window_events(),
            out_of_orderness_secs: d_out_of_orderness_secs(),
            allowed_lateness_secs: 0,
            idle_timeout_secs: d_idle_timeout_secs(),
            max_open_secs: d_max_open_secs(),
            bins: d_bins(),
            max_categories: d_max_categories(),
            features: Vec::new(),
            attributes: Vec::new(),
            persist_windows: d_persist(),
            clear_windows: d_persist(),
            numeric: d_numeric(),
            categorical: d_numeric(),
            score: d_score(),
            thresholds: BTreeMap::new(),
            quality: QualityConfig::default(),
            fairness: FairnessConfig::default(),
            concept: ConceptConfig::default(),
        }
    }
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig { max_invalid_rate: d_rate_1pc(), max_missing_rate: d_rate_1pc(), max_late_rate: d_rate_5pc() }
    }
}

impl Default for FairnessConfig {
    fn default() -> Self {
        FairnessConfig {
            attribute: d_fair_attr(),
            max_decision_rate_gap: d_gap_decision(),
            max_tpr_gap: d_gap_tpr(),
            min_group_events: d_min_group_events(),
            min_group_positives: d_min_group_positives(),
            max_groups: d_max_groups(),
        }
    }
}

impl Default for ConceptConfig {
    fn default() -> Self {
        ConceptConfig {
            adwin_delta: d_adwin_delta(),
            page_hinkley_threshold: d_ph_threshold(),
            label_join_capacity: d_join_capacity(),
        }
    }
}

impl MonitorConfig {
    /// The threshold of a numeric feature (`score` included).
    pub fn numeric_threshold(&self, subject: &str) -> &Threshold {
        self.thresholds.get(subject).unwrap_or(if subject == crate::subjects::SCORE_SUBJECT { &self.score } else { &self.numeric })
    }

    pub fn categorical_threshold(&self, attribute: &str) -> &Threshold {
        self.thresholds.get(attribute).unwrap_or(&self.categorical)
    }

    /// Every problem, each naming the field (under `monitor.`) and the bad value.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.pane_secs == 0 {
            p.push("monitor.pane_secs must be at least 1".into());
        }
        if self.window_panes == 0 || self.window_panes > 10_000 {
            p.push(format!("monitor.window_panes {} must be in 1..=10000", self.window_panes));
        }
        if self.idle_timeout_secs == 0 {
            p.push("monitor.idle_timeout_secs must be at least 1".into());
        }
        if self.pane_secs > 0 && (self.max_open_secs < self.pane_secs || self.max_open_secs / self.pane_secs > 100_000) {
            p.push(format!(
                "monitor.max_open_secs {} must be between pane_secs ({}) and 100000 panes",
                self.max_open_secs, self.pane_secs
            ));
        }
        if self.warmup_secs == 0 {
            p.push("monitor.warmup_secs must be at least 1".into());
        }
        if self.reference_sample < self.bins {
            p.push(format!("monitor.reference_sample {} must be at least bins ({})", self.reference_sample, self.bins));
        }
        if self.bins < 2 || self.bins > 1_000 {
            p.push(format!("monitor.bins {} must be in 2..=1000", self.bins));
        }
        if self.max_categories == 0 {
            p.push("monitor.max_categories must be at least 1".into());
        }
        if self.persist_windows == 0 {
            p.push("monitor.persist_windows must be at least 1".into());
        }
        if self.clear_windows == 0 {
            p.push("monitor.clear_windows must be at least 1".into());
        }
        self.numeric.problems("monitor.numeric", &mut p);
        self.categorical.problems("monitor.categorical", &mut p);
        if self.categorical.statistic != Statistic::Psi {
            p.push(format!("monitor.categorical.statistic {:?} must be psi", self.categorical.statistic.as_str()));
        }
        self.score.problems("monitor.score", &mut p);
        for (name, t) in &self.thresholds {
            t.problems(&format!("monitor.thresholds.{name}"), &mut p);
        }
        for (name, v) in [
            ("quality.max_invalid_rate", self.quality.max_invalid_rate),
            ("quality.max_missing_rate", self.quality.max_missing_rate),
            ("quality.max_late_rate", self.quality.max_late_rate),
            ("fairness.max_decision_rate_gap", self.fairness.max_decision_rate_gap),
            ("fairness.max_tpr_gap", self.fairness.max_tpr_gap),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                p.push(format!("monitor.{name} {v} must be in (0, 1]"));
            }
        }
        if self.fairness.max_groups < 2 {
            p.push(format!("monitor.fairness.max_groups {} must be at least 2", self.fairness.max_groups));
        }
        if !(self.concept.adwin_delta > 0.0 && self.concept.adwin_delta < 1.0) {
            p.push(format!("monitor.concept.adwin_delta {} must be in (0, 1)", self.concept.adwin_delta));
        }
        if !(self.concept.page_hinkley_threshold.is_finite() && self.concept.page_hinkley_threshold > 0.0) {
            p.push(format!("monitor.concept.page_hinkley_threshold {} must be positive", self.concept.page_hinkley_threshold));
        }
        if self.concept.label_join_capacity == 0 {
            p.push("monitor.concept.label_join_capacity must be at least 1".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_problem_is_reported() {
        assert!(MonitorConfig::default().problems().is_empty());
        let mut c = MonitorConfig { pane_secs: 0, bins: 1, persist_windows: 0, ..Default::default() };
        c.numeric.warning = -1.0;
        c.thresholds.insert("amount".into(), Threshold { clear: Some(9.0), ..Threshold::psi(0.2, 0.1) });
        c.fairness.max_tpr_gap = 2.0;
        let p = c.problems().join("\n");
        for needle in ["pane_secs", "bins 1", "persist_windows", "numeric.warning -1", "thresholds.amount.critical 0.1", "thresholds.amount.clear 9", "max_tpr_gap 2"] {
            assert!(p.contains(needle), "missing {needle:?} in\n{p}");
        }
    }
}
