//! The model registry on disk: versioned models and which one serves.
//!
//! The online learner publishes versions and promotes them, `weir models` promotes and
//! rolls back by hand, and the scorer watches the `champion` file and hot-swaps. All of
//! them go through this module, so the layout has one definition:
//!
//! ```text
//! <root>/
//!   <model-name>/
//!     versions/
//!       <version>/
//!         model.onnx
//!         metadata.json     ModelMetadata, sha256 of model.onnx included
//!     champion              one line: the version that serves
//!     challenger            optional, one line: the version that shadow-scores
//!     history.jsonl         append-only log of every champion change
//!     .lock                 serialises writers (learner, CLI) of this model
//! ```
//!
//! Why it is safe to read while someone writes:
//! - a version appears by renaming a complete temporary directory into `versions/`, so a
//!   reader never sees half a model, and a published version is never modified;
//! - `champion` and `challenger` are replaced by renaming a complete temporary file, so
//!   a reader sees the old or the new version name, never a torn one;
//! - writers of one model take an exclusive lock on `.lock`, so two promotions cannot
//!   interleave their history lines and pointer updates.
//!
//! Rollback undoes champion changes like a stack: replaying `history.jsonl`, a promotion
//! pushes a version and a rollback pops one, so repeated rollbacks walk back through the
//! versions that served, most recent first.
//!
//! ```
//! use weir_schemas::registry::ModelRegistry;
//! # let dir = tempfile::tempdir().unwrap();
//! # let meta = weir_schemas::registry::tests_support::metadata("fraud", "v1");
//! let registry = ModelRegistry::create(dir.path()).unwrap();
//! registry.publish(&meta, b"onnx bytes").unwrap();
//! registry.promote("fraud", "v1", "first model", "doc").unwrap();
//! assert_eq!(registry.champion("fraud").unwrap().as_deref(), Some("v1"));
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::ModelMetadata;

pub const VERSIONS_DIR: &str = "versions";
pub const CHAMPION_FILE: &str = "champion";
pub const CHALLENGER_FILE: &str = "challenger";
pub const HISTORY_FILE: &str = "history.jsonl";
pub const METADATA_FILE: &str = "metadata.json";

/// What went wrong with the registry. All of these are for an operator (or the process
/// that asked) to fix: nothing here is worth retrying blindly.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry i/o on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("invalid {what} name {name:?}: use letters, digits, '.', '_' or '-', not starting with '.'")]
    InvalidName { what: &'static str, name: String },
    #[error("model {name} has no version {version}")]
    NoSuchVersion { name: String, version: String },
    #[error("model {name} already has a version {version}; published versions never change")]
    VersionExists { name: String, version: String },
    #[error("bad metadata in {path}: {message}")]
    Metadata { path: String, message: String },
    #[error("bad history line {line} in {path}: {message}")]
    History { path: String, line: usize, message: String },
    #[error("model {name}: nothing to roll back to (champion history: {stack:?})")]
    NothingToRollBack { name: String, stack: Vec<String> },
}

pub type Result<T> = std::result::Result<T, RegistryError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io { path: path.display().to_string(), source }
}

/// One line of `history.jsonl`: a change of champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub action: ChampionAction,
    /// The champion before the change (none for the first promotion).
    pub from: Option<String>,
    /// The champion after it.
    pub to: String,
    /// Why: a person's words, or the learner's promotion evidence.
    pub reason: String,
    /// Who: `cli`, `weir-online-learner`, a user name.
    pub actor: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChampionAction {
    Promote,
    Rollback,
}

/// One published version, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionEntry {
    pub metadata: ModelMetadata,
    pub dir: PathBuf,
}

/// A registry directory. Cheap to clone; holds no open files.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    root: PathBuf,
}

