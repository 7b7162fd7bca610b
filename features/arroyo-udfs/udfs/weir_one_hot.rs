// Arroyo UDF `weir_one_hot(TEXT, TEXT) -> DOUBLE`: 1.0 if the value is the category (exact,
// case-sensitive match), else 0.0.
// NULL in any argument gives NULL out (the `#[udf]` wrapper skips the call).
//
// The UDF's definition for an Arroyo cluster. In weir's repository (features/arroyo-udfs/
// udfs/) it brings weir's transforms in with a `#[path]` module; the crate's build script
// puts the text of `features/src/transforms.rs` inline instead (`mod transforms { ... }`),
// since Arroyo compiles each UDF from a single file. `cargo run -p weir-arroyo-udfs --
// show weir_one_hot` prints that form.
use arroyo_udf_plugin::udf;

#[allow(dead_code)] // each UDF uses one of the transforms
#[path = "../../src/transforms.rs"]
mod transforms;

#[udf]
fn weir_one_hot(value: &str, category: &str) -> f64 {
    transforms::one_hot(value, category)
}
