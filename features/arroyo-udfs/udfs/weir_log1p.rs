// Arroyo UDF `weir_log1p(DOUBLE) -> DOUBLE`: weir's `amount_log` feature, ln(1 + max(x, 0)).
// NULL in any argument gives NULL out (the `#[udf]` wrapper skips the call).
//
// This file is the UDF's definition for an Arroyo cluster, with one change made by this
// crate's build script: the `#[path]` module below is replaced by the text of weir's
// transforms (`features/src/transforms.rs`) in an inline `mod transforms { ... }`, since
// Arroyo compiles each UDF from a single file. `cargo run -p weir-arroyo-udfs -- show weir_log1p`
// prints the result.
use arroyo_udf_plugin::udf;

#[allow(dead_code)] // each UDF uses one of the transforms
#[path = "../../src/transforms.rs"]
mod transforms;

#[udf]
fn weir_log1p(x: f64) -> f64 {
    transforms::log1p(x)
}