impl ModelRegistry {
    /// Opens an existing registry directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let meta = fs::metadata(&root).map_err(io_err(&root))?;
        if !meta.is_dir() {
            return Err(RegistryError::Io {
                path: root.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(ModelRegistry { root })
    }

    /// Opens a registry, creating its directory if needed.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(io_err(&root))?;
        Ok(ModelRegistry { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn model_dir(&self, name: &str) -> Result<PathBuf> {
        check_name("model", name)?;
        Ok(self.root.join(name))
    }

    pub fn version_dir(&self, name: &str, version: &str) -> Result<PathBuf> {
        check_name("version", version)?;
        Ok(self.model_dir(name)?.join(VERSIONS_DIR).join(version))
    }

    /// Model names in the registry, sorted.
    pub fn models(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err(&self.root))? {
            let entry = entry.map_err(io_err(&self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().join(VERSIONS_DIR).is_dir() && check_name("model", &name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Publishes a new version: writes `model.onnx` (under `metadata.onnx_file`) and
    /// `metadata.json` with the file's sha256 filled in, then renames the directory into
    /// place. Returns the metadata as written.
    pub fn publish(&self, metadata: &ModelMetadata, onnx: &[u8]) -> Result<ModelMetadata> {
        check_name("file", &metadata.onnx_file)?;
        let target = self.version_dir(&metadata.name, &metadata.version)?;
        let versions = target.parent().map(Path::to_path_buf).unwrap_or_default();
        fs::create_dir_all(&versions).map_err(io_err(&versions))?;
        let _lock = self.lock(&metadata.name)?;
        if target.exists() {
            return Err(RegistryError::VersionExists {
                name: metadata.name.clone(),
                version: metadata.version.clone(),
            });
        }
        let staging = versions.join(format!(".staging-{}-{}", metadata.version, std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir(&staging).map_err(io_err(&staging))?;
        let mut written = metadata.clone();
        written.sha256 = hex_sha256(onnx);
        write_synced(&staging.join(&written.onnx_file), onnx)?;
        let json = serde_json::to_vec_pretty(&written).map_err(|e| RegistryError::Metadata {
            path: staging.join(METADATA_FILE).display().to_string(),
            message: e.to_string(),
        })?;
        write_synced(&staging.join(METADATA_FILE), &json)?;
        fs::rename(&staging, &target).map_err(io_err(&target))?;
        sync_dir(&versions)?;
        Ok(written)
    }

    /// The metadata of one version.
    pub fn metadata(&self, name: &str, version: &str) -> Result<ModelMetadata> {
        let dir = self.version_dir(name, version)?;
        if !dir.is_dir() {
            return Err(RegistryError::NoSuchVersion { name: name.into(), version: version.into() });
        }
        read_metadata(&dir.join(METADATA_FILE))
    }

    /// Metadata and ONNX bytes of one version (the caller checks the checksum).
    pub fn load(&self, name: &str, version: &str) -> Result<(ModelMetadata, Vec<u8>)> {
        let metadata = self.metadata(name, version)?;
        check_name("file", &metadata.onnx_file)?;
        let path = self.version_dir(name, version)?.join(&metadata.onnx_file);
        let onnx = fs::read(&path).map_err(io_err(&path))?;
        Ok((metadata, onnx))
    }

    /// Every published version of `name`, oldest first (by creation time, then name).
    pub fn versions(&self, name: &str) -> Result<Vec<VersionEntry>> {
        let dir = self.model_dir(name)?.join(VERSIONS_DIR);
        let mut out = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let version = entry.file_name().to_string_lossy().into_owned();
            if version.starts_with('.') || !entry.path().is_dir() {
                continue; // staging directories of an in-flight publish
            }
            let metadata = read_metadata(&entry.path().join(METADATA_FILE))?;
            out.push(VersionEntry { metadata, dir: entry.path() });
        }
        out.sort_by(|a, b| {
            (a.metadata.created_at.as_str(), a.metadata.version.as_str())
                .cmp(&(b.metadata.created_at.as_str(), b.metadata.version.as_str()))
        });
        Ok(out)
    }

    /// The version that serves, if one was ever promoted.
    pub fn champion(&self, name: &str) -> Result<Option<String>> {
        read_pointer(&self.model_dir(name)?.join(CHAMPION_FILE))
    }

    /// The version that shadow-scores, if one is set.
    pub fn challenger(&self, name: &str) -> Result<Option<String>> {
        read_pointer(&self.model_dir(name)?.join(CHALLENGER_FILE))
    }

    /// Makes `version` the champion and records why.
    pub fn promote(&self, name: &str, version: &str, reason: &str, actor: &str) -> Result<HistoryEntry> {
        let _lock = self.lock(name)?;
        self.require_version(name, version)?;
        let from = self.champion(name)?;
        self.change_champion(name, ChampionAction::Promote, from, version, reason, actor)
    }

    /// Restores the champion that served before the current one (see the module docs).
    pub fn rollback(&self, name: &str, reason: &str, actor: &str) -> Result<HistoryEntry> {
        let _lock = self.lock(name)?;
        let stack = champion_stack(&self.history(name)?);
        if stack.len() < 2 {
            return Err(RegistryError::NothingToRollBack { name: name.into(), stack });
        }
        let to = stack[stack.len() - 2].clone();
        self.require_version(name, &to)?;
        let from = self.champion(name)?;
        self.change_champion(name, ChampionAction::Rollback, from, &to, reason, actor)
    }

    /// Sets (or with `None`, clears) the shadow challenger.
    pub fn set_challenger(&self, name: &str, version: Option<&str>) -> Result<()> {
        let _lock = self.lock(name)?;
        let path = self.model_dir(name)?.join(CHALLENGER_FILE);
        match version {
            Some(v) => {
                self.require_version(name, v)?;
                write_pointer(&path, v)
            }
            None => match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&path)(e)),
                _ => Ok(()),
            },
        }
    }

    /// Every champion change of `name`, oldest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let path = self.model_dir(name)?.join(HISTORY_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| RegistryError::History {
                    path: path.display().to_string(),
                    line: i + 1,
                    message: e.to_string(),
                })
            })
            .collect()
    }

    fn require_version(&self, name: &str, version: &str) -> Result<()> {
        if self.version_dir(name, version)?.join(METADATA_FILE).is_file() {
            Ok(())
        } else {
            Err(RegistryError::NoSuchVersion { name: name.into(), version: version.into() })
        }
    }

    /// History line first, then the pointer: a crash between the two leaves a history
    /// that names a change the pointer does not show yet, which the next promotion or a
    /// reader comparing the two can see; the reverse would serve a version with no record.
    fn change_champion(
        &self,
        name: &str,
        action: ChampionAction,
        from: Option<String>,
        to: &str,
        reason: &str,
        actor: &str,
    ) -> Result<HistoryEntry> {
        let dir = self.model_dir(name)?;
        let entry = HistoryEntry {
            at_ms: crate::now_ms(),
            action,
            from,
            to: to.to_string(),
            reason: reason.to_string(),
            actor: actor.to_string(),
        };
        let history = dir.join(HISTORY_FILE);
        let mut line = serde_json::to_string(&entry).map_err(|e| RegistryError::History {
            path: history.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        line.push('\n');
        let mut file = OpenOptions::new().create(true).append(true).open(&history).map_err(io_err(&history))?;
        file.write_all(line.as_bytes()).map_err(io_err(&history))?;
        file.sync_all().map_err(io_err(&history))?;
        write_pointer(&dir.join(CHAMPION_FILE), to)?;
        Ok(entry)
    }

    /// An exclusive lock over this model's writers, released when dropped.
    fn lock(&self, name: &str) -> Result<File> {
        let dir = self.model_dir(name)?;
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let path = dir.join(".lock");
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(file)
    }
}

/// The champions in serving order after replaying `history`: promotions push, rollbacks
/// pop. The last element is the current champion.
pub fn champion_stack(history: &[HistoryEntry]) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    for entry in history {
        match entry.action {
            ChampionAction::Promote => {
                if stack.last() != Some(&entry.to) {
                    stack.push(entry.to.clone());
                }
            }
            ChampionAction::Rollback => {
                stack.pop();
                if stack.last() != Some(&entry.to) {
                    // A rollback to a version the replayed stack does not show (a history
                    // edited by hand): trust the log's target.
                    stack.push(entry.to.clone());
                }
            }
        }
    }
    stack
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok { Ok(()) } else { Err(RegistryError::InvalidName { what, name: name.to_string() }) }
}

fn read_metadata(path: &Path) -> Result<ModelMetadata> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text)
        .map_err(|e| RegistryError::Metadata { path: path.display().to_string(), message: e.to_string() })
}

