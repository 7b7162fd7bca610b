//! Model registries for the scorer's tests: the shipped models (`models/`) published
//! into a temporary registry under the labels a test wants.

use std::path::{Path, PathBuf};

use weir_schemas::model::ModelMetadata;

/// `models/` in the workspace.
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// The shipped model directories by short name: `baseline`, the families (`logistic`,
/// `mlp`, `gbt`, `forest`) and the broken fixtures (`nan`, `zipmap`, `scaler`).
pub fn shipped(name: &str) -> PathBuf {
    let m = models_dir();
    match name {
        "baseline" => m.join("fraud-baseline/v1"),
        "nan" | "zipmap" | "scaler" => m.join("fixtures").join(name),
        family => m.join("families").join(family),
    }
}

/// Publishes the model in `src` into the registry at `root` as `model/version`: its ONNX
/// bytes unchanged, its metadata relabelled. `damage` may alter either to make a broken
/// version: the metadata before publishing, the ONNX bytes after (the registry records
/// the checksum of what it was given, so a changed file is a corrupt one).
pub fn publish_as(
    root: &Path,
    model: &str,
    version: &str,
    src: &Path,
    damage: impl FnOnce(&mut ModelMetadata, &mut Vec<u8>),
) -> anyhow::Result<()> {
    let mut meta: ModelMetadata = serde_json::from_str(&std::fs::read_to_string(src.join("metadata.json"))?)?;
    let mut onnx = std::fs::read(src.join(&meta.onnx_file))?;
    meta.name = model.into();
    meta.version = version.into();
    let original = onnx.clone();
    damage(&mut meta, &mut onnx);
    let registry = weir_schemas::registry::ModelRegistry::create(root)?;
    let written = registry.publish(&meta, &original)?;
    if onnx != original {
        std::fs::write(registry.version_dir(model, version)?.join(&written.onnx_file), &onnx)?;
    }
    Ok(())
}
