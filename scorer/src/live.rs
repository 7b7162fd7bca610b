//! The model that serves, and how it changes while events flow.
//!
//! [`LiveModel`] holds the champion behind an `ArcSwap`: a scoring batch takes one
//! `Arc` of the current model ([`LiveModel::current`]) and uses it for the whole batch,
//! so every score of a batch comes from one version and carries that version's label. A
//! swap never waits for batches in flight and never fails one: they finish on the
//! version they took, the next batch takes the new one.
//!
//! [`Watcher`] follows the registry's `champion` pointer (layout in
//! [`weir_schemas::model`]): when it names another version, the watcher loads and
//! validates that version *off to the side* — checksum, feature list, ops tract can run,
//! canary rows ([`LoadedModel::load_dir`]) — and only a version that passes is swapped
//! in. A version that fails stays out, the old one keeps serving, and the refusal is
//! reported once (the caller logs and counts it); it is not retried until the pointer
//! moves to another version and back. The caller decides how often to poll (`weir run`:
//! `scorer.registry_poll_ms`, default 1000 ms).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

use weir_schemas::registry::{ModelRegistry, RegistryError};

use crate::error::{Error, Result};
use crate::model::LoadedModel;

/// The serving model, swappable under load.
#[derive(Debug)]
pub struct LiveModel {
    current: ArcSwap<LoadedModel>,
}

impl LiveModel {
    pub fn new(model: Arc<LoadedModel>) -> Self {
        LiveModel { current: ArcSwap::new(model) }
    }

    /// The model to score one batch with: take it once per batch.
    pub fn current(&self) -> Arc<LoadedModel> {
        self.current.load_full()
    }

    /// Puts `model` in service; returns the one it replaces.
    pub fn replace(&self, model: Arc<LoadedModel>) -> Arc<LoadedModel> {
        self.current.swap(model)
    }
}

/// An optional model, swappable under load: the shadow challenger.
#[derive(Debug, Default)]
pub struct LiveSlot {
    current: ArcSwapOption<LoadedModel>,
}

impl LiveSlot {
    pub fn current(&self) -> Option<Arc<LoadedModel>> {
        self.current.load_full()
    }

    pub fn replace(&self, model: Option<Arc<LoadedModel>>) -> Option<Arc<LoadedModel>> {
        self.current.swap(model)
    }
}

/// Where a watcher puts the versions it validates.
#[derive(Debug, Clone)]
pub enum Target {
    /// The champion: always some version; a missing pointer changes nothing.
    Champion(Arc<LiveModel>),
    /// The challenger: a missing pointer takes it out of service.
    Challenger(Arc<LiveSlot>),
}

impl Target {
    pub fn pointer(&self) -> Pointer {
        match self {
            Target::Champion(_) => Pointer::Champion,
            Target::Challenger(_) => Pointer::Challenger,
        }
    }

    /// The version serving in this slot, if any.
    pub fn version(&self) -> Option<String> {
        match self {
            Target::Champion(live) => Some(live.current().version().to_string()),
            Target::Challenger(slot) => slot.current().map(|m| m.version().to_string()),
        }
    }

    fn install(&self, model: Option<Arc<LoadedModel>>) -> Option<String> {
        match (self, model) {
            (Target::Champion(live), Some(m)) => Some(live.replace(m).version().to_string()),
            (Target::Champion(live), None) => Some(live.current().version().to_string()),
            (Target::Challenger(slot), m) => slot.replace(m).map(|old| old.version().to_string()),
        }
    }
}

/// Which registry pointer a watcher follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pointer {
    Champion,
    Challenger,
}

impl Pointer {
    pub fn file_name(self) -> &'static str {
        match self {
            Pointer::Champion => "champion",
            Pointer::Challenger => "challenger",
        }
    }
}

fn registry_err(root: &Path, e: RegistryError) -> Error {
    Error::Registry { path: root.display().to_string(), message: e.to_string() }
}

/// The version a registry pointer names, or `None` if the pointer file does not exist.
pub fn read_pointer(root: &Path, model: &str, pointer: Pointer) -> Result<Option<String>> {
    let registry = ModelRegistry::open(root).map_err(|e| registry_err(root, e))?;
    match pointer {
        Pointer::Champion => registry.champion(model),
        Pointer::Challenger => registry.challenger(model),
    }
    .map_err(|e| registry_err(root, e))
}

