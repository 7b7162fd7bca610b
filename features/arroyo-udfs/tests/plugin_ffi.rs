//! Loads each UDF's plugin library the way an Arroyo worker does and checks that its answers
//! equal weir's in-process transforms, row for row, nulls included.
//!
//! "The way an Arroyo worker does" (arroyo-udf-host, not on crates.io): `dlopen` the
//! library, look up the symbol `__run: extern "C-unwind" fn(FfiArrays) -> RunResult`, pass
//! the argument columns as Arrow C data interface arrays (`FFI_ArrowArray` +
//! `FFI_ArrowSchema` pairs in a leaked `Vec`, which the plugin takes over and frees), and
//! import the result column from the `FfiArraySchema` it returns. The structs come from
//! `arroyo-udf-plugin` 0.2.0, the version the libraries are built with.
//!
//! The libraries are the crate's `[[example]]` cdylibs, which `cargo test` builds. When one
//! is missing or was built from another definition (e.g. `cargo test --test plugin_ffi`
//! after editing the transforms, which builds no examples), the test builds them with
//! cargo first, so it never checks a stale library.

use std::ffi::{c_char, CStr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use arroyo_udf_plugin::arrow::array::{Array, ArrayData, Float64Array, Int64Array, StringArray};
use arroyo_udf_plugin::arrow::datatypes::DataType;
use arroyo_udf_plugin::arrow::ffi::from_ffi;
use arroyo_udf_plugin::{FfiArraySchema, FfiArrays, RunResult};
use libloading::Library;
use weir_arroyo_udfs::{find, transforms, UDFS};

/// Arroyo's sync UDF entry point, as arroyo-udf-host declares it.
type RunFn = unsafe extern "C-unwind" fn(FfiArrays) -> RunResult;
/// weir's build stamp (see `plugins/*.rs`).
type DefinitionFn = unsafe extern "C" fn() -> *const c_char;

/// 2026-01-01T00:00:00Z, a Thursday.
const NEW_YEAR_2026: i64 = 1_767_225_600_000;

/// `target/<profile>`, from this test binary's path `target/<profile>/deps/<test>`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().and_then(Path::parent).expect("test binary under target/<profile>/deps").to_path_buf()
}

fn library_path(name: &str) -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    profile_dir().join("examples").join(format!("{DLL_PREFIX}{name}{DLL_SUFFIX}"))
}

/// The definition the library at `path` was built from, read through its stamp symbol;
/// None if it is missing or unloadable.
fn built_definition(path: &Path) -> Option<String> {
    // SAFETY: loading our own plugin library, whose initialisers are Rust's and harmless.
    let lib = unsafe { Library::new(path) }.ok()?;
    // SAFETY: `weir_udf_definition` has this signature in every plugins/*.rs and returns a
    // pointer to a NUL-terminated static string.
    unsafe {
        let stamp = lib.get::<DefinitionFn>(b"weir_udf_definition").ok()?;
        Some(CStr::from_ptr(stamp()).to_str().ok()?.to_owned())
    }
}

/// Whether the library file embeds the current definition (its stamp's text). Read as
/// bytes, not loaded: a library once loaded may stay mapped under its path, and a reload
/// after a rebuild would then see the old one.
fn is_current(path: &Path, definition: &str) -> bool {
    let Ok(bytes) = std::fs::read(path) else { return false };
    let stamp = format!("{definition}\0");
    bytes.windows(stamp.len()).any(|w| w == stamp.as_bytes())
}

fn all_current() -> bool {
    UDFS.iter().all(|udf| is_current(&library_path(udf.name), udf.definition))
}

/// Makes sure every plugin library is built from the current definitions; once per run.
fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if all_current() {
            return;
        }
        let profile_dir = profile_dir();
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(other) => other,
            None => panic!("no profile directory in {}", profile_dir.display()),
        };
        let target_dir = profile_dir.parent().expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
        let status = Command::new(cargo)
            .args(["build", "-p", "weir-arroyo-udfs", "--examples", "--profile", profile, "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo to build the plugin libraries");
        assert!(status.success(), "building the plugin libraries failed");
        assert!(all_current(), "plugin libraries under {} are still stale after a build", profile_dir.display());
    });
}

/// One plugin library, loaded.
struct Plugin {
    name: &'static str,
    lib: Library,
}

