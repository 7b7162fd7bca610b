//! The model registry's on-disk format, shared by the learner (writes it), the scorer
//! (reads it) and the monitor (takes its reference from it).
//!
//! Each version is a directory holding its ONNX file and `metadata.json` (this struct);
//! [`crate::registry`] defines where versions live and which one serves.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `metadata.json` of one model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Model family name, e.g. `fraud-baseline`.
    pub name: String,
    /// Version label, e.g. `v1`; unique within the name.
    pub version: String,
    /// What kind of estimator: `logistic_regression`, `gradient_boosting`, `mlp`, ...
    pub kind: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// File name of the ONNX graph, next to this file.
    pub onnx_file: String,
    /// sha256 of the ONNX file, lowercase hex.
    pub sha256: String,
    /// Name of the graph's float input, shape `[batch, feature_names.len()]`.
    pub input_name: String,
    /// Feature names in input column order.
    pub feature_names: Vec<String>,
    /// Name of the graph output holding class probabilities, shape `[batch, classes]`.
    pub output_name: String,
    /// Column of the positive class in that output.
    pub positive_class_index: usize,
    /// Where the model came from.
    pub lineage: Lineage,
    /// Offline evaluation metrics (`auc`, `log_loss`, ...).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The training data's per-feature summary, in `feature_names` order: reason codes
    /// measure contributions against its means, drift monitoring compares live
    /// distributions to its histograms. Optional (older versions have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<FeatureReference>,
}

/// Per-feature summary of a model's training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureReference {
    /// Mean of each feature, in `feature_names` order.
    pub means: Vec<f64>,
    /// A histogram of each feature, in `feature_names` order (may be empty).
    #[serde(default)]
    pub histograms: Vec<Histogram>,
}

/// A histogram: `counts[i]` rows fell in `[edges[i], edges[i + 1])` (the last bin closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// How a model version was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// Tool or process that made it (a script path, `weir-online-learner`).
    pub trained_by: String,
    /// Description of the training data (generator command, label range).
    pub training_data: String,
    pub training_rows: u64,
    pub seed: Option<u64>,
    pub parent_version: Option<String>,
    #[serde(default)]
    pub hyperparameters: BTreeMap<String, serde_json::Value>,
}
