//! Parity of weir's tree-ensemble ops (run inside tract) with onnxruntime, on the models
//! of three exporters and on hand-built ensembles covering every rule, made by
//! `tools/train/train_trees.py` with onnxruntime's outputs committed next to this file.
//! The scoring rows are not committed: both sides make them from the same seed (double
//! models: rows on and one ulp around their thresholds, listed in the manifest).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

const TOLERANCE: f32 = 1e-5;
/// Relative, for double outputs.
const TOLERANCE_F64: f64 = 1e-12;

#[derive(Deserialize)]
struct Manifest {
    rows: usize,
    features: usize,
    seed: u64,
    models: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    name: String,
    rows: usize,
    exporter: String,
    sha256: String,
    outputs: Vec<OutputEntry>,
    /// "f64" for a double input (default float).
    #[serde(default)]
    input_type: Option<String>,
    /// Double models: each column's split thresholds (IEEE bits), for the
    /// threshold-hugging rows.
    #[serde(default)]
    hug_bits: Option<Vec<Vec<u64>>>,
}

#[derive(Deserialize)]
struct OutputEntry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    #[serde(default)]
    classlabels: Vec<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn manifest() -> Manifest {
    let text = std::fs::read_to_string(root().join("tests/trees/manifest.json")).expect("manifest: run tools/train/train_trees.py");
    serde_json::from_str(&text).expect("manifest parses")
}

