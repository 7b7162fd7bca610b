//! Times weir's tree-ensemble ops inside tract on every model of models/trees (made by
//! tools/train/train_trees.py) at batch sizes 1, 16 and 64, and prints one JSON line per
//! (model, batch): µs per call and per row. `tools/bench/bench_families.py --trees` runs this
//! (release build) and onnxruntime on the same rows in one go and prints the ratios.
//!
//!     cargo run --release -p weir-scorer --example bench_trees [--min-ms 300] [--only NAME] [--layout]
//!
//! `--layout` also prints each ensemble's layout (step, payload, depths) to stderr.
//!
//! Each call does what serving does: copy the rows into a tensor, run the optimized
//! plan (fixed batch shape, one thread), read the scores.

use std::path::Path;
use std::time::{Duration, Instant};

use tract_onnx::prelude::*;

fn splitmix64(x: u64) -> u64 {
    let x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// tools/train/train_trees.py's scoring rows.
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let min_ms: u64 = arg("--min-ms").and_then(|v| v.parse().ok()).unwrap_or(300);
    let only = arg("--only");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join("tests/trees/manifest.json"))?)?;
    let k = manifest["features"].as_u64().ok_or("features")? as usize;
    let seed = manifest["seed"].as_u64().ok_or("seed")?;
    let x = rows(seed, 64, k);
    for m in manifest["models"].as_array().ok_or("models")? {
        let name = m["name"].as_str().ok_or("name")?;
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let path = root.join("../models/trees").join(format!("{name}.onnx"));
        let outputs = m["outputs"].as_array().ok_or("outputs")?.len();
        // Double models get the same rows as doubles.
        let double = m["input_type"].as_str() == Some("f64");
        let dt = if double { f64::datum_type() } else { f32::datum_type() };
        let x64: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
        for batch in [1usize, 16, 64] {
            let plan = weir_scorer::trees::onnx()
                .model_for_path(&path)?
                .with_input_fact(0, InferenceFact::dt_shape(dt, [batch, k]))?
                .into_optimized()?
                .into_runnable()?;
            if batch == 1 && args.iter().any(|a| a == "--layout") {
                for node in plan.model().nodes() {
                    if node.op().name().starts_with("weir.") {
                        eprintln!("{name}: {}", node.op().info()?.join(", "));
                    }
                }
            }
            let (input, input64) = (&x[..batch * k], &x64[..batch * k]);
            let call = || -> TractResult<f64> {
                let t = if double { Tensor::from_shape(&[batch, k], input64)? } else { Tensor::from_shape(&[batch, k], input)? };
                let out = plan.run(tvec!(t.into_tvalue()))?;
                let scores = &out[outputs - 1];
                Ok(if scores.datum_type() == f64::datum_type() {
                    scores.to_plain_array_view::<f64>()?.iter().next().copied().unwrap_or(0.0)
                } else {
                    f64::from(scores.to_plain_array_view::<f32>()?.iter().next().copied().unwrap_or(0.0))
                })
            };
            for _ in 0..10 {
                call()?;
            }
            let started = Instant::now();
            let mut calls = 0u64;
            while started.elapsed() < Duration::from_millis(min_ms) || calls < 5 {
                std::hint::black_box(call()?);
                calls += 1;
            }
            let us_per_call = started.elapsed().as_secs_f64() * 1e6 / calls as f64;
            println!(
                "{}",
                serde_json::json!({"engine": "weir", "model": name, "batch": batch, "calls": calls,
                    "us_per_call": us_per_call, "us_per_row": us_per_call / batch as f64})
            );
        }
    }
    Ok(())
}
