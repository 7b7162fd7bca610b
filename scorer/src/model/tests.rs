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
    let golden: Golden = serde_json::from_str(include_str!("../../tests/golden_baseline.json")).unwrap();
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