impl Plugin {
    fn load(name: &'static str) -> Plugin {
        assert!(find(name).is_some(), "{name} is not one of weir's UDFs");
        ensure_built();
        let path = library_path(name);
        // SAFETY: as in `built_definition`.
        let lib = unsafe { Library::new(&path) }.unwrap_or_else(|e| panic!("load {}: {e}", path.display()));
        Plugin { name, lib }
    }

    /// Calls the UDF on one batch, exactly as Arroyo's host does.
    fn run(&self, args: Vec<ArrayData>) -> ArrayData {
        // SAFETY: `#[udf]` exports `__run` with Arroyo's sync signature; the arguments are
        // valid Arrow arrays of the types the UDF declares, all of one length.
        unsafe {
            let run = self.lib.get::<RunFn>(b"__run").unwrap_or_else(|e| panic!("{}: no __run: {e}", self.name));
            match run(FfiArrays::from_vec(args)) {
                RunResult::Ok(FfiArraySchema(array, schema)) => {
                    from_ffi(array, &schema).unwrap_or_else(|e| panic!("{}: bad result array: {e}", self.name))
                }
                RunResult::Err => panic!("{}: the UDF panicked", self.name),
            }
        }
    }
}

/// f64 results compared bit for bit (NaN included), nulls as None.
fn f64_bits(values: impl IntoIterator<Item = Option<f64>>) -> Vec<Option<u64>> {
    values.into_iter().map(|v| v.map(f64::to_bits)).collect()
}

fn as_f64(data: ArrayData) -> Float64Array {
    assert_eq!(data.data_type(), &DataType::Float64);
    Float64Array::from(data)
}

fn as_i64(data: ArrayData) -> Int64Array {
    assert_eq!(data.data_type(), &DataType::Int64);
    Int64Array::from(data)
}

fn doubles() -> Vec<Option<f64>> {
    vec![
        Some(0.0),
        Some(-0.0),
        Some(-3.0),
        Some(std::f64::consts::E - 1.0),
        Some(999.0),
        None,
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
        Some(f64::MIN_POSITIVE),
        Some(f64::MAX),
        Some(1e-300),
        Some(12_345.678),
        None,
    ]
}

fn times() -> Vec<Option<i64>> {
    vec![
        Some(0),
        Some(-1),
        Some(3_599_999),
        Some(3_600_000),
        Some(-3_600_000),
        Some(-3_600_001),
        Some(86_399_999),
        Some(-86_400_001),
        None,
        Some(NEW_YEAR_2026 + 13 * 3_600_000 + 45 * 60_000 + 500),
        Some(NEW_YEAR_2026 + 4 * 86_400_000 - 1),
        Some(-2_208_988_800_000), // 1900-01-01, a Monday
        Some(i64::MIN),
        Some(i64::MAX),
        None,
    ]
}

#[test]
fn log1p_equals_the_in_process_transform() {
    let plugin = Plugin::load("weir_log1p");
    let input = doubles();
    let got = as_f64(plugin.run(vec![Float64Array::from(input.clone()).to_data()]));
    let expected = input.iter().map(|x| x.map(transforms::log1p));
    assert_eq!(f64_bits(got.iter()), f64_bits(expected));
    // And the values themselves, so a transform and plugin wrong alike would still fail.
    assert_eq!(got.value(0), 0.0);
    assert_eq!(got.value(2), 0.0);
    assert!((got.value(3) - 1.0).abs() < 1e-15);
    assert!(got.is_null(5));
    assert_eq!(got.value(6), 0.0); // NaN amounts count as 0
}

#[test]
fn hour_of_day_equals_the_in_process_transform() {
    let plugin = Plugin::load("weir_hour_of_day");
    let input = times();
    let got = as_i64(plugin.run(vec![Int64Array::from(input.clone()).to_data()]));
    let expected: Vec<Option<i64>> = input.iter().map(|t| t.map(transforms::hour_of_day)).collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);
    assert_eq!(
        &got.iter().take(10).collect::<Vec<_>>()[..],
        &[Some(0), Some(23), Some(0), Some(1), Some(23), Some(22), Some(23), Some(23), None, Some(13)]
    );
}

