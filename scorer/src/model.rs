//! One model version loaded into tract, ready to score batches.
//!
//! tract is given a fixed input shape per plan (`[batch, features]`) and optimizes each
//! plan once at load; at run time a micro-batch of `n` rows is cut greedily into runs of
//! the largest plan size that fits, and the tail goes to the smallest plan that holds it,
//! zero-padded. Padding costs a little arithmetic; fixed shapes let tract pick its kernels
//! once instead of re-planning on every batch size.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;
use weir_schemas::model::ModelMetadata;

use crate::error::{Error, Result};

type Plan = Arc<TypedRunnableModel>;

pub struct LoadedModel {
    metadata: ModelMetadata,
    /// Plans sorted by batch size, ascending.
    plans: Vec<(usize, Plan)>,
    /// Index of the probabilities output in the plan's outputs.
    output_slot: usize,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("name", &self.metadata.name)
            .field("version", &self.metadata.version)
            .field("plans", &self.plans.iter().map(|(b, _)| *b).collect::<Vec<_>>())
            .finish()
    }
}

impl LoadedModel {
    /// Loads `metadata.json` and its ONNX file from `dir`, validated against the
    /// configured feature names.
    pub fn load_dir(dir: &Path, expected_features: &[String], batch_sizes: &[usize]) -> Result<Self> {
        let meta_path = dir.join("metadata.json");
        let io = |p: &Path, source| Error::Io { path: p.display().to_string(), source };
        let meta_text = std::fs::read_to_string(&meta_path).map_err(|e| io(&meta_path, e))?;
        let metadata: ModelMetadata = serde_json::from_str(&meta_text)
            .map_err(|e| Error::Metadata { path: meta_path.display().to_string(), message: e.to_string() })?;
        let onnx_path = dir.join(&metadata.onnx_file);
        let onnx = std::fs::read(&onnx_path).map_err(|e| io(&onnx_path, e))?;
        Self::load(metadata, &onnx, expected_features, batch_sizes)
    }

    /// Validates and loads a model from its metadata and ONNX bytes: checksum, feature
    /// list, a plan per batch size, and canary rows that must score finite in [0, 1].
    pub fn load(
        metadata: ModelMetadata,
        onnx: &[u8],
        expected_features: &[String],
        batch_sizes: &[usize],
    ) -> Result<Self> {
        let version = format!("{}/{}", metadata.name, metadata.version);
        let actual = hex::encode(Sha256::digest(onnx));
        if !actual.eq_ignore_ascii_case(&metadata.sha256) {
            return Err(Error::Checksum { version, expected: metadata.sha256.clone(), actual });
        }
        check_features(&version, &metadata.feature_names, expected_features)?;
        let load_err = |e: TractError| Error::Load { version: version.clone(), message: format!("{e:#}") };
        let k = metadata.feature_names.len();
        let mut sizes: Vec<usize> = batch_sizes.to_vec();
        sizes.sort_unstable();
        sizes.dedup();
        let mut plans = Vec::with_capacity(sizes.len());
        let mut output_slot = None;
        for &batch in &sizes {
            let mut model = tract_onnx::onnx().model_for_read(&mut Cursor::new(onnx)).map_err(load_err)?;
            let input = model.input_outlets().map_err(load_err)?.first().copied().ok_or_else(|| Error::Load {
                version: version.clone(),
                message: "graph has no input".into(),
            })?;
            let input_name = model.node(input.node).name.clone();
            if input_name != metadata.input_name {
                return Err(Error::Load {
                    version,
                    message: format!("graph input is {input_name:?}, metadata says {:?}", metadata.input_name),
                });
            }
            model = model.with_input_fact(0, f32::fact([batch, k]).into()).map_err(load_err)?;
            let slot = find_output(&model, &metadata.output_name).ok_or_else(|| Error::Load {
                version: version.clone(),
                message: format!("graph has no output named {:?}", metadata.output_name),
            })?;
            output_slot = Some(slot);
            let plan = model.into_optimized().map_err(load_err)?.into_runnable().map_err(load_err)?;
            plans.push((batch, plan));
        }
        let output_slot = output_slot.ok_or_else(|| Error::Config(vec!["no plan batch sizes".into()]))?;
        let loaded = LoadedModel { metadata, plans, output_slot };
        loaded.canary(&version)?;
        Ok(loaded)
    }

    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    pub fn feature_count(&self) -> usize {
        self.metadata.feature_names.len()
    }

