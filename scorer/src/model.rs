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
pub(crate) mod tests {
    use super::*;
    use crate::baseline;
    use std::sync::OnceLock;

    const PLAN_SIZES: [usize; 4] = [1, 16, 64, 256];

    fn names() -> Vec<String> {
        baseline::metadata().unwrap().feature_names
    }

    fn model() -> &'static LoadedModel {
        static MODEL: OnceLock<LoadedModel> = OnceLock::new();
        MODEL.get_or_init(|| baseline::load(&names(), &PLAN_SIZES).expect("baseline loads"))
    }

    /// Deterministic rows in the features' usual ranges (amount_log, hour, ecom, atm,
    /// count_1m, sum_1m, count_1h, sum_1h, ratio).
    fn rows(n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n * 9);
        for i in 0..n {
            let f = i as f32;
            let count_1m = (1 + i % 7) as f32;
            let count_1h = count_1m + (i % 29) as f32;
            out.extend_from_slice(&[
                1.0 + (f * 0.37) % 7.0,
                (i % 24) as f32,
                (i % 3 == 1) as u8 as f32,
                (i % 3 == 2) as u8 as f32,
                count_1m,
                count_1m * (10.0 + (f * 3.1) % 200.0),
                count_1h,
                count_1h * (15.0 + (f * 1.7) % 100.0),
                0.2 + (f * 0.13) % 5.0,
            ]);
        }
        out
    }

    #[test]
    fn baseline_loads_with_its_feature_names_and_plans() {
        let m = model();
        assert_eq!(m.feature_count(), 9);
        assert_eq!(m.metadata().feature_names, names());
        assert_eq!(m.metadata().feature_names[0], "amount_log");
        assert_eq!(m.plans.iter().map(|(b, _)| *b).collect::<Vec<_>>(), PLAN_SIZES);
        assert!(format!("{m:?}").contains("[1, 16, 64, 256]"));
    }

    #[test]
    fn scores_are_probabilities_and_batching_does_not_change_them() {
        let m = model();
        let all = rows(300);
        let single: Vec<f32> = all.chunks(9).map(|r| m.score(r).unwrap()[0]).collect();
        assert!(single.iter().all(|s| s.is_finite() && (0.0..=1.0).contains(s)));
        // Not all the same: the rows do reach the model.
        assert!(single.iter().any(|&s| (s - single[0]).abs() > 1e-3), "{single:?}");
        for n in [1usize, 3, 16, 17, 64, 100, 300] {
            let batch = m.score(&all[..n * 9]).unwrap();
            assert_eq!(batch.len(), n);
            for (i, (b, s)) in batch.iter().zip(&single).enumerate() {
                assert!(b.is_finite() && (0.0..=1.0).contains(b), "n {n} row {i}: {b}");
                assert!((b - s).abs() <= 1e-6, "n {n} row {i}: batch {b} vs single {s}");
            }
        }
        assert!(m.score(&[]).unwrap().is_empty());
    }

    #[test]
    fn plan_choice() {
        let m = model();
        let pick = |n| m.pick_plan(n).0;
        // All of the largest plan filled.
        assert_eq!(pick(256), 256);
        assert_eq!(pick(300), 256);
        // Smallest plan that holds the rest, unless more than half would be padding.
        assert_eq!(pick(1), 1);
        assert_eq!(pick(16), 16);
        assert_eq!(pick(44), 64); // 20 padding rows <= 44
        assert_eq!(pick(32), 64); // 32 padding == 32 rows: still padded
        assert_eq!(pick(31), 16); // 33 padding > 31: a full 16 instead
        assert_eq!(pick(17), 16);
        assert_eq!(pick(8), 16); // 8 padding == 8
        assert_eq!(pick(7), 1);
        assert_eq!(pick(200), 256);
        assert_eq!(pick(127), 64);
    }

    #[test]
    fn plan_sizes_are_sorted_and_deduplicated() {
        let m = baseline::load(&names(), &[64, 1, 64, 5]).unwrap();
        assert_eq!(m.plans.iter().map(|(b, _)| *b).collect::<Vec<_>>(), vec![1, 5, 64]);
        let scores = m.score(&rows(70)).unwrap();
        let reference = model().score(&rows(70)).unwrap();
        for (a, b) in scores.iter().zip(&reference) {
            assert!((a - b).abs() <= 1e-6);
        }
    }

    #[test]
    fn no_or_zero_plan_sizes_are_refused() {
        assert!(matches!(baseline::load(&names(), &[]), Err(Error::Config(_))));
        // A zero-row plan would never make progress through a batch.
        let err = baseline::load(&names(), &[0, 16]).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
    }

    #[derive(serde::Deserialize)]
    struct Golden {
        model_sha256: String,
        #[serde(default)]
        feature_names: Vec<String>,
        rows: Vec<Vec<f32>>,
        expected: Vec<f32>,
    }

    /// Independent check of the arithmetic: onnxruntime's probabilities for the same rows,
    /// written by `tools/golden/golden_baseline.py`.
    #[test]
    fn matches_onnxruntime_golden_scores() {
        let golden: Golden = serde_json::from_str(include_str!("../tests/golden_baseline.json")).unwrap();
        let m = model();
        assert_eq!(
            golden.model_sha256,
            m.metadata().sha256,
            "the baseline changed: rerun tools/golden/golden_baseline.py"
        );
        assert_eq!(golden.feature_names, m.metadata().feature_names);
        assert_eq!(golden.rows.len(), 20);
        let flat: Vec<f32> = golden.rows.iter().flatten().copied().collect();
        // One batch (16 + 1 + 1 + 1 + 1 runs) and one by one.
        let batch = m.score(&flat).unwrap();
        for (i, (row, expected)) in golden.rows.iter().zip(&golden.expected).enumerate() {
            let one = m.score(row).unwrap()[0];
            assert!((batch[i] - expected).abs() <= 1e-5, "row {i}: tract {} vs onnxruntime {expected}", batch[i]);
            assert!((one - expected).abs() <= 1e-5, "row {i}: tract {one} vs onnxruntime {expected}");
        }
    }

    /// Every shipped model family (tools/train/train_families.py) scores like onnxruntime, to
    /// 1e-5, at every plan size: one batch, and one row at a time.
    #[test]
    fn families_match_onnxruntime() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for family in ["logistic", "mlp", "gbt", "forest"] {
            let dir = root.join("../models/families").join(family);
            let m = LoadedModel::load_dir(&dir, &names(), &[1, 16, 64]).unwrap_or_else(|e| panic!("{family}: {e}"));
            let text = std::fs::read_to_string(root.join(format!("tests/golden_{family}.json"))).unwrap();
            let golden: Golden = serde_json::from_str(&text).unwrap();
            assert_eq!(golden.model_sha256, m.metadata().sha256, "{family} changed: rerun tools/train/train_families.py");
            assert_eq!(golden.rows.len(), 64);
            let flat: Vec<f32> = golden.rows.iter().flatten().copied().collect();
            let mut worst = 0f32;
            for n in [1usize, 16, 64, 17] {
                let scores = m.score(&flat[..n * 9]).unwrap();
                for (i, (s, e)) in scores.iter().zip(&golden.expected).enumerate() {
                    assert!((s - e).abs() <= 1e-5, "{family} batch {n} row {i}: tract {s} vs onnxruntime {e}");
                    worst = worst.max((s - e).abs());
                }
            }
            for (i, row) in golden.rows.iter().enumerate() {
                let s = m.score(row).unwrap()[0];
                assert!((s - golden.expected[i]).abs() <= 1e-5, "{family} row {i}: tract {s} vs onnxruntime {}", golden.expected[i]);
            }
            // The models differ: the scores are not all one value.
            assert!(golden.expected.iter().any(|&e| (e - golden.expected[0]).abs() > 1e-3), "{family}");
            eprintln!("{family}: {} max |tract - onnxruntime| {worst:e}", m.metadata().kind);
        }
    }

    #[test]
    fn unsupported_ops_are_named_at_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fixtures");
        for (fixture, op) in [("zipmap", "ZipMap"), ("scaler", "Scaler")] {
            let err = LoadedModel::load_dir(&root.join(fixture), &names(), &[1]).unwrap_err();
            match &err {
                Error::UnsupportedOp { ops, .. } => assert_eq!(ops, &vec![op.to_string()], "{fixture}"),
                other => panic!("{fixture}: expected an unsupported op error, got {other}"),
            }
            assert!(err.to_string().contains(op), "{err}");
        }
        // The NaN model loads in tract but fails its canary rows.
        let err = LoadedModel::load_dir(&root.join("nan"), &names(), &[1]).unwrap_err();
        assert!(matches!(&err, Error::Canary { score, .. } if score.is_nan()), "{err}");
    }

    #[test]
    fn only_the_logistic_graphs_have_a_linear_form() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/families");
        assert!(model().linear_form().is_some());
        for (family, linear) in [("logistic", true), ("mlp", false), ("gbt", false), ("forest", false)] {
            let m = LoadedModel::load_dir(&root.join(family), &names(), &[1]).unwrap();
            assert_eq!(m.linear_form().is_some(), linear, "{family}");
        }
        // The form is the model: sigmoid(w·x + b) is the score.
        let lf = model().linear_form().unwrap();
        let r = rows(5);
        for (row, s) in r.chunks(9).zip(model().score(&r).unwrap()) {
            let z: f64 = lf.weights.iter().zip(row).map(|(w, x)| w * f64::from(*x)).sum::<f64>() + lf.intercept;
            let p = 1.0 / (1.0 + (-z).exp());
            assert!((p - f64::from(s)).abs() < 1e-5, "{p} vs {s}");
        }
    }

    #[test]
    fn load_dir_reads_the_shipped_baseline() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/fraud-baseline/v1");
        let m = LoadedModel::load_dir(&dir, &names(), &[1, 16]).unwrap();
        assert_eq!(m.metadata(), model().metadata());
        let r = rows(20);
        assert_eq!(m.score(&r).unwrap(), model().score(&r).unwrap());
        let err = LoadedModel::load_dir(&dir.join("nope"), &names(), &[1]).unwrap_err();
        assert!(matches!(&err, Error::Io { path, .. } if path.ends_with("metadata.json")), "{err}");
    }

    #[test]
    fn checksum_mismatch() {
        let mut meta = baseline::metadata().unwrap();
        meta.sha256 = "00".repeat(32);
        let err = LoadedModel::load(meta.clone(), baseline::ONNX, &names(), &[1]).unwrap_err();
        match &err {
            Error::Checksum { version, expected, actual } => {
                assert_eq!(version, "fraud-baseline/v1");
                assert_eq!(expected, &meta.sha256);
                assert_eq!(actual, &baseline::metadata().unwrap().sha256);
            }
            other => panic!("expected a checksum error, got {other}"),
        }
        // One flipped byte of the model.
        let mut onnx = baseline::ONNX.to_vec();
        onnx[100] ^= 1;
        let err = LoadedModel::load(baseline::metadata().unwrap(), &onnx, &names(), &[1]).unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
        // Upper-case hex in the metadata is accepted.
        let mut meta = baseline::metadata().unwrap();
        meta.sha256 = meta.sha256.to_uppercase();
        LoadedModel::load(meta, baseline::ONNX, &names(), &[1]).unwrap();
    }

    fn feature_mismatch(expected: &[String]) -> String {
        match baseline::load(expected, &[1]).unwrap_err() {
            Error::FeatureMismatch { version, message } => {
                assert_eq!(version, "fraud-baseline/v1");
                message
            }
            other => panic!("expected a feature mismatch, got {other}"),
        }
    }

    #[test]
    fn feature_list_must_match() {
        let mut reordered = names();
        reordered.swap(4, 5);
        let message = feature_mismatch(&reordered);
        assert!(message.contains("column 4"), "{message}");
        assert!(message.contains("\"card_count_1m\"") && message.contains("\"card_amount_sum_1m\""), "{message}");

        let mut renamed = names();
        renamed[8] = "amount_to_card_mean_1d".into();
        let message = feature_mismatch(&renamed);
        assert!(message.contains("column 8") && message.contains("amount_to_card_mean_1d"), "{message}");

        let mut missing = names();
        missing.remove(2);
        let message = feature_mismatch(&missing);
        assert!(message.contains("model has 9 features") && message.contains("weir computes 8"), "{message}");

        let mut extra = names();
        extra.push("card_count_1d".into());
        let message = feature_mismatch(&extra);
        assert!(message.contains("weir computes 10") && message.contains("card_count_1d"), "{message}");

        assert!(feature_mismatch(&[]).contains("weir computes 0"));
    }

    fn with_checksum(mut meta: ModelMetadata, onnx: &[u8]) -> ModelMetadata {
        meta.sha256 = hex::encode(Sha256::digest(onnx));
        meta
    }

    #[test]
    fn garbage_onnx_is_a_load_error() {
        for garbage in [&b""[..], b"not an onnx model", &[0xffu8; 64][..], &baseline::ONNX[..200]] {
            let meta = with_checksum(baseline::metadata().unwrap(), garbage);
            let err = LoadedModel::load(meta, garbage, &names(), &[1]).unwrap_err();
            assert!(matches!(err, Error::Load { .. }), "{garbage:?}: {err}");
        }
    }

    #[test]
    fn wrong_input_or_output_name_is_a_load_error() {
        let mut meta = baseline::metadata().unwrap();
        meta.input_name = "features".into();
        let err = LoadedModel::load(meta, baseline::ONNX, &names(), &[1]).unwrap_err();
        match &err {
            Error::Load { message, .. } => {
                assert!(message.contains("\"input\"") && message.contains("\"features\""), "{message}")
            }
            other => panic!("expected a load error, got {other}"),
        }
        let mut meta = baseline::metadata().unwrap();
        meta.output_name = "probs".into();
        let err = LoadedModel::load(meta, baseline::ONNX, &names(), &[1]).unwrap_err();
        assert!(matches!(&err, Error::Load { message, .. } if message.contains("\"probs\"")), "{err}");
    }

    #[test]
    fn positive_class_index_selects_the_column() {
        let mut meta = baseline::metadata().unwrap();
        meta.positive_class_index = 0;
        let m = LoadedModel::load(meta, baseline::ONNX, &names(), &[1, 16]).unwrap();
        let r = rows(20);
        for (neg, pos) in m.score(&r).unwrap().iter().zip(model().score(&r).unwrap()) {
            assert!((neg + pos - 1.0).abs() <= 1e-5, "{neg} + {pos}");
        }
    }
    /// The baseline's ONNX with the graph input's declared dims replaced (`Some(n)` a fixed
    /// size, `None` a symbolic `W`), and, when `width` is given, its `LinearClassifier`
    /// cut down to the first `width` coefficients per class — a model really trained on
    /// fewer features.
    pub(crate) fn baseline_edited(dims: Option<&[Option<i64>]>, width: Option<usize>) -> Vec<u8> {
        use prost::Message;
        use tract_onnx::pb;
        use tract_onnx::pb::tensor_shape_proto::{dimension::Value, Dimension};
        let mut m = pb::ModelProto::decode(baseline::ONNX).unwrap();
        let graph = m.graph.as_mut().unwrap();
        let Some(pb::type_proto::Value::TensorType(t)) = graph.input[0].r#type.as_mut().unwrap().value.as_mut() else {
            panic!("baseline input is a tensor")
        };
        match dims {
            Some(dims) => {
                let batch = t.shape.as_ref().unwrap().dim[0].clone();
                let mut dim = vec![batch];
                dim.extend(dims.iter().skip(1).map(|d| Dimension {
                    denotation: String::new(),
                    value: Some(match d {
                        Some(n) => Value::DimValue(*n),
                        None => Value::DimParam("W".into()),
                    }),
                }));
                t.shape = Some(pb::TensorShapeProto { dim });
            }
            None => t.shape = None,
        }
        if let Some(width) = width {
            let node = graph.node.iter_mut().find(|n| n.op_type == "LinearClassifier").unwrap();
            let coefficients = node.attribute.iter_mut().find(|a| a.name == "coefficients").unwrap();
            let k = 9;
            coefficients.floats = coefficients.floats.chunks(k).flat_map(|c| c[..width].to_vec()).collect();
        }
        m.encode_to_vec()
    }

    fn load_edited(onnx: &[u8]) -> Result<LoadedModel> {
        LoadedModel::load(with_checksum(baseline::metadata().unwrap(), onnx), onnx, &names(), &[1, 16])
    }

    /// Regression (issue 24 item 6): a graph declaring `[N, 8]` under metadata listing 9
    /// features passed validation and served, because tract was handed `[batch, 9]` in
    /// place of the graph's own input fact.
    #[test]
    fn a_narrower_or_wider_declared_input_is_refused_with_both_widths() {
        for (dims, shape) in [([None, Some(8)], "[N, 8]"), ([None, Some(10)], "[N, 10]")] {
            // The graph as edited (weights still 9 wide) and a model really 8 wide.
            for width in [None, Some(8)] {
                let err = load_edited(&baseline_edited(Some(&dims), width)).unwrap_err();
                match &err {
                    Error::InputWidth { version, input, declared, features } => {
                        assert_eq!((version.as_str(), input.as_str(), *features), ("fraud-baseline/v1", "input", 9));
                        assert!(declared.ends_with(&shape[shape.len() - 4..]), "{declared} vs {shape}");
                    }
                    other => panic!("{shape}: expected an input width refusal, got {other}"),
                }
                assert_eq!(err.kind(), "input_width");
                let text = err.to_string();
                assert!(text.contains(&shape[shape.len() - 4..]) && text.contains("lists 9 features"), "{text}");
            }
        }
        // Rank other than [batch, features].
        let err = load_edited(&baseline_edited(Some(&[None, Some(9), Some(1)]), None)).unwrap_err();
        assert!(matches!(&err, Error::InputWidth { declared, .. } if declared.ends_with(", 9, 1]")), "{err}");
        // The declared width matching is what the shipped models have.
        load_edited(&baseline_edited(Some(&[None, Some(9)]), None)).unwrap();
    }

    /// A symbolic or absent width cannot be compared before planning: it is accepted when
    /// the graph runs on 9 columns, and refused when the planned graph needs 8 (tract
    /// itself plans and runs that one, ignoring a column).
    #[test]
    fn a_symbolic_or_unknown_input_width_is_checked_on_the_planned_graph() {
        let r = rows(20);
        for (dims, declared) in [(Some(&[None, None][..]), ", W]"), (None, "unknown")] {
            let m = load_edited(&baseline_edited(dims, None)).unwrap_or_else(|e| panic!("{dims:?}: {e}"));
            assert_eq!(m.score(&r).unwrap(), model().score(&r).unwrap());
            let err = load_edited(&baseline_edited(dims, Some(8))).unwrap_err();
            match &err {
                Error::InputWidth { declared: d, features: 9, .. } => {
                    assert!(d.contains(declared) && d.contains("9 and 8"), "{d}")
                }
                other => panic!("{dims:?}: an 8-wide model under 9 features: expected an input width refusal, got {other}"),
            }
        }
    }

    /// Regression (issue 24 item 6): an out-of-range `positive_class_index` panicked the
    /// registry watcher (`probs[[r, col]]` in the canary rows).
    #[test]
    fn an_out_of_range_positive_class_is_refused_not_a_panic() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/families");
        for index in [2, 7, usize::MAX] {
            let mut meta = baseline::metadata().unwrap();
            meta.positive_class_index = index;
            let err = LoadedModel::load(meta, baseline::ONNX, &names(), &[1, 16]).unwrap_err();
            match &err {
                Error::PositiveClass { index: i, output, shape, .. } => {
                    assert_eq!((*i, output.as_str()), (index, "probabilities"));
                    assert_eq!(shape, "[1, 2]");
                }
                other => panic!("{index}: expected a positive class refusal, got {other}"),
            }
            assert_eq!(err.kind(), "positive_class");
            assert!(err.to_string().contains(&format!("positive_class_index {index} is out of range")), "{err}");
            // A non-linear graph too (no linear form to guard the index there).
            let dir = tempfile::tempdir().unwrap();
            for file in ["metadata.json", "model.onnx"] {
                std::fs::copy(root.join("mlp").join(file), dir.path().join(file)).unwrap();
            }
            let path = dir.path().join("metadata.json");
            let mut meta: ModelMetadata = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            meta.positive_class_index = index;
            std::fs::write(&path, serde_json::to_string(&meta).unwrap()).unwrap();
            let err = LoadedModel::load_dir(dir.path(), &names(), &[1]).unwrap_err();
            assert!(matches!(err, Error::PositiveClass { .. }), "mlp {index}: {err}");
        }
    }

    #[test]
    fn a_model_with_no_features_is_refused() {
        let mut meta = baseline::metadata().unwrap();
        meta.feature_names.clear();
        let err = LoadedModel::load(meta, baseline::ONNX, &[], &[1]).unwrap_err();
        assert!(matches!(&err, Error::FeatureMismatch { message, .. } if message.contains("no features")), "{err}");
    }
}
