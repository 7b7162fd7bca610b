//! Trains the learner on a seeded synthetic stream and writes its ONNX export and the
//! rows to check it on: the fixture `tools/golden/learner_golden.py` runs through onnxruntime.
//!
//! `cargo run -p weir-online-learner --example export_fixture -- online-learner/tests/golden`

use weir_online_learner::config::FtrlConfig;
use weir_online_learner::model::OnlineModel;
use weir_online_learner::onnx::export;

/// The model and rows the golden test rebuilds: a seeded stream where fraud is large
/// amounts in the small hours, with features on very different scales.
pub fn fixture() -> (OnlineModel, Vec<Vec<f32>>) {
    let names: Vec<String> = ["amount_log", "hour_of_day", "card_amount_sum_1h", "channel_ecom"].iter().map(|s| s.to_string()).collect();
    let mut m = OnlineModel::new(names, &FtrlConfig { seed: 11, ..FtrlConfig::default() }).expect("valid params");
    let mut state = 20261126u64;
    let mut rnd = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut rows = Vec::new();
    for i in 0..4000 {
        // f32 features, as the scorer hands them over.
        let x: Vec<f32> = vec![(1.0 + 7.0 * rnd()) as f32, (24.0 * rnd()).floor() as f32, (5000.0 * rnd()) as f32, (rnd() < 0.3) as u8 as f32];
        let fraud = x[0] > 6.0 && x[1] < 6.0 || rnd() < 0.01;
        let xf: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        m.learn(&xf, fraud).expect("learn");
        if i % 40 == 0 {
            rows.push(x);
        }
    }
    (m, rows)
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "online-learner/tests/golden".into());
    let (model, rows) = fixture();
    let bytes = export(&model.linear(), "weir-online-learner export fixture");
    std::fs::write(format!("{dir}/linear.onnx"), &bytes).expect("write onnx");
    let text = serde_json::to_string(&serde_json::json!({ "rows": rows })).expect("json");
    std::fs::write(format!("{dir}/linear_rows.json"), text).expect("write rows");
    eprintln!("wrote {dir}/linear.onnx ({} bytes) and {} rows", bytes.len(), rows.len());
}