/// The directory of one version in the registry (names checked by the registry).
pub fn version_dir(root: &Path, model: &str, version: &str) -> Result<PathBuf> {
    ModelRegistry::open(root).and_then(|r| r.version_dir(model, version)).map_err(|e| registry_err(root, e))
}

/// What one poll of the registry did.
#[derive(Debug)]
pub enum PollOutcome {
    /// The pointer names the version already serving (or the one already refused).
    Unchanged,
    /// No pointer file (yet): nothing to serve from the registry.
    NoPointer,
    /// The challenger pointer was removed: the challenger `from` no longer scores.
    Cleared { from: String },
    /// A new version passed validation and now serves (`from` is `(none)` for a first
    /// challenger).
    Swapped { from: String, to: String },
    /// The pointer names a version that failed validation; the old one keeps serving.
    Refused { version: String, error: Error },
}

/// Follows one registry pointer and swaps validated versions into a [`LiveModel`].
pub struct Watcher {
    root: PathBuf,
    model: String,
    expected_features: Vec<String>,
    batch_sizes: Vec<usize>,
    target: Target,
    refused: Option<String>,
}

impl Watcher {
    pub fn new(
        root: PathBuf,
        model: String,
        expected_features: Vec<String>,
        batch_sizes: Vec<usize>,
        target: Target,
    ) -> Self {
        Watcher { root, model, expected_features, batch_sizes, target, refused: None }
    }

