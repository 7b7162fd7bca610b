// Arroyo UDF `weir_hour_of_day(BIGINT) -> BIGINT`: hour of the day, UTC, 0-23, of an event
// time in milliseconds since the Unix epoch.
// NULL in any argument gives NULL out (the `#[udf]` wrapper skips the call).
//
// The UDF's definition for an Arroyo cluster. In weir's repository (features/arroyo-udfs/
// udfs/) it brings weir's transforms in with a `#[path]` module; the crate's build script
// puts the text of `features/src/transforms.rs` inline instead (`mod transforms { ... }`),
// since Arroyo compiles each UDF from a single file. `cargo run -p weir-arroyo-udfs --
// show weir_hour_of_day` prints that form.
use arroyo_udf_plugin::udf;

#[allow(dead_code)] // each UDF uses one of the transforms
#[path = "../../src/transforms.rs"]
mod transforms;

#[udf]
fn weir_hour_of_day(t_ms: i64) -> i64 {
    transforms::hour_of_day(t_ms)
}
