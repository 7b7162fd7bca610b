// Arroyo UDF `weir_log1p(DOUBLE) -> DOUBLE`: weir's `amount_log` feature, ln(1 + max(x, 0)).
// NULL in any argument gives NULL out (the `#[udf]` wrapper skips the call).
//
// The UDF's definition for an Arroyo cluster. In weir's repository (features/arroyo-udfs/
// udfs/) it brings weir's transforms in with a `#[path]` module; the crate's build script
// puts the text of `features/src/transforms.rs` inline instead (`mod transforms { ... }`),
// since Arroyo compiles each UDF from a single file. `cargo run -p weir-arroyo-udfs --
// show weir_log1p` prints that form.
use arroyo_udf_plugin::udf;

#[allow(dead_code)] // each UDF uses one of the transforms
#[path = "../../src/transforms.rs"]
mod transforms;

#[udf]
fn weir_log1p(x: f64) -> f64 {
    transforms::log1p(x)
}