#[test]
fn day_of_week_equals_the_in_process_transform() {
    let plugin = Plugin::load("weir_day_of_week");
    let input = times();
    let got = as_i64(plugin.run(vec![Int64Array::from(input.clone()).to_data()]));
    let expected: Vec<Option<i64>> = input.iter().map(|t| t.map(transforms::day_of_week)).collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);
    // Thursday, Wednesday (-1 ms), ..., Sunday 2026-01-04, Monday 1900-01-01.
    assert_eq!((got.value(0), got.value(1), got.value(10), got.value(11)), (3, 2, 6, 0));
}

#[test]
fn one_hot_equals_the_in_process_transform() {
    let plugin = Plugin::load("weir_one_hot");
    let values = vec![Some("ecom"), Some("atm"), None, Some("ECOM"), Some(""), Some("ecom"), Some("pos"), Some("é")];
    let categories =
        vec![Some("ecom"), Some("ecom"), Some("ecom"), Some("ecom"), Some(""), None, Some("pos"), Some("é")];
    let got = as_f64(
        plugin.run(vec![StringArray::from(values.clone()).to_data(), StringArray::from(categories.clone()).to_data()]),
    );
    let expected = values.iter().zip(&categories).map(|(v, c)| Some(transforms::one_hot((*v)?, (*c)?)));
    assert_eq!(f64_bits(got.iter()), f64_bits(expected));
    assert_eq!(
        got.iter().collect::<Vec<_>>(),
        [Some(1.0), Some(0.0), None, Some(0.0), Some(1.0), None, Some(1.0), Some(1.0)]
    );
}

#[test]
fn ratio_to_mean_equals_the_in_process_transform() {
    let plugin = Plugin::load("weir_ratio_to_mean");
    let x =
        vec![Some(75.0), Some(10.0), Some(10.0), Some(10.0), Some(f64::NAN), Some(10.0), None, Some(5.0), Some(0.0)];
    let mean =
        vec![Some(50.0), Some(0.0), Some(-0.0), Some(-4.0), Some(2.0), Some(f64::NAN), Some(1.0), None, Some(3.0)];
    let got =
        as_f64(plugin.run(vec![Float64Array::from(x.clone()).to_data(), Float64Array::from(mean.clone()).to_data()]));
    let expected = x.iter().zip(&mean).map(|(x, m)| Some(transforms::ratio_to_mean((*x)?, (*m)?)));
    assert_eq!(f64_bits(got.iter()), f64_bits(expected));
    assert_eq!((got.value(0), got.value(1), got.value(2), got.value(3), got.value(5)), (1.5, 1.0, 1.0, 1.0, 1.0));
    assert!(got.value(4).is_nan());
    assert!(got.is_null(6) && got.is_null(7));
}

#[test]
fn sliced_empty_and_large_batches() {
    let plugin = Plugin::load("weir_hour_of_day");
    // A slice: the FFI array carries an offset into shared buffers.
    let all = Int64Array::from(times());
    let slice = all.slice(3, 8);
    let got = as_i64(plugin.run(vec![slice.to_data()]));
    let expected: Vec<Option<i64>> = slice.iter().map(|t| t.map(transforms::hour_of_day)).collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);
    // An empty batch.
    let got = plugin.run(vec![Int64Array::from(Vec::<i64>::new()).to_data()]);
    assert_eq!(got.len(), 0);
    // A large one: a week in 1-minute steps, every 7th row null.
    let input: Vec<Option<i64>> =
        (0..7 * 24 * 60).map(|i| (i % 7 != 0).then_some(NEW_YEAR_2026 - 86_400_000 + i * 60_000)).collect();
    let got = as_i64(plugin.run(vec![Int64Array::from(input.clone()).to_data()]));
    let expected: Vec<Option<i64>> = input.iter().map(|t| t.map(transforms::hour_of_day)).collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), expected);
    assert_eq!(got.null_count(), input.iter().filter(|t| t.is_none()).count());
}

#[test]
fn each_library_is_one_sync_udf_built_from_its_definition() {
    for udf in &UDFS {
        let plugin = Plugin::load(udf.name);
        // SAFETY: only looking symbols up.
        unsafe {
            assert!(plugin.lib.get::<RunFn>(b"__run").is_ok(), "{}", udf.name);
            // Arroyo treats a library with `__start` as an async UDF.
            assert!(plugin.lib.get::<unsafe extern "C" fn()>(b"__start").is_err(), "{}", udf.name);
        }
        assert_eq!(built_definition(&library_path(udf.name)).as_deref(), Some(udf.definition));
    }
}
