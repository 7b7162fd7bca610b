//! The Arroyo plugin library for the UDF `weir_one_hot`: compiled from exactly the definition
//! an Arroyo cluster is given (`udfs/weir_one_hot.rs` with weir's transforms inlined by
//! `build.rs`), plus one symbol of weir's own.

include!(concat!(env!("OUT_DIR"), "/weir_one_hot.rs"));

/// The definition this library was compiled from, NUL-terminated, so that the FFI test can
/// tell a current build from a stale one. Not part of Arroyo's interface, which only looks
/// up `__run`.
#[no_mangle]
pub extern "C" fn weir_udf_definition() -> *const std::ffi::c_char {
    concat!(include_str!(concat!(env!("OUT_DIR"), "/weir_one_hot.rs")), "\0").as_ptr().cast()
}
