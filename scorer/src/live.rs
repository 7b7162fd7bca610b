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
//! reported (the caller logs and counts it). Refusals are remembered per version: a
//! refused version is not loaded again on every poll, nor when the pointer comes back to
//! it, unless its files changed; any other version the pointer moves to (a promotion, a
//! rollback) is loaded at the next poll. The caller decides how often to poll (`weir run`:
//! `scorer.registry_poll_ms`, default 1000 ms).
//!
//! At start-up there is no old version to keep serving: [`Watcher::load_at_start`] falls
//! back from a refused champion to the champions before it (the registry's history, most
//! recent first), then to the compiled-in baseline, and returns the refusals so the
//! caller reports them and seeds the watcher with them ([`Watcher::remember_start`]).
//! A bad champion therefore never stops a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::{ArcSwap, ArcSwapOption};

use weir_schemas::registry::{champion_stack, ModelRegistry, RegistryError};

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
    /// The pointer moved back to a version refused earlier whose files have not changed:
    /// not loaded again; `reason` and `message` are the first refusal's.
    StillRefused { version: String, reason: &'static str, message: String },
}

/// What is remembered of a refused version: why, and the state of its files then (a
/// version whose files change is validated again).
#[derive(Debug, Clone)]
struct Refusal {
    files: Vec<(String, u64, Option<SystemTime>)>,
    reason: &'static str,
    message: String,
}

/// Name, length and modification time of each file in a version's directory (empty when
/// it does not exist, so a version published after its refusal is tried again).
fn files_of(root: &Path, model: &str, version: &str) -> Vec<(String, u64, Option<SystemTime>)> {
    let Ok(dir) = version_dir(root, model, version) else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), meta.len(), meta.modified().ok()))
        })
        .collect();
    files.sort();
    files
}

/// The model a process starts with, and the versions refused on the way to it.
#[derive(Debug)]
pub struct Start {
    pub model: LoadedModel,
    /// Where `model` came from.
    pub source: StartSource,
    /// Versions refused before `model` was found, in the order tried (the champion
    /// first), each with its reason.
    pub refused: Vec<(String, Error)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartSource {
    /// The version the champion pointer names.
    Champion,
    /// An earlier champion from the registry's history: the champion was refused.
    EarlierChampion(String),
    /// The compiled-in baseline ([`crate::baseline`]): no champion, current or earlier,
    /// passed validation.
    Baseline,
}

/// Follows one registry pointer and swaps validated versions into a [`LiveModel`].
pub struct Watcher {
    root: PathBuf,
    model: String,
    expected_features: Vec<String>,
    batch_sizes: Vec<usize>,
    target: Target,
    /// Versions refused by this watcher (or at start-up), by version.
    refused: HashMap<String, Refusal>,
    /// The version the pointer named at the last poll, to report a return to a refused
    /// version once.
    last_pointed: Option<String>,
}

impl Watcher {
    pub fn new(
        root: PathBuf,
        model: String,
        expected_features: Vec<String>,
        batch_sizes: Vec<usize>,
        target: Target,
    ) -> Self {
        Watcher { root, model, expected_features, batch_sizes, target, refused: HashMap::new(), last_pointed: None }
    }

    /// Records the refusals of [`Watcher::load_at_start`] (`Start::refused`, the version
    /// the pointer names first), so the first poll neither loads nor reports them again.
    pub fn remember_start(&mut self, refused: &[(String, Error)]) {
        for (version, error) in refused {
            self.remember_refused(version, error);
        }
        if let Some((pointed, _)) = refused.first() {
            self.last_pointed = Some(pointed.clone());
        }
    }

    fn remember_refused(&mut self, version: &str, error: &Error) {
        let files = files_of(&self.root, &self.model, version);
        self.refused.insert(version.to_string(), Refusal { files, reason: error.kind(), message: error.to_string() });
    }

