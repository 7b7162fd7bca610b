//! Times tract on each shipped model family at batch sizes 1, 16 and 64 and prints one
//! JSON line per (family, batch): µs per call and per row. `tools/bench/bench_families.py` runs
//! this and onnxruntime on the same rows in one go and prints the ratios.
//!
//!     cargo run -p weir-scorer --example bench_families [--min-ms 500]

use std::path::Path;
use std::time::{Duration, Instant};

use weir_scorer::model::LoadedModel;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let min_ms: u64 = args.iter().position(|a| a == "--min-ms").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(500);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for family in ["logistic", "mlp", "gbt", "forest"] {
        let dir = root.join("../models/families").join(family);
        let meta: weir_schemas::model::ModelMetadata = serde_json::from_str(&std::fs::read_to_string(dir.join("metadata.json"))?)?;
        let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join(format!("tests/golden_{family}.json")))?)?;
        let rows: Vec<f32> = golden["rows"]
            .as_array()
            .ok_or("rows")?
            .iter()
            .flat_map(|r| r.as_array().into_iter().flatten().map(|v| v.as_f64().unwrap_or(0.0) as f32))
            .collect();
        for batch in [1usize, 16, 64] {
            let model = LoadedModel::load_dir(&dir, &meta.feature_names, &[batch])?;
            let input = &rows[..batch * meta.feature_names.len()];
            for _ in 0..3 {
                model.score(input)?;
            }
            let started = Instant::now();
            let mut calls = 0u64;
            while started.elapsed() < Duration::from_millis(min_ms) || calls < 5 {
                std::hint::black_box(model.score(std::hint::black_box(input))?);
                calls += 1;
            }
            let us_per_call = started.elapsed().as_secs_f64() * 1e6 / calls as f64;
            println!(
                "{}",
                serde_json::json!({"engine": "tract", "family": family, "batch": batch, "calls": calls,
                    "us_per_call": us_per_call, "us_per_row": us_per_call / batch as f64})
            );
        }
    }
    Ok(())
}