    /// Scores `rows` (row-major, `feature_count` columns) and returns one probability of
    /// the positive class per row. CPU-bound: call it off the async threads.
    pub fn score(&self, rows: &[f32]) -> Result<Vec<f32>> {
        let k = self.feature_count();
        debug_assert_eq!(rows.len() % k, 0);
        let n = rows.len() / k;
        let mut out = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let remaining = n - start;
            let (batch, plan) = self.pick_plan(remaining);
            let take = remaining.min(batch);
            let mut input = vec![0f32; batch * k];
            input[..take * k].copy_from_slice(&rows[start * k..(start + take) * k]);
            let tensor = Tensor::from_shape(&[batch, k], &input).map_err(|e| self.run_err(e))?;
            let result = plan.run(tvec!(tensor.into_tvalue())).map_err(|e| self.run_err(e))?;
            let probs = result
                .get(self.output_slot)
                .ok_or_else(|| self.run_err(anyhow_msg("missing output")))?
                .to_plain_array_view::<f32>()
                .map_err(|e| self.run_err(e))?;
            let col = self.metadata.positive_class_index;
            for r in 0..take {
                out.push(probs[[r, col]]);
            }
            start += take;
        }
        Ok(out)
    }

    /// The plan for the next run over `remaining` rows: the largest plan if all of it is
    /// filled; otherwise the smallest plan that holds the rest, unless more than half of it
    /// would be padding, in which case a smaller plan that is filled completely.
    fn pick_plan(&self, remaining: usize) -> (usize, &Plan) {
        let largest = &self.plans[self.plans.len() - 1];
        if remaining >= largest.0 {
            return (largest.0, &largest.1);
        }
        let holds = self.plans.iter().find(|(b, _)| *b >= remaining).unwrap_or(largest);
        let fits = self.plans.iter().rev().find(|(b, _)| *b <= remaining);
        match fits {
            Some(f) if holds.0 - remaining > remaining => (f.0, &f.1),
            _ => (holds.0, &holds.1),
        }
    }

    fn run_err(&self, e: impl std::fmt::Display) -> Error {
        Error::Run { version: format!("{}/{}", self.metadata.name, self.metadata.version), message: e.to_string() }
    }

    /// Rows a sane model must score finite in [0, 1]: all zeros and all ones.
    fn canary(&self, version: &str) -> Result<()> {
        let k = self.feature_count();
        let mut rows = vec![0f32; k];
        rows.extend(std::iter::repeat_n(1f32, k));
        let scores = self.score(&rows)?;
        for (row, &score) in scores.iter().enumerate() {
            if !(score.is_finite() && (0.0..=1.0).contains(&score)) {
                return Err(Error::Canary { version: version.to_string(), row, score });
            }
        }
        Ok(())
    }
}

fn anyhow_msg(s: &str) -> String {
    s.to_string()
}

fn find_output(model: &InferenceModel, name: &str) -> Option<usize> {
    let outlets = model.output_outlets().ok()?;
    outlets.iter().position(|o| {
        model.outlet_label(*o).map(|l| l == name).unwrap_or(false) || model.node(o.node).name == name
    })
}

fn check_features(version: &str, model: &[String], expected: &[String]) -> Result<()> {
    if model == expected {
        return Ok(());
    }
    let message = if model.len() != expected.len() {
        format!("model has {} features {:?}, weir computes {} {:?}", model.len(), model, expected.len(), expected)
    } else {
        let (i, (m, e)) = model.iter().zip(expected).enumerate().find(|(_, (m, e))| m != e).unwrap_or((0, (&model[0], &expected[0])));
        format!("column {i} is {m:?} in the model but {e:?} in weir's feature vector")
    };
    Err(Error::FeatureMismatch { version: version.to_string(), message })
}
