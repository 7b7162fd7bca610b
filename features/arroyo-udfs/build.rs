//! Writes each UDF's Arroyo definition to `OUT_DIR/<name>.rs`: its wrapper in `udfs/` with
//! the `#[path]` module that points at weir's transforms replaced by the transforms' text in
//! an inline `mod transforms { ... }`. Arroyo compiles a UDF from one file, so this is the
//! form a cluster is given; the plugin libraries (`plugins/`) `include!` the same output,
//! so the library the tests load is compiled from exactly that text.

use std::path::PathBuf;
use std::{env, fs};

/// The UDFs, one wrapper file `udfs/<name>.rs` each. Keep in step with the `[[example]]`
/// targets in Cargo.toml and `UDFS` in src/lib.rs (a test checks both).
const UDFS: [&str; 5] = ["weir_log1p", "weir_hour_of_day", "weir_day_of_week", "weir_one_hot", "weir_ratio_to_mean"];

/// What each wrapper says to bring the transforms in; replaced by the inline module.
const PATH_MODULE: &str = "#[path = \"../../src/transforms.rs\"]\nmod transforms;\n";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let transforms_path = manifest_dir.join("../src/transforms.rs");
    println!("cargo::rerun-if-changed={}", transforms_path.display());
    let transforms = read(&transforms_path);
    for name in UDFS {
        let wrapper_path = manifest_dir.join("udfs").join(format!("{name}.rs"));
        println!("cargo::rerun-if-changed={}", wrapper_path.display());
        let wrapper = read(&wrapper_path);
        let found = wrapper.matches(PATH_MODULE).count();
        assert!(
            found == 1,
            "{}: expected the transforms module line pair {PATH_MODULE:?} exactly once, found it {found} times",
            wrapper_path.display()
        );
        let inline = format!("mod transforms {{\n{transforms}}}\n");
        let definition = wrapper.replacen(PATH_MODULE, &inline, 1);
        let out = out_dir.join(format!("{name}.rs"));
        fs::write(&out, definition).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    }
}

/// Reads a source file with Unix line endings, whatever the checkout did to them.
fn read(path: &std::path::Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())).replace("\r\n", "\n")
}
