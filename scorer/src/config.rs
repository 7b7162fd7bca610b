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
        problems
    }

    pub fn decide(&self, score: f64) -> Decision {
        if score >= self.decline_threshold {
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
