//! Model registries for the scorer's tests: the shipped models (`models/`) published
//! into a temporary registry under the labels a test wants.

use std::path::{Path, PathBuf};

use anyhow::Context;

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

/// `onnx` (a single-`LinearClassifier` model of `k` features, like the baseline) made into
/// a model of `width` features: its graph input declared `[batch, width]` and its
/// coefficients cut to the first `width` per class. Issue 24 item 6's "narrower" model
/// when `width < k`.
pub fn narrowed(onnx: &[u8], k: usize, width: usize) -> anyhow::Result<Vec<u8>> {
    use prost::Message;
    use tract_onnx::pb;
    use tract_onnx::pb::tensor_shape_proto::dimension::Value;
    let mut m = pb::ModelProto::decode(onnx)?;
    let graph = m.graph.as_mut().context("no graph")?;
    let input = graph.input.first_mut().context("no graph input")?;
    let Some(pb::type_proto::Value::TensorType(t)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) else {
        anyhow::bail!("graph input is not a tensor")
    };
    let dim = t.shape.as_mut().and_then(|s| s.dim.get_mut(1)).context("graph input has no width")?;
    dim.value = Some(Value::DimValue(width as i64));
    let node = graph.node.iter_mut().find(|n| n.op_type == "LinearClassifier").context("no LinearClassifier")?;
    let coefficients = node.attribute.iter_mut().find(|a| a.name == "coefficients").context("no coefficients")?;
    anyhow::ensure!(width <= k && coefficients.floats.len() % k == 0, "cannot narrow {k} features to {width}");
    coefficients.floats = coefficients.floats.chunks(k).flat_map(|c| c[..width].to_vec()).collect();
    Ok(m.encode_to_vec())
}
