//! Golden tests: the learner's metrics against scikit-learn, and its ONNX export against
//! onnxruntime, tract and the model in memory. Expected values come from
//! `tools/golden/learner_golden.py` (committed with its output in `tests/golden/`).

use tract_onnx::prelude::*;
use weir_online_learner::eval::Metrics;
use weir_online_learner::onnx::export;

#[allow(dead_code)]
#[path = "../examples/export_fixture.rs"]
mod fixture;

fn golden(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

fn close(name: &str, got: Option<f64>, want: &serde_json::Value, tol: f64) {
    match (got, want.as_f64()) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= tol, "{name}: weir {g} vs sklearn {w}"),
        (None, None) => {}
        (g, _) => panic!("{name}: weir {g:?} vs sklearn {want}"),
    }
}

#[test]
fn metrics_match_scikit_learn() {
    let g = golden("eval.json");
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for (i, case) in cases.iter().enumerate() {
        let scores: Vec<f64> = case["scores"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let labels: Vec<bool> = case["labels"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
        let m = Metrics::compute(&scores, &labels, 0.5, 10);
        let e = &case["expected"];
        close(&format!("case {i} auc"), m.auc, &e["auc"], 1e-12);
        close(&format!("case {i} log_loss"), m.log_loss, &e["log_loss"], 1e-12);
        close(&format!("case {i} precision"), m.precision, &e["precision"], 1e-12);
        close(&format!("case {i} recall"), m.recall, &e["recall"], 1e-12);
        close(&format!("case {i} calibration_error"), m.calibration_error, &e["calibration_error"], 1e-12);
        close(&format!("case {i} accuracy"), m.accuracy, &e["accuracy"], 1e-12);
    }
}

#[test]
fn export_scores_the_same_in_memory_in_tract_and_in_onnxruntime() {
    let (model, rows) = fixture::fixture();
    let linear = model.linear();
    // The export is deterministic: the committed file onnxruntime ran is this model.
    let bytes = export(&linear, "weir-online-learner export fixture");
    let committed = std::fs::read(format!("{}/tests/golden/linear.onnx", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(bytes, committed, "re-run the example and tools/golden/learner_golden.py");
    let ort: Vec<f64> = golden("linear_expected.json")["probabilities"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(ort.len(), rows.len());

    let k = rows[0].len();
    let plan = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(&bytes))
        .unwrap()
        .with_input_fact(0, f32::fact([rows.len(), k]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let out = plan.run(tvec!(Tensor::from_shape(&[rows.len(), k], &flat).unwrap().into_tvalue())).unwrap();
    let tract = out[0].to_plain_array_view::<f32>().unwrap();
    let mut worst: f64 = 0.0;
    let (mut low, mut high) = (1.0f64, 0.0f64);
    for (i, r) in rows.iter().enumerate() {
        let x: Vec<f64> = r.iter().map(|&v| f64::from(v)).collect();
        let memory = model.predict(&x);
        let t = f64::from(tract[[i, 1]]);
        for (a, b) in [(memory, t), (memory, ort[i]), (t, ort[i])] {
            worst = worst.max((a - b).abs());
        }
        low = low.min(memory);
        high = high.max(memory);
    }
    eprintln!("{} rows, scores {low:.4}..{high:.4}: largest difference among memory, tract, onnxruntime {worst:.2e}", rows.len());
    assert!(worst < 1e-6, "largest difference {worst:e}");
    assert!(low < 0.1 && high > 0.5, "the fixture should span the score range: {low}..{high}");
}