    /// The model to start serving with: the champion if it passes validation; else the
    /// most recent earlier champion (from `history.jsonl`) that passes; else the
    /// compiled-in baseline if it fits the configured features. Only a registry with no
    /// champion pointer, or with nothing at all that validates, is an error (with every
    /// reason). Blocking.
    pub fn load_at_start(root: &Path, model: &str, expected_features: &[String], batch_sizes: &[usize]) -> Result<Start> {
        let champion = read_pointer(root, model, Pointer::Champion)?.ok_or_else(|| Error::Registry {
            path: root.join(model).display().to_string(),
            message: "no champion pointer: promote a version first (weir models promote VERSION)".into(),
        })?;
        let mut refused = Vec::new();
        match load_version(root, model, &champion, expected_features, batch_sizes) {
            Ok(m) => return Ok(Start { model: m, source: StartSource::Champion, refused }),
            Err(e) => refused.push((champion.clone(), e)),
        }
        // An unreadable history leaves only the baseline to fall back on.
        let history = ModelRegistry::open(root).and_then(|r| r.history(model)).unwrap_or_default();
        let mut earlier = champion_stack(&history);
        earlier.reverse();
        for version in earlier {
            if refused.iter().any(|(v, _)| *v == version) {
                continue;
            }
            match load_version(root, model, &version, expected_features, batch_sizes) {
                Ok(m) => return Ok(Start { model: m, source: StartSource::EarlierChampion(version), refused }),
                Err(e) => refused.push((version, e)),
            }
        }
        match crate::baseline::load(expected_features, batch_sizes) {
            Ok(m) => Ok(Start { model: m, source: StartSource::Baseline, refused }),
            Err(e) => {
                let mut reasons: Vec<String> = refused.iter().map(|(v, e)| format!("{v}: {e}")).collect();
                reasons.push(format!("compiled-in baseline: {e}"));
                Err(Error::Registry {
                    path: root.join(model).display().to_string(),
                    message: format!("no version fit to serve: {}", reasons.join("; ")),
                })
            }
        }
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
                self.last_pointed = None;
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
        let moved = self.last_pointed.as_deref() != Some(version.as_str());
        self.last_pointed = Some(version.clone());
        if self.target.version().as_deref() == Some(version.as_str()) {
            return PollOutcome::Unchanged;
        }
        if let Some(refusal) = self.refused.get(&version)
            && refusal.files == files_of(&self.root, &self.model, &version)
        {
            return if moved {
                PollOutcome::StillRefused { version, reason: refusal.reason, message: refusal.message.clone() }
            } else {
                PollOutcome::Unchanged
            };
        }
        match load_version(&self.root, &self.model, &version, &self.expected_features, &self.batch_sizes) {
            Ok(model) => {
                self.refused.remove(&version);
                let from = self.target.install(Some(Arc::new(model))).unwrap_or_else(|| "(none)".into());
                PollOutcome::Swapped { from, to: version }
            }
            Err(error) => {
                self.remember_refused(&version, &error);
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
    /// Publishes the two bad models of issue 24 item 6: `narrow` (graph input `[N, 8]`,
    /// 8 coefficients per class, metadata listing 9 features) and `bad-class`
    /// (`positive_class_index` 5 for a 2-column output).
    fn publish_bad(root: &Path) {
        publish(root, "narrow", |meta, onnx| {
            *onnx = crate::model::tests::baseline_edited(Some(&[None, Some(8)]), Some(8));
            meta.sha256 = weir_schemas::registry::hex_sha256(onnx);
        });
        publish(root, "bad-class", |meta, _| meta.positive_class_index = 5);
    }

    /// Regression (issue 24 item 6): a bad `positive_class_index` panicked the watcher,
    /// after which no promotion or rollback was ever acted on.
    #[test]
    fn bad_models_are_refused_once_and_the_next_pointer_move_is_acted_on() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        publish(root, "v1", |_, _| {});
        publish(root, "v2", |_, _| {});
        publish_bad(root);
        point(root, "v1");
        let first = Watcher::load_pointed(root, "fraud", Pointer::Champion, &names(), &[1, 16]).unwrap();
        let live = Arc::new(LiveModel::new(Arc::new(first)));
        let mut w = Watcher::new(root.into(), "fraud".into(), names(), vec![1, 16], Target::Champion(live.clone()));

        point(root, "narrow");
        match w.poll() {
            PollOutcome::Refused { version, error: error @ Error::InputWidth { .. } } => {
                assert_eq!(version, "narrow");
                let text = error.to_string();
                assert!(text.contains("declared [?, 8]") && text.contains("lists 9 features"), "{text}");
            }
            other => panic!("expected an input width refusal, got {other:?}"),
        }
        assert!(matches!(w.poll(), PollOutcome::Unchanged));
        assert_eq!(live.current().version(), "v1");

        // Straight from one refused version to another: the second is loaded and refused.
        point(root, "bad-class");
        match w.poll() {
            PollOutcome::Refused { version, error: error @ Error::PositiveClass { .. } } => {
                assert_eq!(version, "bad-class");
                assert!(error.to_string().contains("positive_class_index 5 is out of range"), "{error}");
            }
            other => panic!("expected a positive class refusal, got {other:?}"),
        }
        assert!(matches!(w.poll(), PollOutcome::Unchanged));
        assert_eq!(live.current().version(), "v1");

        // Back to the first refused version: reported, not loaded again.
        point(root, "narrow");
        assert!(matches!(w.poll(), PollOutcome::StillRefused { ref version, reason: "input_width", .. } if version == "narrow"));
        assert!(matches!(w.poll(), PollOutcome::Unchanged));

        // A promotion and a rollback are acted on at the next poll.
        point(root, "v2");
        assert!(matches!(w.poll(), PollOutcome::Swapped { ref from, ref to } if from == "v1" && to == "v2"));
        point(root, "v1");
        assert!(matches!(w.poll(), PollOutcome::Swapped { ref from, ref to } if from == "v2" && to == "v1"));

        // A refused version whose files were fixed by hand is validated again.
        point(root, "bad-class");
        assert!(matches!(w.poll(), PollOutcome::StillRefused { reason: "positive_class", .. }));
        let meta_path = version_dir(root, "fraud", "bad-class").unwrap().join("metadata.json");
        let mut meta: weir_schemas::model::ModelMetadata =
            serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
        meta.positive_class_index = 1;
        // Not the same length as before, so the change shows even within one mtime tick.
        std::fs::write(&meta_path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
        assert!(matches!(w.poll(), PollOutcome::Swapped { ref to, .. } if to == "bad-class"));
        assert_eq!(live.current().version(), "bad-class");
    }

    /// Regression (issue 24 item 6): a refused champion made every restart fail.
    #[test]
    fn start_up_falls_back_from_a_refused_champion() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        publish(root, "v1", |_, _| {});
        publish(root, "v2", |_, _| {});
        publish_bad(root);
        let registry = ModelRegistry::open(root).unwrap();
        registry.promote("fraud", "v1", "test", "test").unwrap();
        registry.promote("fraud", "v2", "test", "test").unwrap();
        // Edited by hand past `weir models promote`: the champion is refused, and so is
        // the earlier one the history shows after it.
        point(root, "narrow");
        std::fs::write(root.join("fraud/history.jsonl"), {
            let mut text = std::fs::read_to_string(root.join("fraud/history.jsonl")).unwrap();
            text.push_str(&serde_json::to_string(&weir_schemas::registry::HistoryEntry {
                at_ms: 0,
                action: weir_schemas::registry::ChampionAction::Promote,
                from: Some("v2".into()),
                to: "bad-class".into(),
                reason: "by hand".into(),
                actor: "test".into(),
            }).unwrap());
            text.push('\n');
            text
        })
        .unwrap();
        let start = Watcher::load_at_start(root, "fraud", &names(), &[1]).unwrap();
        assert_eq!(start.model.version(), "v2");
        assert_eq!(start.source, StartSource::EarlierChampion("v2".into()));
        let refused: Vec<(&str, &str)> = start.refused.iter().map(|(v, e)| (v.as_str(), e.kind())).collect();
        assert_eq!(refused, [("narrow", "input_width"), ("bad-class", "positive_class")]);

        // The watcher seeded with the refusal does not load the champion again, and
        // follows the next move.
        let live = Arc::new(LiveModel::new(Arc::new(start.model)));
        let mut w = Watcher::new(root.into(), "fraud".into(), names(), vec![1], Target::Champion(live.clone()));
        w.remember_start(&start.refused);
        assert!(matches!(w.poll(), PollOutcome::Unchanged));
        point(root, "v1");
        assert!(matches!(w.poll(), PollOutcome::Swapped { ref to, .. } if to == "v1"));

        // No good champion ever: the compiled-in baseline, if it fits the features.
        let dir = tempfile::tempdir().unwrap();
        publish_bad(dir.path());
        point(dir.path(), "bad-class");
        let start = Watcher::load_at_start(dir.path(), "fraud", &names(), &[1]).unwrap();
        assert_eq!((start.source, start.model.metadata().name.as_str()), (StartSource::Baseline, "fraud-baseline"));
        assert_eq!(start.refused.len(), 1);
        // Nothing fits: an error with every reason.
        let mut other = names();
        other.swap(0, 1);
        let err = Watcher::load_at_start(dir.path(), "fraud", &other, &[1]).unwrap_err();
        assert!(err.to_string().contains("bad-class:") && err.to_string().contains("compiled-in baseline:"), "{err}");
        // No pointer at all stays the error it was.
        let err = Watcher::load_at_start(tempfile::tempdir().unwrap().path(), "fraud", &names(), &[1]).unwrap_err();
        assert!(err.to_string().contains("weir models promote"), "{err}");
    }
}