    /// Loads and validates the version the pointer names now (start-up: there is no old
    /// version to keep serving, so a failure is an error).
    pub fn load_pointed(
        root: &Path,
        model: &str,
        pointer: Pointer,
        expected_features: &[String],
        batch_sizes: &[usize],
    ) -> Result<LoadedModel> {
        let version = read_pointer(root, model, pointer)?.ok_or_else(|| Error::Registry {
            path: root.join(model).display().to_string(),
            message: format!("no {} pointer: promote a version first (weir models promote VERSION)", pointer.file_name()),
        })?;
        load_version(root, model, &version, expected_features, batch_sizes)
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Reads the pointer once and acts on it. Blocking (file reads, tract planning):
    /// run it off the async threads.
    pub fn poll(&mut self) -> PollOutcome {
        let version = match read_pointer(&self.root, &self.model, self.target.pointer()) {
            Ok(Some(v)) => v,
            Ok(None) => {
                self.refused = None;
                return match &self.target {
                    Target::Challenger(slot) if slot.current().is_some() => {
                        PollOutcome::Cleared { from: self.target.install(None).unwrap_or_default() }
                    }
                    _ => PollOutcome::NoPointer,
                };
            }
            Err(error) => {
                // An unreadable pointer is a refusal of "whatever it names".
                return PollOutcome::Refused { version: String::from("?"), error };
            }
        };
        if self.target.version().as_deref() == Some(version.as_str()) || self.refused.as_deref() == Some(version.as_str()) {
            return PollOutcome::Unchanged;
        }
        match load_version(&self.root, &self.model, &version, &self.expected_features, &self.batch_sizes) {
            Ok(model) => {
                self.refused = None;
                let from = self.target.install(Some(Arc::new(model))).unwrap_or_else(|| "(none)".into());
                PollOutcome::Swapped { from, to: version }
            }
            Err(error) => {
                self.refused = Some(version.clone());
                PollOutcome::Refused { version, error }
            }
        }
    }
}

/// Loads and validates one version of the registry. Also checks that the metadata names
/// the version it is stored under, so a copied directory cannot serve under a wrong label.
pub fn load_version(
    root: &Path,
    model: &str,
    version: &str,
    expected_features: &[String],
    batch_sizes: &[usize],
) -> Result<LoadedModel> {
    let dir = version_dir(root, model, version)?;
    let loaded = LoadedModel::load_dir(&dir, expected_features, batch_sizes)?;
    let meta = loaded.metadata();
    if meta.version != version || meta.name != model {
        return Err(Error::Metadata {
            path: dir.join("metadata.json").display().to_string(),
            message: format!("names {}/{}, but is stored as {model}/{version}", meta.name, meta.version),
        });
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline;

    fn names() -> Vec<String> {
        baseline::metadata().unwrap().feature_names
    }

    /// Writes the baseline into `root` as `fraud/<version>`, optionally damaged.
    fn publish(root: &Path, version: &str, damage: impl FnOnce(&mut weir_schemas::model::ModelMetadata, &mut Vec<u8>)) {
        let dir = version_dir(root, "fraud", version).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let mut meta = baseline::metadata().unwrap();
        meta.name = "fraud".into();
        meta.version = version.into();
        let mut onnx = baseline::ONNX.to_vec();
        damage(&mut meta, &mut onnx);
        std::fs::write(dir.join("model.onnx"), &onnx).unwrap();
        std::fs::write(dir.join("metadata.json"), serde_json::to_string(&meta).unwrap()).unwrap();
    }

    fn point(root: &Path, version: &str) {
        std::fs::write(root.join("fraud/champion"), format!("{version}\n")).unwrap();
    }

    #[test]
    fn watcher_swaps_valid_versions_and_keeps_serving_through_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        publish(root, "v1", |_, _| {});
        publish(root, "v2", |_, _| {});
        publish(root, "corrupt", |_, onnx| onnx[50] ^= 0xff);
        publish(root, "wrong-features", |meta, _| meta.feature_names.swap(0, 1));
        point(root, "v1");
        let first = Watcher::load_pointed(root, "fraud", Pointer::Champion, &names(), &[1, 16]).unwrap();
        let live = Arc::new(LiveModel::new(Arc::new(first)));
        let mut w = Watcher::new(root.into(), "fraud".into(), names(), vec![1, 16], Target::Champion(live.clone()));
        assert!(matches!(w.poll(), PollOutcome::Unchanged));

        point(root, "v2");
        assert!(matches!(w.poll(), PollOutcome::Swapped { ref from, ref to } if from == "v1" && to == "v2"));
        assert_eq!(live.current().version(), "v2");

        point(root, "corrupt");
        assert!(matches!(w.poll(), PollOutcome::Refused { ref version, error: Error::Checksum { .. } } if version == "corrupt"));
        assert_eq!(live.current().version(), "v2");
        // Reported once, not on every poll.
        assert!(matches!(w.poll(), PollOutcome::Unchanged));

        point(root, "wrong-features");
        assert!(matches!(w.poll(), PollOutcome::Refused { error: Error::FeatureMismatch { .. }, .. }));
        point(root, "missing");
        assert!(matches!(w.poll(), PollOutcome::Refused { error: Error::Io { .. }, .. }));
        point(root, "../escape");
        assert!(matches!(w.poll(), PollOutcome::Refused { error: Error::Registry { .. }, .. }));
        assert_eq!(live.current().version(), "v2");

        point(root, "v1");
        assert!(matches!(w.poll(), PollOutcome::Swapped { ref to, .. } if to == "v1"));
        std::fs::remove_file(root.join("fraud/champion")).unwrap();
        assert!(matches!(w.poll(), PollOutcome::NoPointer));
        assert_eq!(live.current().version(), "v1");
    }

    #[test]
    fn challenger_slot_follows_its_pointer_and_empties_when_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        publish(root, "v1", |_, _| {});
        publish(root, "bad", |meta, _| meta.feature_names.pop().map(|_| ()).unwrap_or(()));
        let slot = Arc::new(LiveSlot::default());
        let mut w = Watcher::new(root.into(), "fraud".into(), names(), vec![1], Target::Challenger(slot.clone()));
        assert!(matches!(w.poll(), PollOutcome::NoPointer));
        std::fs::write(root.join("fraud/challenger"), "v1\n").unwrap();
        assert!(matches!(w.poll(), PollOutcome::Swapped { ref from, ref to } if from == "(none)" && to == "v1"));
        assert_eq!(slot.current().unwrap().version(), "v1");
        std::fs::write(root.join("fraud/challenger"), "bad\n").unwrap();
        assert!(matches!(w.poll(), PollOutcome::Refused { .. }));
        assert_eq!(slot.current().unwrap().version(), "v1");
        std::fs::remove_file(root.join("fraud/challenger")).unwrap();
        assert!(matches!(w.poll(), PollOutcome::Cleared { ref from } if from == "v1"));
        assert!(slot.current().is_none());
        assert!(matches!(w.poll(), PollOutcome::NoPointer));
    }

    #[test]
    fn a_version_stored_under_another_label_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        publish(dir.path(), "v1", |meta, _| meta.version = "v9".into());
        let err = load_version(dir.path(), "fraud", "v1", &names(), &[1]).unwrap_err();
        assert!(err.to_string().contains("names fraud/v9, but is stored as fraud/v1"), "{err}");
    }

    #[test]
    fn no_pointer_at_start_up_is_an_error_saying_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = Watcher::load_pointed(dir.path(), "fraud", Pointer::Champion, &names(), &[1]).unwrap_err();
        assert!(err.to_string().contains("weir models promote"), "{err}");
    }
}
