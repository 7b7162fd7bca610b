//! Scorer configuration (`[scorer]` in `weir.toml`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorerConfig {
    /// Directory of the model version to serve (holding `metadata.json` and the `.onnx`).
    /// Default: none, which serves the baseline model compiled into weir
    /// (`models/fraud-baseline/v1`).
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// Root of a model registry (layout in `weir_schemas::model`). When set, weir serves
    /// the version that `<registry>/<model_name>/champion` names, watches that pointer,
    /// and swaps in each newly promoted version once it passes validation. Exclusive with
    /// `model_dir`. Default: none.
    #[serde(default)]
    pub registry: Option<PathBuf>,
    /// Name of the model in the registry. Default `fraud`.
    #[serde(default = "default_model_name")]
    pub model_name: String,
    /// How often the registry's pointers are read, in milliseconds: the longest a
    /// promotion or rollback takes to reach the stream (plus the new version's load time).
    /// Default 1000.
    #[serde(default = "default_registry_poll_ms")]
    pub registry_poll_ms: u64,
    /// Reason codes per score: the features with the largest contributions. 0 turns
    /// them off. Exact for linear models; for others an occlusion approximation that
    /// scores `features + 1` rows per event (see `weir_scorer::reasons`). Default 3.
    #[serde(default = "default_reason_top_k")]
    pub reason_top_k: usize,
    /// Topic the challenger's shadow scores go to (the registry's `challenger` pointer
    /// names the challenger; without a registry there is none). Default `scores.shadow`.
    #[serde(default = "default_shadow_topic")]
    pub shadow_topic: String,
    /// Champion batches waiting for the challenger, at most; when full, further batches
    /// are not shadow-scored (counted in `weir_shadow_dropped_total`) so a slow
    /// challenger never slows the champion. Default 8.
    #[serde(default = "default_shadow_queue_batches")]
    pub shadow_queue_batches: usize,
    /// Batch sizes for which an optimized plan with a fixed input shape is built. A
    /// micro-batch is cut into runs of these sizes, the last one padded. Default [1, 16, 64, 256].
    #[serde(default = "default_plan_batch_sizes")]
    pub plan_batch_sizes: Vec<usize>,
    /// Scores at or above this are `review`. Default 0.5.
    #[serde(default = "default_review_threshold")]
    pub review_threshold: f64,
    /// Scores at or above this are `decline`. Default 0.8.
    #[serde(default = "default_decline_threshold")]
    pub decline_threshold: f64,
}

fn default_plan_batch_sizes() -> Vec<usize> {
    vec![1, 16, 64, 256]
}
fn default_model_name() -> String {
    "fraud".into()
}
fn default_registry_poll_ms() -> u64 {
    1000
}
fn default_reason_top_k() -> usize {
    3
}
fn default_shadow_topic() -> String {
    "scores.shadow".into()
}
fn default_shadow_queue_batches() -> usize {
    8
}
fn default_review_threshold() -> f64 {
    0.5
}
fn default_decline_threshold() -> f64 {
    0.8
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig {
            model_dir: None,
            registry: None,
            model_name: default_model_name(),
            registry_poll_ms: default_registry_poll_ms(),
            reason_top_k: default_reason_top_k(),
            shadow_topic: default_shadow_topic(),
            shadow_queue_batches: default_shadow_queue_batches(),
            plan_batch_sizes: default_plan_batch_sizes(),
            review_threshold: default_review_threshold(),
            decline_threshold: default_decline_threshold(),
        }
    }
}

