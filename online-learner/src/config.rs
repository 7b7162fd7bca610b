//! `[learner]` in `weir.toml`: join bounds, FTRL hyperparameters, evaluation windows,
//! promotion guard rails. Every field has a default; unknown fields are refused.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnerConfig {
    /// Name of this learner: its checkpoint keys in Redis (`<key_prefix>:learner:<name>:*`)
    /// and the model family it publishes under. Default `fraud-ftrl`.
    #[serde(default = "default_name")]
    pub name: String,
    /// Kafka consumer group of the learner (its own, so it never slows scoring).
    /// Default `weir-learner`.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Prefix of the learner's Redis keys. Default `weir`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Time to live of the learner's lease in Redis, in ms: one process per learner name
    /// holds it (renewed every third of it while running); another one with the same
    /// name waits until it is released or expires. A holder that loses it can no longer
    /// write the checkpoint (fencing token). Default 10000, at least 1000.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    #[serde(default)]
    pub join: JoinConfig,
    #[serde(default)]
    pub ftrl: FtrlConfig,
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    #[serde(default)]
    pub promotion: PromotionConfig,
}

/// The delayed-label join. Times are event time (the `event_time` of scores and labels),
/// so the bounds are the same whether the stream is live or replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinConfig {
    /// How long a score waits for its label, in seconds of event time behind the newest
    /// score seen; older ones are evicted (`weir_learner_scores_expired_total`). Default 86400.
    #[serde(default = "default_max_label_wait_secs")]
    pub max_label_wait_secs: u64,
    /// Most scores held waiting for labels; beyond it the oldest are evicted
    /// (`weir_learner_scores_evicted_total`). Default 200000.
    #[serde(default = "default_max_pending_scores")]
    pub max_pending_scores: usize,
    /// How long a label that came before its score waits for it, in seconds of event time
    /// behind the newest score seen (`weir_learner_labels_unmatched_total`). Default 600.
    #[serde(default = "default_max_score_wait_secs")]
    pub max_score_wait_secs: u64,
    /// Most labels held waiting for their score; beyond it the oldest are dropped
    /// (`weir_learner_labels_evicted_total`). Default 50000.
    #[serde(default = "default_max_pending_labels")]
    pub max_pending_labels: usize,
}

/// FTRL-Proximal (`linfa-ftrl`) on standardized features plus a constant bias column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FtrlConfig {
    /// Learning rate α. Default 0.1.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Learning-rate smoothing β. Default 1.0.
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// L1 regularization λ1, in [0, 1] (linfa-ftrl's `l1_ratio`). Default 0.0.
    #[serde(default)]
    pub l1: f64,
    /// L2 regularization λ2, in [0, 1] (linfa-ftrl's `l2_ratio`). Default 1.0.
    #[serde(default = "default_l2")]
    pub l2: f64,
    /// Seed of linfa's random initial `z` state: same seed and labels → same model.
    /// Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Rolling windows, in labels, over which champion and challenger are evaluated
    /// prequentially. Default `[1000, 5000]`.
    #[serde(default = "default_windows")]
    pub windows: Vec<usize>,
    /// Score at or above which an event counts as flagged, for precision and recall.
    /// Default 0.5 (the scorer's review threshold).
    #[serde(default = "default_threshold")]
    pub decision_threshold: f64,
    /// Equal-width bins of the expected calibration error. Default 10.
    #[serde(default = "default_ece_bins")]
    pub calibration_bins: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionConfig {
    /// Whether the learner publishes and promotes models at all. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// Model registry root (`<root>/<model>/versions/<v>/`). Default: the scorer's
    /// `scorer.registry`; one of the two is required when enabled.
    #[serde(default)]
    pub registry_dir: Option<std::path::PathBuf>,
    /// Registry model name the scorer serves (its champion is the one compared against).
    /// Default `fraud`.
    #[serde(default = "default_model")]
    pub model: String,
    /// Labels learned in all before any promotion. Default 2000.
    #[serde(default = "default_min_labels")]
    pub min_labels: u64,
    /// The comparison covers the last this many labels scored by the current champion.
    /// Default 2000.
    #[serde(default = "default_compare_labels")]
    pub compare_labels: usize,
    /// `auc` or `log_loss`: what the challenger must beat the champion on. Default `auc`.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// By how much (AUC points, or nats of log loss). Default 0.02.
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// Most promotions in any sliding hour of wall-clock time. Default 2.
    #[serde(default = "default_max_per_hour")]
    pub max_per_hour: usize,
    /// After a promotion, labels scored by the new model before its live metric is
    /// compared with its predecessor's; if worse by more than `rollback_margin`, the
    /// registry is rolled back. Default 1000.
    #[serde(default = "default_rollback_labels")]
    pub rollback_labels: usize,
    /// Default 0.02.
    #[serde(default = "default_margin")]
    pub rollback_margin: f64,
}