fn splitmix64(x: u64) -> u64 {
    let x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The scoring rows of tools/train/train_trees.py (`rows(seed, n)`), bit for bit.
fn rows(seed: u64, n: usize, k: usize) -> Vec<f32> {
    (0..(n * k) as u64)
        .map(|idx| {
            let h = splitmix64(seed.wrapping_mul(1_000_003).wrapping_add(idx));
            if splitmix64(h).is_multiple_of(20) {
                return f32::NAN;
            }
            let top = (h >> 40) as f64;
            if idx as usize % k == 7 { (top % 6.0) as f32 } else { (top / f64::from(1u32 << 24) * 8.0 - 4.0) as f32 }
        })
        .collect()
}

/// tools/train/train_trees.py's `hug_rows`: double rows on and one ulp around the model's
/// thresholds, where comparing in float instead of double takes the wrong branch.
fn hug_rows(seed: u64, n: usize, k: usize, thresholds: &[Vec<f64>]) -> Vec<f64> {
    let base = rows(seed, n, k);
    (0..n * k)
        .map(|i| {
            let g = splitmix64((seed + 100).wrapping_mul(1_000_003).wrapping_add(i as u64));
            let th = &thresholds[i % k];
            if g.is_multiple_of(4) || th.is_empty() {
                return f64::from(base[i]);
            }
            let t = th[((g >> 8) % th.len() as u64) as usize];
            match (g >> 40) % 3 {
                0 => t.next_down(),
                1 => t,
                _ => t.next_up(),
            }
        })
        .collect()
}

/// A model's scoring rows, in its input type.
enum Rows {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Rows {
    fn of(m: &Manifest, entry: &ModelEntry, n: usize) -> Rows {
        match entry.input_type.as_deref() {
            Some("f64") => {
                let bits = entry.hug_bits.as_deref().expect("a double model lists its thresholds");
                let thresholds: Vec<Vec<f64>> = bits.iter().map(|col| col.iter().map(|&b| f64::from_bits(b)).collect()).collect();
                Rows::F64(hug_rows(m.seed, n, m.features, &thresholds))
            }
            None | Some("f32") => Rows::F32(rows(m.seed, n, m.features)),
            Some(other) => panic!("{}: unknown input type {other}", entry.name),
        }
    }

    fn datum_type(&self) -> DatumType {
        match self {
            Rows::F32(_) => f32::datum_type(),
            Rows::F64(_) => f64::datum_type(),
        }
    }

    /// Rows `start..start + b` as a [b, k] tensor.
    fn tensor(&self, start: usize, b: usize, k: usize) -> Tensor {
        match self {
            Rows::F32(x) => Tensor::from_shape(&[b, k], &x[start * k..(start + b) * k]).unwrap(),
            Rows::F64(x) => Tensor::from_shape(&[b, k], &x[start * k..(start + b) * k]).unwrap(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Rows::F32(x) => x.len(),
            Rows::F64(x) => x.len(),
        }
    }
}

/// One output's values: scores, or labels.
enum Values {
    Scores(Vec<f32>),
    Scores64(Vec<f64>),
    Labels(Vec<i64>),
    Strings(Vec<String>),
}

fn expected(entry: &ModelEntry) -> Vec<Values> {
    let bytes = std::fs::read(root().join(format!("tests/trees/{}.out", entry.name))).unwrap();
    let mut at = 0;
    entry
        .outputs
        .iter()
        .map(|o| {
            let n: usize = o.shape.iter().product();
            match o.dtype.as_str() {
                "f32" => {
                    let v = bytes[at..at + 4 * n].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
                    at += 4 * n;
                    Values::Scores(v)
                }
                "f64" => {
                    let v = bytes[at..at + 8 * n].chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
                    at += 8 * n;
                    Values::Scores64(v)
                }
                "i8" => {
                    let v = bytes[at..at + n].iter().map(|&b| i64::from(b as i8)).collect();
                    at += n;
                    Values::Labels(v)
                }
                "string_index" => {
                    let v = bytes[at..at + n].iter().map(|&b| o.classlabels[b as usize].clone()).collect();
                    at += n;
                    Values::Strings(v)
                }
                other => panic!("{}: unknown dtype {other}", entry.name),
            }
        })
        .collect()
}

fn plan(path: &Path, batch: usize, k: usize, dt: DatumType) -> std::sync::Arc<TypedRunnableModel> {
    weir_scorer::trees::onnx()
        .model_for_path(path)
        .and_then(|m| m.with_input_fact(0, InferenceFact::dt_shape(dt, [batch, k])))
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
}

/// Runs `x` (n rows) through plans of batch 64 and 16 (the tail), and returns each
/// output concatenated.
fn run_all(path: &Path, x: &Rows, k: usize, n_outputs: usize) -> Vec<Vec<TValue>> {
    let n = x.len() / k;
    let big = plan(path, 64, k, x.datum_type());
    let small = plan(path, 16, k, x.datum_type());
    let mut outs: Vec<Vec<TValue>> = vec![Vec::new(); n_outputs];
    let mut start = 0;
    while start < n {
        let (p, b) = if n - start >= 64 { (&big, 64) } else { (&small, 16) };
        assert!(n - start >= b, "row count {n} must be a multiple of 16");
        let result = p.run(tvec!(x.tensor(start, b, k).into_tvalue())).unwrap();
        assert_eq!(result.len(), n_outputs);
        for (i, r) in result.into_iter().enumerate() {
            outs[i].push(r);
        }
        start += b;
    }
    outs
}

fn check_model(m: &Manifest, entry: &ModelEntry) -> f64 {
    let path = root().join("../models/trees").join(format!("{}.onnx", entry.name));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&bytes)), entry.sha256, "{}: model changed, rerun tools/train/train_trees.py", entry.name);
    let k = m.features;
    let x = Rows::of(m, entry, entry.rows);
    let got = run_all(&path, &x, k, entry.outputs.len());
    let want = expected(entry);
    let mut worst = 0f64;
    for (o, (chunks, want)) in entry.outputs.iter().zip(got.iter().zip(want)) {
        match want {
            Values::Scores(w) => {
                let g: Vec<f32> = chunks
                    .iter()
                    .flat_map(|c| c.to_plain_array_view::<f32>().unwrap().iter().copied().collect::<Vec<_>>())
                    .collect();
                assert_eq!(g.len(), w.len(), "{} {}", entry.name, o.name);
                let cols = o.shape.get(1).copied().unwrap_or(1);
                for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                    let ok = (a - b).abs() <= TOLERANCE || (a.is_nan() && b.is_nan());
                    assert!(ok, "{} ({}) {} row {} col {}: weir {a} vs onnxruntime {b}", entry.name, entry.exporter, o.name, i / cols, i % cols);
                    worst = worst.max(f64::from((a - b).abs()));
                }
                // Not a constant model: the rows reach the trees.
                assert!(w.iter().any(|v| (v - w[0]).abs() > 1e-3), "{}: constant output", entry.name);
            }
            Values::Scores64(w) => {
                let g: Vec<f64> = chunks
                    .iter()
                    .flat_map(|c| c.to_plain_array_view::<f64>().unwrap().iter().copied().collect::<Vec<_>>())
                    .collect();
                assert_eq!(g.len(), w.len(), "{} {}", entry.name, o.name);
                let cols = o.shape.get(1).copied().unwrap_or(1);
                for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                    // Summed in double like onnxruntime, in the same order: equal but for
                    // the last bits of the post-transform.
                    let ok = (a - b).abs() <= TOLERANCE_F64 * b.abs().max(1.0) || (a.is_nan() && b.is_nan());
                    assert!(ok, "{} ({}) {} row {} col {}: weir {a} vs onnxruntime {b}", entry.name, entry.exporter, o.name, i / cols, i % cols);
                    worst = worst.max((a - b).abs());
                }
                assert!(w.iter().any(|v| (v - w[0]).abs() > 1e-3), "{}: constant output", entry.name);
            }
            Values::Labels(w) => {
                let g: Vec<i64> =
                    chunks.iter().flat_map(|c| c.cast_to::<i64>().unwrap().to_plain_array_view::<i64>().unwrap().iter().copied().collect::<Vec<_>>()).collect();
                assert_eq!(g.len(), w.len());
                for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                    assert_eq!(a, b, "{} {} row {i}: weir label {a} vs onnxruntime {b}", entry.name, o.name);
                }
            }
            Values::Strings(w) => {
                let g: Vec<String> = chunks
                    .iter()
                    .flat_map(|c| c.to_plain_array_view::<String>().unwrap().iter().cloned().collect::<Vec<_>>())
                    .collect();
                assert_eq!(g, w, "{} {}", entry.name, o.name);
            }
        }
    }
    worst
}

