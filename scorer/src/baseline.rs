//! The baseline fraud model, compiled in so `weir demo` needs no files.
//! Made by `tools/train/train_baseline.py` from `weir produce` data; see `models/README.md`.

use weir_schemas::model::ModelMetadata;

use crate::error::{Error, Result};
use crate::model::LoadedModel;

pub const ONNX: &[u8] = include_bytes!("../../models/fraud-baseline/v1/model.onnx");
pub const METADATA: &str = include_str!("../../models/fraud-baseline/v1/metadata.json");

pub fn metadata() -> Result<ModelMetadata> {
    serde_json::from_str(METADATA)
        .map_err(|e| Error::Metadata { path: "embedded fraud-baseline/v1".into(), message: e.to_string() })
}

pub fn load(expected_features: &[String], batch_sizes: &[usize]) -> Result<LoadedModel> {
    LoadedModel::load(metadata()?, ONNX, expected_features, batch_sizes)
}
