//! Where schema ids come from: the [`SchemaRegistry`] seam, and [`LocalSchemaRegistry`],
//! an id → `.avsc` map in memory (weir's own schemas compiled in, or a map file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{EventError, Result, SchemaError};

/// One registered schema, parsed once for both Avro libraries.
#[derive(Debug)]
pub struct RegisteredSchema {
    pub id: u32,
    pub subject: String,
    /// The `.avsc` text as registered.
    pub text: String,
    /// For the hot path (`serde_avro_fast`).
    pub fast: serde_avro_fast::Schema,
    /// For resolution checks (`apache-avro`).
    pub canonical: apache_avro::Schema,
}

impl RegisteredSchema {
    /// Parses `text` for both Avro libraries. `origin` names it in errors (a file name, a
    /// registry URL).
    pub fn parse(id: u32, subject: &str, origin: &str, text: String) -> Result<Self> {
        let parse_err = |message: String| SchemaError::Parse { id, file: origin.to_string(), message };
        let fast: serde_avro_fast::Schema = text.parse().map_err(|e| parse_err(format!("{e}")))?;
        let canonical = apache_avro::Schema::parse_str(&text).map_err(|e| parse_err(e.to_string()))?;
        Ok(RegisteredSchema { id, subject: subject.to_string(), text, fast, canonical })
    }
}

/// Where schema ids come from: [`LocalSchemaRegistry`], or the Confluent REST API client
/// of the `weir-schema-registry` crate.
///
/// Subjects here are weir's own names ([`super::subjects`], `[input] subject`); a remote
/// registry maps them to its subjects (`<topic>-value`). A remote implementation may
/// block on the network in [`SchemaRegistry::by_id`] the first time it sees an id, so
/// callers keep it off the per-event path: [`crate::paths::RecordDecoder`] asks once per
/// id and caches what it compiled.
pub trait SchemaRegistry: Send + Sync {
    /// The writer schema with this id, or
    /// [`ErrorClass::UnknownSchema`](crate::error::ErrorClass::UnknownSchema).
    fn by_id(&self, id: u32) -> std::result::Result<Arc<RegisteredSchema>, EventError>;
    /// The schema weir writes for `subject` (the highest id registered for it).
    fn latest(&self, subject: &str) -> Result<Arc<RegisteredSchema>>;
    /// All schemas registered for `subject`.
    fn versions(&self, subject: &str) -> Vec<Arc<RegisteredSchema>>;
}

/// An id → `.avsc` map held in memory.
#[derive(Debug, Default)]
pub struct LocalSchemaRegistry {
    by_id: BTreeMap<u32, Arc<RegisteredSchema>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    #[allow(dead_code)]
    doc: Option<String>,
    schemas: Vec<MapEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MapEntry {
    id: u32,
    subject: String,
    file: String,
}

/// The schema files shipped with weir, compiled in so that the binary runs anywhere.
const EMBEDDED: &[(&str, &str)] = &[
    ("registry.json", include_str!("../../avro/registry.json")),
    ("transaction.avsc", include_str!("../../avro/transaction.avsc")),
    ("transaction-v2.avsc", include_str!("../../avro/transaction-v2.avsc")),
    ("label.avsc", include_str!("../../avro/label.avsc")),
    ("score.avsc", include_str!("../../avro/score.avsc")),
    ("score-v2.avsc", include_str!("../../avro/score-v2.avsc")),
    ("score-v3.avsc", include_str!("../../avro/score-v3.avsc")),
    ("dead-letter.avsc", include_str!("../../avro/dead-letter.avsc")),
    ("drift-alert.avsc", include_str!("../../avro/drift-alert.avsc")),
    ("interaction.avsc", include_str!("../../avro/interaction.avsc")),
];

impl LocalSchemaRegistry {
    /// weir's own schemas (`schemas/avro/registry.json`), compiled in.
    pub fn embedded() -> Result<Self> {
        let lookup = |name: &str| {
            EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| SchemaError::Map { path: "embedded".into(), message: format!("no file {name}") })
        };
        Self::from_map_text("embedded registry.json", &lookup("registry.json")?, lookup)
    }

    /// Reads a map file like `schemas/avro/registry.json`; `.avsc` paths are relative to it.
    pub fn from_map_file(path: &Path) -> Result<Self> {
        let io = |p: &Path, source| SchemaError::Io { path: p.display().to_string(), source };
        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        Self::from_map_text(&path.display().to_string(), &text, |file| {
            let p = dir.join(file);
            std::fs::read_to_string(&p).map_err(|e| io(&p, e))
        })
    }

    fn from_map_text(
        map_name: &str,
        map_text: &str,
        mut read: impl FnMut(&str) -> Result<String>,
    ) -> Result<Self> {
        let map: MapFile = serde_json::from_str(map_text)
            .map_err(|e| SchemaError::Map { path: map_name.to_string(), message: e.to_string() })?;
        let mut registry = LocalSchemaRegistry::default();
        for entry in map.schemas {
            let text = read(&entry.file)?;
            registry.register(entry.id, &entry.subject, &entry.file, text)?;
        }
        Ok(registry)
    }

    /// Adds one schema. `origin` names it in errors (a file name).
    pub fn register(&mut self, id: u32, subject: &str, origin: &str, text: String) -> Result<()> {
        if self.by_id.contains_key(&id) {
            return Err(SchemaError::DuplicateId { id });
        }
        let schema = RegisteredSchema::parse(id, subject, origin, text)?;
        self.by_id.insert(id, Arc::new(schema));
        Ok(())
    }
}

impl SchemaRegistry for LocalSchemaRegistry {
    fn by_id(&self, id: u32) -> std::result::Result<Arc<RegisteredSchema>, EventError> {
        self.by_id
            .get(&id)
            .cloned()
            .ok_or_else(|| EventError::unknown_schema(format!("schema id {id} is not registered")))
    }

    fn latest(&self, subject: &str) -> Result<Arc<RegisteredSchema>> {
        self.by_id
            .values()
            .filter(|s| s.subject == subject)
            .max_by_key(|s| s.id)
            .cloned()
            .ok_or_else(|| SchemaError::MissingSubject { subject: subject.to_string() })
    }

    fn versions(&self, subject: &str) -> Vec<Arc<RegisteredSchema>> {
        self.by_id.values().filter(|s| s.subject == subject).cloned().collect()
    }
}
