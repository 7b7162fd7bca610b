// Arroyo UDF `weir_day_of_week(BIGINT) -> BIGINT`: day of the week, UTC, 0 = Monday ... 6 = Sunday, of
// an event time in milliseconds since the Unix epoch.
// NULL in any argument gives NULL out (the `#[udf]` wrapper skips the call).
//
// This file is the UDF's definition for an Arroyo cluster, with one change made by this
// crate's build script: the `#[path]` module below is replaced by the text of weir's
// transforms (`features/src/transforms.rs`) in an inline `mod transforms { ... }`, since
// Arroyo compiles each UDF from a single file. `cargo run -p weir-arroyo-udfs -- show weir_day_of_week`
// prints the result.
use arroyo_udf_plugin::udf;

#[allow(dead_code)] // each UDF uses one of the transforms
#[path = "../../src/transforms.rs"]
mod transforms;

#[udf]
fn weir_day_of_week(t_ms: i64) -> i64 {
    transforms::day_of_week(t_ms)
}
