// Arroyo UDF `weir_hour_of_day(BIGINT) -> BIGINT`: hour of the day, UTC, 0-23, of an event time in
// milliseconds since the Unix epoch.
// NULL in any argument gives NULL out (the `#[udf]` wrapper skips the call).
//
// This file is the UDF's definition for an Arroyo cluster, with one change made by this
// crate's build script: the `#[path]` module below is replaced by the text of weir's
// transforms (`features/src/transforms.rs`) in an inline `mod transforms { ... }`, since
// Arroyo compiles each UDF from a single file. `cargo run -p weir-arroyo-udfs -- show weir_hour_of_day`
// prints the result.
use arroyo_udf_plugin::udf;

#[allow(dead_code)] // each UDF uses one of the transforms
#[path = "../../src/transforms.rs"]
mod transforms;

#[udf]
fn weir_hour_of_day(t_ms: i64) -> i64 {
    transforms::hour_of_day(t_ms)
}