fn default_name() -> String {
    "fraud-ftrl".into()
}
fn default_group_id() -> String {
    "weir-learner".into()
}
fn default_key_prefix() -> String {
    "weir".into()
}
fn default_max_label_wait_secs() -> u64 {
    86_400
}
fn default_max_pending_scores() -> usize {
    200_000
}
fn default_max_score_wait_secs() -> u64 {
    600
}
fn default_max_pending_labels() -> usize {
    50_000
}
fn default_alpha() -> f64 {
    0.1
}
fn default_beta() -> f64 {
    1.0
}
fn default_l2() -> f64 {
    1.0
}
fn default_seed() -> u64 {
    42
}
fn default_windows() -> Vec<usize> {
    vec![1000, 5000]
}
fn default_threshold() -> f64 {
    0.5
}
fn default_ece_bins() -> usize {
    10
}
fn default_model() -> String {
    "fraud".into()
}
fn default_min_labels() -> u64 {
    2000
}
fn default_compare_labels() -> usize {
    2000
}
fn default_metric() -> String {
    "auc".into()
}
fn default_margin() -> f64 {
    0.02
}
fn default_max_per_hour() -> usize {
    2
}
fn default_lease_ms() -> u64 {
    10_000
}
fn default_rollback_labels() -> usize {
    1000
}

impl Default for LearnerConfig {
    fn default() -> Self {
        LearnerConfig {
            name: default_name(),
            group_id: default_group_id(),
            key_prefix: default_key_prefix(),
            lease_ms: default_lease_ms(),
            join: JoinConfig::default(),
            ftrl: FtrlConfig::default(),
            evaluation: EvaluationConfig::default(),
            promotion: PromotionConfig::default(),
        }
    }
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig {
            max_label_wait_secs: default_max_label_wait_secs(),
            max_pending_scores: default_max_pending_scores(),
            max_score_wait_secs: default_max_score_wait_secs(),
            max_pending_labels: default_max_pending_labels(),
        }
    }
}

impl Default for FtrlConfig {
    fn default() -> Self {
        FtrlConfig { alpha: default_alpha(), beta: default_beta(), l1: 0.0, l2: default_l2(), seed: default_seed() }
    }
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            windows: default_windows(),
            decision_threshold: default_threshold(),
            calibration_bins: default_ece_bins(),
        }
    }
}

impl Default for PromotionConfig {
    fn default() -> Self {
        PromotionConfig {
            enabled: false,
            registry_dir: None,
            model: default_model(),
            min_labels: default_min_labels(),
            compare_labels: default_compare_labels(),
            metric: default_metric(),
            margin: default_margin(),
            max_per_hour: default_max_per_hour(),
            rollback_labels: default_rollback_labels(),
            rollback_margin: default_margin(),
        }
    }
}

/// The comparison metric of the promotion rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Metric {
    Auc,
    LogLoss,
}

impl PromotionConfig {
    pub fn metric(&self) -> Metric {
        if self.metric == "log_loss" { Metric::LogLoss } else { Metric::Auc }
    }
}