/// Every committed model: weir's outputs (scores to 1e-5, labels exactly) equal
/// onnxruntime's on 10 000 rows (2 000 for the hand-built ones), 5 % of values NaN.
#[test]
fn tree_models_match_onnxruntime() {
    let m = manifest();
    assert!(m.models.len() >= 20, "{} models", m.models.len());
    let x = rows(m.seed, m.rows, m.features);
    assert_eq!(x.iter().filter(|v| v.is_nan()).count() * 100 / x.len(), 5);
    for entry in &m.models {
        let worst = check_model(&m, entry);
        eprintln!("{:<22} {:<70} max |weir - onnxruntime| {worst:.1e}", entry.name, entry.exporter);
    }
}

/// A plan of batch 1 scores every row as the batched plans do (first 256 rows).
#[test]
fn one_row_at_a_time_equals_batched() {
    let m = manifest();
    let k = m.features;
    for entry in &m.models {
        let x = Rows::of(&m, entry, 256);
        let path = root().join("../models/trees").join(format!("{}.onnx", entry.name));
        let batched = run_all(&path, &x, k, entry.outputs.len());
        let one = plan(&path, 1, k, x.datum_type());
        let scores_at = entry.outputs.len() - 1;
        let as_f64 = |c: &TValue| -> Vec<f64> { c.cast_to::<f64>().unwrap().to_plain_array_view::<f64>().unwrap().iter().copied().collect() };
        let all: Vec<f64> = batched[scores_at].iter().flat_map(as_f64).collect();
        let cols = all.len() / 256;
        for r in 0..256 {
            let out = one.run(tvec!(x.tensor(r, 1, k).into_tvalue())).unwrap();
            let got = as_f64(&out[scores_at]);
            let want = &all[r * cols..(r + 1) * cols];
            for (a, b) in got.iter().zip(want) {
                assert!(a == b || (a.is_nan() && b.is_nan()), "{} row {r}: one {a} vs batch {b}", entry.name);
            }
        }
    }
}

/// scikit-learn's binary gradient boosting as skl2onnx writes it (one base value,
/// LOGISTIC): tract's own op refuses it, weir's loads it (and scores it like
/// onnxruntime: `tree_models_match_onnxruntime`).
#[test]
fn binary_gradient_boosting_loads_where_stock_tract_refuses_it() {
    let path = root().join("../models/trees/sk_gbt_binary.onnx");
    let stock = tract_onnx::onnx()
        .model_for_path(&path)
        .and_then(|m| m.with_input_fact(0, f32::fact([4, 8]).into()))
        .and_then(|m| m.into_optimized());
    let err = format!("{:#}", stock.expect_err("stock tract 0.23.9 refuses one base value"));
    assert!(err.contains("base_values"), "{err}");
    plan(&path, 4, 8, f32::datum_type());
}

