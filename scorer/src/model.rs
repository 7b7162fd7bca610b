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
    /// For a graph that is one `LinearClassifier` with a logistic link: the positive
    /// class's log-odds as `weights · x + intercept`, for exact reason codes.
    linear: Option<LinearForm>,
}

/// The positive class's log-odds of a linear model: `weights · x + intercept`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearForm {
    pub weights: Vec<f64>,
    pub intercept: f64,
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
    /// list, the graph's declared input width, ops tract can run, a plan per batch size
    /// whose output has the positive class's column, and canary rows that must score
    /// finite in [0, 1].
    ///
    /// A bad file or bad metadata is an error, never a panic: should tract itself panic on
    /// a malformed graph, that is caught here and returned as [`Error::Load`], so a
    /// watcher refusing the version keeps running (needs `panic = "unwind"`, the default).
    pub fn load(
        metadata: ModelMetadata,
        onnx: &[u8],
        expected_features: &[String],
        batch_sizes: &[usize],
    ) -> Result<Self> {
        let version = format!("{}/{}", metadata.name, metadata.version);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Self::load_checked(metadata, onnx, expected_features, batch_sizes)))
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into());
                Err(Error::Load { version, message: format!("panicked while loading: {message}") })
            })
    }

    fn load_checked(
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
        if metadata.feature_names.is_empty() {
            // Rows of width 0: nothing to score, and `score` divides by the width.
            return Err(Error::FeatureMismatch { version, message: "model has no features".into() });
        }
        let load_err = |e: TractError| Error::Load { version: version.clone(), message: format!("{e:#}") };
        let k = metadata.feature_names.len();
        if batch_sizes.contains(&0) {
            // A zero-row plan would make `score` loop forever.
            return Err(Error::Config(vec![format!("plan batch sizes must be > 0, got {batch_sizes:?}")]));
        }
        let mut sizes: Vec<usize> = batch_sizes.to_vec();
        sizes.sort_unstable();
        sizes.dedup();
        // tract's loader with weir's tree-ensemble ops (crate::trees) in place of tract's.
        let onnx_framework = crate::trees::onnx();
        let proto = onnx_framework.proto_model_for_read(&mut Cursor::new(onnx)).map_err(load_err)?;
        let graph = proto.graph.as_ref().ok_or_else(|| Error::Load { version: version.clone(), message: "no graph in the file".into() })?;
        // tract turns an op it does not know into a placeholder that fails later with a
        // message that does not say which op; name it here, before anything else.
        let mut unsupported: Vec<String> =
            graph.node.iter().filter(|n| !onnx_framework.op_register.0.contains_key(&n.op_type)).map(|n| n.op_type.clone()).collect();
        unsupported.sort_unstable();
        unsupported.dedup();
        if !unsupported.is_empty() {
            return Err(Error::UnsupportedOp { version, ops: unsupported });
        }
        let declared = check_input_width(&version, graph, &metadata.input_name, k)?;
        let linear = linear_form(graph, metadata.positive_class_index, k);
        let mut plans = Vec::with_capacity(sizes.len());
        let mut output_slot = None;
        for &batch in &sizes {
            let mut model = onnx_framework.model_for_proto_model(&proto).map_err(load_err)?;
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
            let typed = model.into_typed().map_err(load_err)?;
            if plans.is_empty() {
                check_contractions(&version, &typed, &input_name, &declared, k)?;
            }
            let optimized = typed.into_optimized().map_err(load_err)?;
            check_output(&version, &optimized, slot, &metadata, batch)?;
            let plan = optimized.into_runnable().map_err(load_err)?;
            plans.push((batch, plan));
        }
        let output_slot = output_slot.ok_or_else(|| Error::Config(vec!["no plan batch sizes".into()]))?;
        let loaded = LoadedModel { metadata, plans, output_slot, linear };
        loaded.canary(&version)?;
        Ok(loaded)
    }

    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// The version label that goes on every score this model produces.
    pub fn version(&self) -> &str {
        &self.metadata.version
    }

    /// The linear form, when the model is a single logistic `LinearClassifier`.
    pub fn linear_form(&self) -> Option<&LinearForm> {
        self.linear.as_ref()
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
                .ok_or_else(|| self.run_err("missing output"))?
                .to_plain_array_view::<f32>()
                .map_err(|e| self.run_err(e))?;
            // Checked at load on the plans' output facts; checked again here because an
            // output whose shape tract could not know before running would otherwise be
            // indexed out of bounds (a panic in the scoring task).
            let col = self.metadata.positive_class_index;
            let shape = probs.shape();
            if shape.len() != 2 || shape[1] <= col || shape[0] < take {
                return Err(Error::PositiveClass {
                    version: format!("{}/{}", self.metadata.name, self.metadata.version),
                    index: col,
                    output: self.metadata.output_name.clone(),
                    shape: format!("{shape:?}"),
                });
            }
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

/// The linear form of a graph whose only computing node is an ONNX-ML `LinearClassifier`
/// with `post_transform = LOGISTIC` (what skl2onnx writes for a logistic regression):
/// there, the positive class's probability is `sigmoid(w_pos · x + b_pos)`. Any other
/// graph (a Scaler in front, a softmax link, more nodes) gets `None`, and reason codes
/// fall back to occlusion.
fn linear_form(graph: &tract_onnx::pb::GraphProto, positive: usize, k: usize) -> Option<LinearForm> {
    let computing: Vec<_> = graph.node.iter().filter(|n| n.op_type != "Identity").collect();
    let [node] = computing.as_slice() else { return None };
    if node.op_type != "LinearClassifier" {
        return None;
    }
    let attr = |name: &str| node.attribute.iter().find(|a| a.name == name);
    if attr("post_transform").map(|a| a.s.as_slice()) != Some(b"LOGISTIC".as_slice()) {
        return None;
    }
    let coefficients = &attr("coefficients")?.floats;
    let intercepts = attr("intercepts").map(|a| a.floats.clone()).unwrap_or_default();
    if k == 0 || coefficients.len() % k != 0 || positive >= coefficients.len() / k {
        return None;
    }
    let weights = coefficients[positive * k..(positive + 1) * k].iter().map(|&w| f64::from(w)).collect();
    let intercept = intercepts.get(positive).copied().map(f64::from).unwrap_or(0.0);
    Some(LinearForm { weights, intercept })
}

/// Refuses a graph whose declared input is not `[batch, k]` for the metadata's `k`
/// features, and returns the declared shape as text (`[N, 9]`, `[N, W]`, `unknown`).
/// tract is given the fact `[batch, k]` in place of the graph's own, so without this
/// check a graph declared `[N, 8]` under 9 feature names would be planned on 9 columns
/// and serve.
///
/// A declared width that is symbolic (`dim_param`, e.g. `[N, W]`) or absent (no shape,
/// or a dimension with neither value nor parameter) cannot be compared here; it is
/// accepted, and [`check_contractions`] checks the planned graph instead.
fn check_input_width(version: &str, graph: &tract_onnx::pb::GraphProto, input: &str, k: usize) -> Result<String> {
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    use tract_onnx::pb::type_proto;
    // No such input: the input-name check below refuses it with its own message.
    let Some(info) = graph.input.iter().find(|i| i.name == input) else { return Ok("unknown".into()) };
    let shape = match info.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => t.shape.as_ref(),
        _ => None,
    };
    let Some(shape) = shape else { return Ok("unknown".into()) };
    let dims: Vec<Option<&Value>> = shape.dim.iter().map(|d| d.value.as_ref()).collect();
    let text: Vec<String> = dims
        .iter()
        .map(|d| match d {
            Some(Value::DimValue(v)) => v.to_string(),
            Some(Value::DimParam(p)) if !p.is_empty() => p.clone(),
            _ => "?".into(),
        })
        .collect();
    let text = format!("[{}]", text.join(", "));
    let width_ok = match dims.as_slice() {
        [_, Some(Value::DimValue(w))] => usize::try_from(*w).is_ok_and(|w| w == k),
        [_, Some(Value::DimParam(_)) | None] => true,
        _ => false,
    };
    if width_ok {
        return Ok(text);
    }
    Err(Error::InputWidth { version: version.to_string(), input: input.to_string(), declared: format!("is declared {text}"), features: k })
}