impl LearnerConfig {
    /// Every problem, each naming the field and the bad value.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let key_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !key_ok(&self.name) {
            p.push(format!("learner.name {:?} must be non-empty [A-Za-z0-9._-]", self.name));
        }
        if self.group_id.is_empty() {
            p.push("learner.group_id is empty".into());
        }
        if self.key_prefix.is_empty() {
            p.push("learner.key_prefix is empty".into());
        }
        if self.lease_ms < 1000 {
            p.push(format!("learner.lease_ms must be >= 1000, got {}", self.lease_ms));
        }
        let j = &self.join;
        if j.max_pending_scores == 0 {
            p.push("learner.join.max_pending_scores must be > 0".into());
        }
        if j.max_pending_labels == 0 {
            p.push("learner.join.max_pending_labels must be > 0".into());
        }
        let f = &self.ftrl;
        if !(f.alpha.is_finite() && f.alpha > 0.0) {
            p.push(format!("learner.ftrl.alpha must be > 0, got {}", f.alpha));
        }
        if !(f.beta.is_finite() && f.beta >= 0.0) {
            p.push(format!("learner.ftrl.beta must be >= 0, got {}", f.beta));
        }
        // linfa-ftrl refuses ratios outside [0, 1] when it first fits, which would stop
        // `weir learn` at its first score instead of at the config check.
        for (name, v) in [("l1", f.l1), ("l2", f.l2)] {
            if !(0.0..=1.0).contains(&v) {
                p.push(format!("learner.ftrl.{name} must be in [0, 1], got {v}"));
            }
        }
        let e = &self.evaluation;
        if e.windows.is_empty() || e.windows.contains(&0) {
            p.push(format!("learner.evaluation.windows must be non-empty sizes > 0, got {:?}", e.windows));
        }
        if !(e.decision_threshold > 0.0 && e.decision_threshold < 1.0) {
            p.push(format!("learner.evaluation.decision_threshold must be in (0, 1), got {}", e.decision_threshold));
        }
        if e.calibration_bins == 0 {
            p.push("learner.evaluation.calibration_bins must be > 0".into());
        }
        let r = &self.promotion;
        if r.enabled && r.registry_dir.is_none() {
            p.push("learner.promotion.registry_dir is required when promotion is enabled".into());
        }
        if !key_ok(&r.model) {
            p.push(format!("learner.promotion.model {:?} must be non-empty [A-Za-z0-9._-]", r.model));
        }
        if r.metric != "auc" && r.metric != "log_loss" {
            p.push(format!("learner.promotion.metric must be auc or log_loss, got {:?}", r.metric));
        }
        if r.compare_labels == 0 || r.rollback_labels == 0 {
            p.push(format!(
                "learner.promotion.compare_labels and rollback_labels must be > 0, got {} and {}",
                r.compare_labels, r.rollback_labels
            ));
        }
        for (name, v) in [("margin", r.margin), ("rollback_margin", r.rollback_margin)] {
            if !(v.is_finite() && v >= 0.0) {
                p.push(format!("learner.promotion.{name} must be >= 0, got {v}"));
            }
        }
        p
    }

    pub fn check(&self) -> Result<()> {
        let p = self.problems();
        if p.is_empty() { Ok(()) } else { Err(Error::Config(p)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let c = LearnerConfig::default();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<LearnerConfig>(&text).unwrap(), c);
        let empty: LearnerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, c);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<LearnerConfig>(r#"{"ftrl": {"alpah": 1.0}}"#).unwrap_err();
        assert!(err.to_string().contains("alpah"), "{err}");
    }

    /// Issue 26: `l1`/`l2` above 1 passed the config check and stopped `weir learn` at its
    /// first score (linfa-ftrl accepts ratios in [0, 1] only). The check's range is
    /// linfa's: both ends train, just past them is refused before anything runs.
    #[test]
    fn ftrl_ratios_are_checked_against_linfas_range() {
        for (l1, l2) in [(0.0, 0.0), (1.0, 1.0)] {
            let c = LearnerConfig { ftrl: FtrlConfig { l1, l2, ..FtrlConfig::default() }, ..LearnerConfig::default() };
            assert!(c.problems().is_empty(), "{:?}", c.problems());
            let mut model = crate::model::OnlineModel::new(vec!["a".into(), "b".into()], &c.ftrl).unwrap();
            model.learn(&[1.0, 2.0], true).unwrap();
        }
        for (l1, l2, name) in [(1.5, 0.5, "l1"), (0.5, 2.0, "l2"), (-0.1, 0.5, "l1"), (0.5, f64::NAN, "l2")] {
            let c = LearnerConfig { ftrl: FtrlConfig { l1, l2, ..FtrlConfig::default() }, ..LearnerConfig::default() };
            let p = c.problems();
            assert!(p.len() == 1 && p[0].contains(&format!("learner.ftrl.{name} must be in [0, 1]")), "{l1} {l2}: {p:?}");
            let linfa = crate::model::OnlineModel::new(vec!["a".into(), "b".into()], &c.ftrl).and_then(|mut m| m.learn(&[1.0, 2.0], true));
            assert!(linfa.is_err(), "linfa accepted {l1} {l2}: the check is stricter than it needs");
        }
    }

    #[test]
    fn every_problem_at_once() {
        let mut c = LearnerConfig { name: "a b".into(), ..LearnerConfig::default() };
        c.ftrl.alpha = 0.0;
        c.ftrl.l2 = -1.0;
        c.evaluation.windows = vec![];
        c.evaluation.decision_threshold = 1.0;
        c.promotion.enabled = true;
        c.promotion.metric = "f1".into();
        let p = c.problems();
        assert_eq!(p.len(), 7, "{p:#?}");
        for needle in ["name", "alpha", "l2", "windows", "decision_threshold", "registry_dir", "metric"] {
            assert!(p.iter().any(|s| s.contains(needle)), "{needle} missing: {p:#?}");
        }
    }
}