/// What weir does not implement is refused at load, naming the op and the attribute.
#[test]
fn unsupported_attributes_are_refused_naming_op_and_attribute() {
    let onnx = weir_scorer::trees::onnx();
    let path = root().join("../models/trees/sk_gbt_binary.onnx");
    let load_with = |edit: &dyn Fn(&mut tract_onnx::pb::NodeProto)| -> String {
        let mut proto = onnx.proto_model_for_path(&path).unwrap();
        let node = proto.graph.as_mut().unwrap().node.iter_mut().find(|n| n.op_type == "TreeEnsembleClassifier").unwrap();
        edit(node);
        format!("{:#}", onnx.model_for_proto_model(&proto).expect_err("refused"))
    };
    let err = load_with(&|n| {
        let mut extra = n.attribute[0].clone();
        extra.name = "nodes_frobnicate".into();
        n.attribute.push(extra);
    });
    assert!(err.contains("TreeEnsembleClassifier") && err.contains("unsupported attribute(s) nodes_frobnicate"), "{err}");
    let err = load_with(&|n| {
        let modes = n.attribute.iter_mut().find(|a| a.name == "nodes_modes").unwrap();
        modes.strings[0] = b"BRANCH_SOMETIMES".to_vec();
    });
    assert!(err.contains("nodes_modes") && err.contains("BRANCH_SOMETIMES"), "{err}");
    let err = load_with(&|n| {
        let post = n.attribute.iter_mut().find(|a| a.name == "post_transform").unwrap();
        post.s = b"TANH".to_vec();
    });
    assert!(err.contains("post_transform") && err.contains("TANH"), "{err}");
    let err = load_with(&|n| {
        let ids = n.attribute.iter_mut().find(|a| a.name == "nodes_falsenodeids").unwrap();
        ids.ints.pop();
    });
    assert!(err.contains("nodes_falsenodeids") && err.contains("entries"), "{err}");
    let err = load_with(&|n| n.domain = "com.example".into());
    assert!(err.contains("domain"), "{err}");
}


/// `TreeEnsemble` (opset 5): what weir does not implement or cannot read is refused at
/// load, naming the op and the attribute; a half-float input is refused (onnxruntime
/// has no such kernel either).
#[test]
fn tree_ensemble_refusals_name_op_and_attribute() {
    let onnx = weir_scorer::trees::onnx();
    let path = root().join("../models/trees/v5_spec_member.onnx");
    let load_with = |edit: &dyn Fn(&mut tract_onnx::pb::NodeProto)| -> String {
        let mut proto = onnx.proto_model_for_path(&path).unwrap();
        let node = proto.graph.as_mut().unwrap().node.iter_mut().find(|n| n.op_type == "TreeEnsemble").unwrap();
        edit(node);
        format!("{:#}", onnx.model_for_proto_model(&proto).expect_err("refused"))
    };
    let err = load_with(&|n| {
        let mut extra = n.attribute[0].clone();
        extra.name = "base_values".into();
        n.attribute.push(extra);
    });
    assert!(err.contains("TreeEnsemble") && err.contains("unsupported attribute(s) base_values"), "{err}");
    let err = load_with(&|n| n.attribute.retain(|a| a.name != "n_targets"));
    assert!(err.contains("TreeEnsemble") && err.contains("n_targets"), "{err}");
    let err = load_with(&|n| {
        let post = n.attribute.iter_mut().find(|a| a.name == "post_transform").unwrap();
        post.i = 9;
    });
    assert!(err.contains("post_transform 9"), "{err}");
    let err = load_with(&|n| {
        let modes = n.attribute.iter_mut().find(|a| a.name == "nodes_modes").unwrap();
        modes.t.as_mut().unwrap().raw_data[0] = 7;
    });
    assert!(err.contains("nodes_modes") && err.contains("mode 7"), "{err}");
    let err = load_with(&|n| n.attribute.retain(|a| a.name != "membership_values"));
    assert!(err.contains("membership_values"), "{err}");
    let err = load_with(&|n| {
        let roots = n.attribute.iter_mut().find(|a| a.name == "tree_roots").unwrap();
        roots.ints[0] = 100_000;
    });
    assert!(err.contains("tree_roots") && err.contains("100000"), "{err}");
    let half = onnx
        .model_for_path(&path)
        .and_then(|m| m.with_input_fact(0, InferenceFact::dt_shape(f16::datum_type(), [4, 8])))
        .and_then(|m| m.into_optimized());
    let err = format!("{:#}", half.expect_err("half floats refused"));
    assert!(err.contains("TreeEnsemble") && err.contains("F16"), "{err}");
}