impl ScorerConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.plan_batch_sizes.is_empty() || self.plan_batch_sizes.iter().any(|&b| b == 0 || b > 65_536) {
            problems.push(format!(
                "scorer.plan_batch_sizes must be a non-empty list of sizes in 1..=65536, got {:?}",
                self.plan_batch_sizes
            ));
        }
        for (name, t) in [("review_threshold", self.review_threshold), ("decline_threshold", self.decline_threshold)] {
            if !(0.0..=1.0).contains(&t) {
                problems.push(format!("scorer.{name} must be in [0, 1], got {t}"));
            }
        }
        if self.review_threshold > self.decline_threshold {
            problems.push(format!(
                "scorer.review_threshold {} is above scorer.decline_threshold {}",
                self.review_threshold, self.decline_threshold
            ));
        }
        if let Some(dir) = &self.model_dir {
            if !dir.join("metadata.json").is_file() {
                problems.push(format!("scorer.model_dir {} has no metadata.json", dir.display()));
            }
        }
        if let Some(root) = &self.registry {
            if self.model_dir.is_some() {
                problems.push("scorer.registry and scorer.model_dir are both set: serve from one".to_string());
            }
            if !root.is_dir() {
                problems.push(format!("scorer.registry {} is not a directory", root.display()));
            }
        }
        if self.model_name.is_empty() || self.model_name.contains(['/', '\\']) || self.model_name.starts_with('.') {
            problems.push(format!("scorer.model_name {:?} must be a plain directory name", self.model_name));
        }
        if !(10..=3_600_000).contains(&self.registry_poll_ms) {
            problems.push(format!("scorer.registry_poll_ms must be in 10..=3600000, got {}", self.registry_poll_ms));
        }
        if self.shadow_topic.is_empty() {
            problems.push("scorer.shadow_topic is empty".to_string());
        }
        if !(1..=10_000).contains(&self.shadow_queue_batches) {
            problems.push(format!("scorer.shadow_queue_batches must be in 1..=10000, got {}", self.shadow_queue_batches));
        }
        if self.reason_top_k > 64 {
            problems.push(format!("scorer.reason_top_k must be at most 64, got {}", self.reason_top_k));
        }
        problems
    }

    /// The decision for a score. A score that is not a number fails closed, to `review`:
    /// a broken model must not approve payments.
    pub fn decide(&self, score: f64) -> Decision {
        if score.is_nan() {
            Decision::Review
        } else if score >= self.decline_threshold {
            Decision::Decline
        } else if score >= self.review_threshold {
            Decision::Review
        } else {
            Decision::Approve
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Review,
    Decline,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Review => "review",
            Decision::Decline => "decline",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn one_problem(c: &ScorerConfig, needle: &str) {
        let p = c.problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains(needle), "{:?} does not contain {needle:?}", p[0]);
    }

    #[test]
    fn defaults_have_no_problems() {
        let c = ScorerConfig::default();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.plan_batch_sizes, vec![1, 16, 64, 256]);
        assert_eq!((c.review_threshold, c.decline_threshold), (0.5, 0.8));
        assert_eq!(c.model_dir, None);
        assert_eq!((c.registry.clone(), c.model_name.as_str(), c.registry_poll_ms, c.reason_top_k), (None, "fraud", 1000, 3));
    }

    #[test]
    fn registry_problems() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let ok = ScorerConfig { registry: Some(root.join("src")), ..ScorerConfig::default() };
        assert!(ok.problems().is_empty(), "{:?}", ok.problems());
        one_problem(&ScorerConfig { registry: Some(root.join("nope")), ..ScorerConfig::default() }, "is not a directory");
        one_problem(
            &ScorerConfig {
                registry: Some(root.join("src")),
                model_dir: Some(root.join("../models/fraud-baseline/v1")),
                ..ScorerConfig::default()
            },
            "both set",
        );
        for name in ["", "a/b", ".."] {
            one_problem(&ScorerConfig { model_name: name.into(), ..ScorerConfig::default() }, "scorer.model_name");
        }
        for ms in [0, 9, 3_600_001] {
            one_problem(&ScorerConfig { registry_poll_ms: ms, ..ScorerConfig::default() }, "scorer.registry_poll_ms");
        }
        one_problem(&ScorerConfig { reason_top_k: 65, ..ScorerConfig::default() }, "scorer.reason_top_k");
    }

    #[test]
    fn plan_batch_sizes_problems() {
        for sizes in [vec![], vec![0], vec![1, 0], vec![65_537], vec![16, 100_000]] {
            one_problem(&ScorerConfig { plan_batch_sizes: sizes, ..ScorerConfig::default() }, "scorer.plan_batch_sizes");
        }
        for sizes in [vec![1], vec![65_536], vec![256, 1, 1]] {
            assert!(ScorerConfig { plan_batch_sizes: sizes, ..ScorerConfig::default() }.problems().is_empty());
        }
    }

    #[test]
    fn threshold_problems() {
        for t in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
            let p = ScorerConfig { review_threshold: t, decline_threshold: 1.0, ..ScorerConfig::default() }.problems();
            assert!(p.iter().any(|p| p.contains("scorer.review_threshold must be in [0, 1]")), "{t}: {p:?}");
            let p = ScorerConfig { decline_threshold: t, review_threshold: 0.0, ..ScorerConfig::default() }.problems();
            assert!(p.iter().any(|p| p.contains("scorer.decline_threshold must be in [0, 1]")), "{t}: {p:?}");
        }
        one_problem(
            &ScorerConfig { review_threshold: 0.9, decline_threshold: 0.8, ..ScorerConfig::default() },
            "scorer.review_threshold 0.9 is above scorer.decline_threshold 0.8",
        );
        for (r, d) in [(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.7, 0.7)] {
            let c = ScorerConfig { review_threshold: r, decline_threshold: d, ..ScorerConfig::default() };
            assert!(c.problems().is_empty(), "{r} {d}: {:?}", c.problems());
        }
    }

    #[test]
    fn model_dir_needs_metadata() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let ok = ScorerConfig { model_dir: Some(root.join("../models/fraud-baseline/v1")), ..ScorerConfig::default() };
        assert!(ok.problems().is_empty(), "{:?}", ok.problems());
        one_problem(&ScorerConfig { model_dir: Some(root.join("src")), ..ScorerConfig::default() }, "has no metadata.json");
        one_problem(&ScorerConfig { model_dir: Some(root.join("no-such-dir")), ..ScorerConfig::default() }, "no-such-dir");
    }

    #[test]
    fn decide_at_the_boundaries() {
        let c = ScorerConfig::default();
        for (score, decision) in [
            (0.0, Decision::Approve),
            (0.499_999, Decision::Approve),
            (0.5, Decision::Review),
            (0.799_999, Decision::Review),
            (0.8, Decision::Decline),
            (1.0, Decision::Decline),
        ] {
            assert_eq!(c.decide(score), decision, "{score}");
        }
        // Equal thresholds: no review band.
        let c = ScorerConfig { review_threshold: 0.6, decline_threshold: 0.6, ..ScorerConfig::default() };
        assert_eq!(c.decide(0.599), Decision::Approve);
        assert_eq!(c.decide(0.6), Decision::Decline);
        // Threshold 0: everything is declined.
        let c = ScorerConfig { review_threshold: 0.0, decline_threshold: 0.0, ..ScorerConfig::default() };
        assert_eq!(c.decide(0.0), Decision::Decline);
        assert_eq!(
            [Decision::Approve, Decision::Review, Decision::Decline].map(Decision::as_str),
            ["approve", "review", "decline"]
        );
    }

    #[test]
    fn config_from_json_with_defaults_and_unknown_fields_refused() {
        let c: ScorerConfig = serde_json::from_str(r#"{"review_threshold": 0.4}"#).unwrap();
        assert_eq!(c, ScorerConfig { review_threshold: 0.4, ..ScorerConfig::default() });
        assert!(serde_json::from_str::<ScorerConfig>(r#"{"threshold": 0.4}"#).is_err());
    }
}

#[cfg(test)]
mod nan_tests {
    use super::*;

    /// Regression: a NaN score fell through every threshold and was approved; it must
    /// fail closed to review.
    #[test]
    fn nan_scores_fail_closed_to_review() {
        assert_eq!(ScorerConfig::default().decide(f64::NAN), Decision::Review);
    }
}