fn read_pointer(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let version = text.trim();
            Ok((!version.is_empty()).then(|| version.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn write_pointer(path: &Path, version: &str) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_synced(&tmp, format!("{version}\n").as_bytes())?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(io_err(path))?;
    file.write_all(bytes).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

/// Metadata for examples and tests of code that uses the registry.
#[doc(hidden)]
pub mod tests_support {
    use crate::model::{Lineage, ModelMetadata};

    pub fn metadata(name: &str, version: &str) -> ModelMetadata {
        ModelMetadata {
            name: name.into(),
            version: version.into(),
            kind: "logistic_regression".into(),
            created_at: format!("2026-11-26T00:00:00Z-{version}"),
            onnx_file: "model.onnx".into(),
            sha256: String::new(),
            input_name: "input".into(),
            feature_names: vec!["a".into(), "b".into()],
            output_name: "probabilities".into(),
            positive_class_index: 1,
            lineage: Lineage {
                trained_by: "test".into(),
                training_data: "none".into(),
                training_rows: 0,
                seed: None,
                parent_version: None,
                hyperparameters: Default::default(),
            },
            metrics: Default::default(),
            reference: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::metadata;
    use super::*;

    fn registry() -> (tempfile::TempDir, ModelRegistry) {
        let dir = tempfile::tempdir().unwrap();
        let registry = ModelRegistry::create(dir.path().join("models")).unwrap();
        (dir, registry)
    }

    #[test]
    fn publish_fills_the_checksum_and_lists_versions() {
        let (_d, reg) = registry();
        let written = reg.publish(&metadata("fraud", "v1"), b"abc").unwrap();
        // sha256("abc"), computed independently (FIPS 180-2 test vector).
        assert_eq!(written.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        reg.publish(&metadata("fraud", "v2"), b"def").unwrap();
        let versions: Vec<String> = reg.versions("fraud").unwrap().into_iter().map(|v| v.metadata.version).collect();
        assert_eq!(versions, vec!["v1", "v2"]);
        assert_eq!(reg.models().unwrap(), vec!["fraud"]);
        let (meta, onnx) = reg.load("fraud", "v1").unwrap();
        assert_eq!((meta, onnx), (written, b"abc".to_vec()));
        assert_eq!(reg.champion("fraud").unwrap(), None);
    }

    #[test]
    fn published_versions_never_change() {
        let (_d, reg) = registry();
        reg.publish(&metadata("fraud", "v1"), b"abc").unwrap();
        let err = reg.publish(&metadata("fraud", "v1"), b"other").unwrap_err();
        assert!(matches!(err, RegistryError::VersionExists { .. }), "{err}");
        assert_eq!(reg.load("fraud", "v1").unwrap().1, b"abc");
    }

    #[test]
    fn names_that_could_escape_the_registry_are_refused() {
        let (_d, reg) = registry();
        for bad in ["", "..", "../x", "a/b", ".hidden", "v 1"] {
            let err = reg.publish(&metadata("fraud", bad), b"x").unwrap_err();
            assert!(matches!(err, RegistryError::InvalidName { .. }), "{bad:?}: {err}");
        }
        assert!(matches!(reg.promote("fraud", "../../etc", "", "t"), Err(RegistryError::InvalidName { .. })));
    }

    #[test]
    fn promote_requires_a_published_version() {
        let (_d, reg) = registry();
        let err = reg.promote("fraud", "v9", "why", "test").unwrap_err();
        assert!(matches!(err, RegistryError::NoSuchVersion { .. }), "{err}");
        assert_eq!(reg.champion("fraud").unwrap(), None);
    }

    #[test]
    fn rollback_walks_back_through_the_champions_that_served() {
        let (_d, reg) = registry();
        for v in ["v1", "v2", "v3"] {
            reg.publish(&metadata("fraud", v), v.as_bytes()).unwrap();
        }
        assert!(matches!(reg.rollback("fraud", "r", "t"), Err(RegistryError::NothingToRollBack { .. })));
        reg.promote("fraud", "v1", "first", "t").unwrap();
        assert!(matches!(reg.rollback("fraud", "r", "t"), Err(RegistryError::NothingToRollBack { .. })));
        reg.promote("fraud", "v2", "better", "t").unwrap();
        reg.promote("fraud", "v3", "better still", "t").unwrap();
        let back = reg.rollback("fraud", "v3 misbehaves", "t").unwrap();
        assert_eq!((back.from.as_deref(), back.to.as_str()), (Some("v3"), "v2"));
        assert_eq!(reg.champion("fraud").unwrap().as_deref(), Some("v2"));
        reg.rollback("fraud", "v2 too", "t").unwrap();
        assert_eq!(reg.champion("fraud").unwrap().as_deref(), Some("v1"));
        assert!(matches!(reg.rollback("fraud", "r", "t"), Err(RegistryError::NothingToRollBack { .. })));
        let actions: Vec<(ChampionAction, String)> =
            reg.history("fraud").unwrap().into_iter().map(|h| (h.action, h.to)).collect();
        use ChampionAction::*;
        assert_eq!(
            actions,
            vec![
                (Promote, "v1".into()),
                (Promote, "v2".into()),
                (Promote, "v3".into()),
                (Rollback, "v2".into()),
                (Rollback, "v1".into())
            ]
        );
    }

    #[test]
    fn challenger_is_set_and_cleared() {
        let (_d, reg) = registry();
        reg.publish(&metadata("fraud", "v1"), b"x").unwrap();
        reg.set_challenger("fraud", Some("v1")).unwrap();
        assert_eq!(reg.challenger("fraud").unwrap().as_deref(), Some("v1"));
        reg.set_challenger("fraud", None).unwrap();
        reg.set_challenger("fraud", None).unwrap();
        assert_eq!(reg.challenger("fraud").unwrap(), None);
        assert!(reg.set_challenger("fraud", Some("v2")).is_err());
    }

    #[test]
    fn concurrent_promotions_keep_history_and_pointer_consistent() {
        let (_d, reg) = registry();
        for v in 0..8 {
            reg.publish(&metadata("fraud", &format!("v{v}")), b"x").unwrap();
        }
        std::thread::scope(|s| {
            for t in 0..4 {
                let reg = reg.clone();
                s.spawn(move || {
                    for i in 0..25 {
                        reg.promote("fraud", &format!("v{}", (t + i) % 8), "race", "t").unwrap();
                    }
                });
            }
        });
        let history = reg.history("fraud").unwrap();
        assert_eq!(history.len(), 100);
        // Each change starts from the champion the previous one left.
        for pair in history.windows(2) {
            assert_eq!(pair[1].from.as_deref(), Some(pair[0].to.as_str()));
        }
        assert_eq!(reg.champion("fraud").unwrap().as_deref(), Some(history[99].to.as_str()));
    }
}