/// Refuses a typed graph (planned on `[batch, k]`) in which an einsum — what tract lowers
/// `MatMul`, `Gemm` and `LinearClassifier` to — contracts or broadcasts axes of
/// different concrete lengths. tract 0.23 does not check this itself: a
/// `LinearClassifier` with 8 coefficients per class planned on 9 columns loads and
/// scores, ignoring a feature. With the input width fixed by the caller, such a mismatch
/// is the graph wanting another width than the metadata's, so it is an
/// [`Error::InputWidth`] naming the node and the lengths.
fn check_contractions(version: &str, model: &TypedModel, input: &str, declared: &str, k: usize) -> Result<()> {
    use tract_onnx::tract_core::ops::einsum::EinSum;
    for node in model.nodes() {
        let Some(op) = node.op_as::<EinSum>() else { continue };
        for axis in op.axes.iter_all_axes() {
            let mut lengths: Vec<usize> = Vec::new();
            for (slot, positions) in axis.inputs.iter().enumerate() {
                let Some(fact) = node.inputs.get(slot).and_then(|o| model.outlet_fact(*o).ok()) else { continue };
                for &pos in positions {
                    if let Some(n) = fact.shape.get(pos).and_then(|d| d.as_i64()).and_then(|n| usize::try_from(n).ok())
                        && n != 1
                        && !lengths.contains(&n)
                    {
                        lengths.push(n);
                    }
                }
            }
            if lengths.len() > 1 {
                let lengths: Vec<String> = lengths.iter().map(usize::to_string).collect();
                return Err(Error::InputWidth {
                    version: version.to_string(),
                    input: input.to_string(),
                    declared: format!(
                        "is declared {declared} and node {:?} ({}) multiplies lengths {} along one axis",
                        node.name,
                        op.axes,
                        lengths.join(" and ")
                    ),
                    features: k,
                });
            }
        }
    }
    Ok(())
}

/// Refuses a plan whose probabilities output is not `[batch, classes]` with a column at
/// `positive_class_index`. An output whose shape tract leaves symbolic passes here and is
/// checked on every run by [`LoadedModel::score`] (the canary rows run it before the
/// version may serve).
fn check_output(version: &str, model: &TypedModel, slot: usize, metadata: &ModelMetadata, batch: usize) -> Result<()> {
    let Some(outlet) = model.output_outlets().ok().and_then(|o| o.get(slot).copied()) else { return Ok(()) };
    let Ok(fact) = model.outlet_fact(outlet) else { return Ok(()) };
    let Some(shape) = fact.shape.as_concrete() else { return Ok(()) };
    let index = metadata.positive_class_index;
    if shape.len() == 2 && shape[0] == batch && index < shape[1] {
        return Ok(());
    }
    Err(Error::PositiveClass {
        version: version.to_string(),
        index,
        output: metadata.output_name.clone(),
        shape: format!("{shape:?}"),
    })
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

#[cfg(test)]
pub(crate) mod tests;
