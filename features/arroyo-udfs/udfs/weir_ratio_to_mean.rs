// Arroyo UDF `weir_ratio_to_mean(DOUBLE, DOUBLE) -> DOUBLE`: x / mean, or 1.0 when the mean
// is not positive (no history yet).
// NULL in any argument gives NULL out (the `#[udf]` wrapper skips the call).
//
// The UDF's definition for an Arroyo cluster. In weir's repository (features/arroyo-udfs/
// udfs/) it brings weir's transforms in with a `#[path]` module; the crate's build script
// puts the text of `features/src/transforms.rs` inline instead (`mod transforms { ... }`),
// since Arroyo compiles each UDF from a single file. `cargo run -p weir-arroyo-udfs --
// show weir_ratio_to_mean` prints that form.
use arroyo_udf_plugin::udf;

#[allow(dead_code)] // each UDF uses one of the transforms
#[path = "../../src/transforms.rs"]
mod transforms;

#[udf]
fn weir_ratio_to_mean(x: f64, mean: f64) -> f64 {
    transforms::ratio_to_mean(x, mean)
}
