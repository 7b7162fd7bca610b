//! # weir-arroyo-udfs
//!
//! weir's per-event feature transforms as [Arroyo](https://www.arroyo.dev) UDFs, so the
//! same code computes the same features inside an Arroyo pipeline. It owns:
//!
//! - the UDF wrappers (`udfs/*.rs`), one `#[udf]` function each, written against
//!   `arroyo-udf-plugin` 0.2.0, the version Arroyo's API pins for the UDFs it compiles;
//! - the definitions to register with a cluster ([`UDFS`], [`Udf::create_request`]): each
//!   wrapper with weir's transforms (`features/src/transforms.rs`) inlined by `build.rs`,
//!   because Arroyo compiles a UDF from a single file;
//! - one plugin library (cdylib) per UDF, built from exactly those definitions: the
//!   `[[example]]` targets, `target/<profile>/examples/lib<name>.so` (`#[udf]` exports a
//!   UDF's entry point under the fixed symbol `__run`, so a library holds one UDF);
//! - [`transforms`]: the transforms themselves, the very file weir's feature engine uses,
//!   for comparing in-process results with the plugins' ones.
//!
//! Depends on `arroyo-udf-plugin` (and through it arrow 51); not on the rest of weir.
//!
//! ```
//! let udf = weir_arroyo_udfs::find("weir_log1p").expect("a weir UDF");
//! assert!(udf.definition.contains("fn weir_log1p(x: f64) -> f64"));
//! assert!(udf.definition.contains("pub fn log1p(x: f64) -> f64")); // the transforms, inlined
//! assert_eq!(udf.create_request("")["definition"], udf.definition);
//! assert_eq!(weir_arroyo_udfs::transforms::log1p(-2.0), 0.0);
//! ```

#[path = "../../src/transforms.rs"]
pub mod transforms;

use serde_json::{json, Value};

/// One of weir's Arroyo UDFs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udf {
    /// The SQL function name, which is also the Rust function's name in the definition.
    pub name: &'static str,
    /// Argument and result types in Arroyo SQL.
    pub signature: &'static str,
    /// One line for Arroyo's UDF list.
    pub description: &'static str,
    /// The Rust source an Arroyo cluster compiles: one file, transforms inlined.
    pub definition: &'static str,
}

impl Udf {
    /// The JSON body of Arroyo's `POST /api/v1/udfs`, which registers a global UDF: the
    /// cluster's compiler service builds `definition` into a plugin library, and pipelines
    /// call the function by its name, which Arroyo takes from the `#[udf]` function. Arroyo
    /// requires `prefix` and stores it with the UDF as given; empty is fine.
    pub fn create_request(&self, prefix: &str) -> Value {
        json!({
            "prefix": prefix,
            "language": "rust",
            "definition": self.definition,
            "description": self.description,
        })
    }
}

macro_rules! udf {
    ($name:literal, $signature:literal, $description:literal) => {
        Udf {
            name: $name,
            signature: $signature,
            description: $description,
            definition: include_str!(concat!(env!("OUT_DIR"), "/", $name, ".rs")),
        }
    };
}

/// All of weir's Arroyo UDFs, in the order of the transforms table in [`transforms`].
pub const UDFS: [Udf; 5] = [
    udf!("weir_log1p", "(DOUBLE) -> DOUBLE", "weir amount_log: ln(1 + max(x, 0))"),
    udf!("weir_hour_of_day", "(BIGINT) -> BIGINT", "weir: hour of day, UTC, 0-23, of epoch milliseconds"),
    udf!("weir_day_of_week", "(BIGINT) -> BIGINT", "weir: day of week, UTC, 0 = Monday, of epoch milliseconds"),
    udf!("weir_one_hot", "(TEXT, TEXT) -> DOUBLE", "weir: 1.0 if the value is the category, else 0.0"),
    udf!("weir_ratio_to_mean", "(DOUBLE, DOUBLE) -> DOUBLE", "weir: x / mean, 1.0 when the mean is not positive"),
];

/// The UDF called `name`, if weir has one.
pub fn find(name: &str) -> Option<&'static Udf> {
    UDFS.iter().find(|udf| udf.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn manifest_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn every_wrapper_is_a_udf_and_a_plugin_target() {
        let names: BTreeSet<String> = UDFS.iter().map(|u| u.name.to_string()).collect();
        assert_eq!(names.len(), UDFS.len(), "duplicate names");
        let wrappers: BTreeSet<String> = std::fs::read_dir(manifest_dir().join("udfs"))
            .unwrap()
            .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(wrappers, names);
        let manifest = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).unwrap();
        for name in &names {
            let target = format!("name = \"{name}\"\npath = \"plugins/{name}.rs\"\ncrate-type = [\"cdylib\"]");
            assert!(manifest.contains(&target), "Cargo.toml lacks the cdylib example target for {name}");
            let plugin = std::fs::read_to_string(manifest_dir().join(format!("plugins/{name}.rs"))).unwrap();
            assert!(plugin.contains(&format!("include!(concat!(env!(\"OUT_DIR\"), \"/{name}.rs\"));")), "{name}");
        }
    }

    #[test]
    fn definitions_are_one_file_with_the_transforms_inlined() {
        let transforms = std::fs::read_to_string(manifest_dir().join("../src/transforms.rs")).unwrap();
        for udf in &UDFS {
            // One #[udf] function (Arroyo rejects more), named like the UDF.
            assert_eq!(udf.definition.lines().filter(|l| l.trim() == "#[udf]").count(), 1, "{}", udf.name);
            assert!(udf.definition.contains(&format!("#[udf]\nfn {}(", udf.name)), "{}", udf.name);
            assert!(udf.definition.contains("use arroyo_udf_plugin::udf;"), "{}", udf.name);
            // Nothing outside the file: no #[path], no `mod x;`.
            assert!(!udf.definition.lines().any(|l| l.trim_start().starts_with("#[path")), "{}", udf.name);
            assert!(!udf.definition.lines().any(|l| l.trim() == "mod transforms;"), "{}", udf.name);
            assert!(udf.definition.contains(&format!("mod transforms {{\n{transforms}}}\n")), "{}", udf.name);
            // Arroyo reads dependencies from a `/*\n[dependencies]` comment; these need none.
            assert!(!udf.definition.contains("[dependencies]"), "{}", udf.name);
        }
    }

    #[test]
    fn create_request_is_arroyos_udf_post() {
        let udf = find("weir_one_hot").unwrap();
        let body = udf.create_request("fraud_");
        assert_eq!(body["prefix"], "fraud_");
        assert_eq!(body["language"], "rust");
        assert_eq!(body["definition"], udf.definition);
        assert_eq!(body["description"], udf.description);
        assert_eq!(body.as_object().unwrap().len(), 4);
        assert!(find("weir_nope").is_none());
    }
}
