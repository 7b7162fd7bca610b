//! Prints tract's positive-class probabilities for rows, one JSON array per model file:
//! a debugging aid for export experiments (`tools/` scripts compare them to onnxruntime).
//!
//!     cargo run -p weir-scorer --example tract_probe -- ROWS.json MODEL.onnx...
//!
//! ROWS.json is a JSON array of equal-length float arrays; the graph's first input is fed
//! `[rows, columns]` and its output named `probabilities` is read, column 1.

use std::io::Cursor;

use tract_onnx::prelude::*;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rows: Vec<Vec<f32>> = serde_json::from_str(&std::fs::read_to_string(&args[0])?)?;
    let (n, k) = (rows.len(), rows[0].len());
    let flat: Vec<f32> = rows.into_iter().flatten().collect();
    for path in &args[1..] {
        let bytes = std::fs::read(path)?;
        let result = (|| -> TractResult<Vec<f32>> {
            let mut model = tract_onnx::onnx().model_for_read(&mut Cursor::new(&bytes))?;
            model = model.with_input_fact(0, f32::fact([n, k]).into())?;
            let outputs = model.output_outlets()?.to_vec();
            let slot = outputs
                .iter()
                .position(|o| model.outlet_label(*o) == Some("probabilities") || model.node(o.node).name == "probabilities")
                .unwrap_or(outputs.len() - 1);
            let plan = model.into_optimized()?.into_runnable()?;
            let out = plan.run(tvec!(Tensor::from_shape(&[n, k], &flat)?.into_tvalue()))?;
            let probs = out[slot].to_plain_array_view::<f32>()?;
            Ok((0..n).map(|r| probs[[r, 1]]).collect())
        })();
        match result {
            Ok(scores) => println!("{}", serde_json::json!({"model": path, "scores": scores})),
            Err(e) => println!("{}", serde_json::json!({"model": path, "error": format!("{e:#}")})),
        }
    }
    Ok(())
}
