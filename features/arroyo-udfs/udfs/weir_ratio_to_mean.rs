// Arroyo UDF `weir_ratio_to_mean(DOUBLE, DOUBLE) -> DOUBLE`: x / mean, or 1.0 when the mean is not
// positive (no history yet).
// NULL in any argument gives NULL out (the `#[udf]` wrapper skips the call).
//
// This file is the UDF's definition for an Arroyo cluster, with one change made by this
// crate's build script: the `#[path]` module below is replaced by the text of weir's
// transforms (`features/src/transforms.rs`) in an inline `mod transforms { ... }`, since
// Arroyo compiles each UDF from a single file. `cargo run -p weir-arroyo-udfs -- show weir_ratio_to_mean`
// prints the result.
use arroyo_udf_plugin::udf;

#[allow(dead_code)] // each UDF uses one of the transforms
#[path = "../../src/transforms.rs"]
mod transforms;

#[udf]
fn weir_ratio_to_mean(x: f64, mean: f64) -> f64 {
    transforms::ratio_to_mean(x, mean)
}
