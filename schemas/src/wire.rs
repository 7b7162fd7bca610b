//! The Confluent wire format and the schema registry seam.
//!
//! Every value weir reads or writes on Kafka is framed the Confluent way:
//!
//! ```text
//! byte 0      magic, always 0
//! bytes 1..5  schema id, u32 big-endian
//! bytes 5..   Avro binary datum written with that schema
//! ```
//!
//! Schema ids resolve through a [`SchemaRegistry`]. [`LocalSchemaRegistry`] reads an
//! id → `.avsc` map (the default one, `schemas/avro/registry.json`, is compiled in); a
//! client for the Confluent REST API implements the same trait.
//!
//! Decoding is by the *writer's* schema (the one the id names) into the typed struct, field
//! by name, with `serde_avro_fast` on the hot path. At start-up every writer schema of a
//! subject is checked with `apache-avro`'s resolution rules against weir's reader schema,
//! so a writer weir cannot read is refused per event as [`ErrorClass::UnknownSchema`]
//! instead of half-decoding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EventError, Result, SchemaError};

pub const MAGIC_BYTE: u8 = 0;
pub const HEADER_LEN: usize = 5;

/// Splits a framed message into its schema id and Avro body.
pub fn unframe(bytes: &[u8]) -> std::result::Result<(u32, &[u8]), EventError> {
    if bytes.len() < HEADER_LEN {
        return Err(EventError::malformed(format!(
            "message of {} bytes is shorter than the 5-byte confluent header",
            bytes.len()
        )));
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(EventError::malformed(format!("magic byte is {:#04x}, expected 0x00", bytes[0])));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}

/// Appends the 5-byte Confluent header for `schema_id` to `out`.
pub fn write_header(out: &mut Vec<u8>, schema_id: u32) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Subjects weir itself reads and writes.
pub mod subjects {
    pub const TRANSACTION: &str = "transaction";
    pub const LABEL: &str = "label";
    pub const SCORE: &str = "score";
    pub const DEAD_LETTER: &str = "dead-letter";
    pub const DRIFT_ALERT: &str = "drift-alert";
}

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

/// Where schema ids come from. The seam for a Confluent schema-registry client.
pub trait SchemaRegistry: Send + Sync {
    /// The writer schema with this id, or [`ErrorClass::UnknownSchema`].
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
    ("registry.json", include_str!("../avro/registry.json")),
    ("transaction.avsc", include_str!("../avro/transaction.avsc")),
    ("transaction-v2.avsc", include_str!("../avro/transaction-v2.avsc")),
    ("label.avsc", include_str!("../avro/label.avsc")),
    ("score.avsc", include_str!("../avro/score.avsc")),
    ("dead-letter.avsc", include_str!("../avro/dead-letter.avsc")),
    ("drift-alert.avsc", include_str!("../avro/drift-alert.avsc")),
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
        let parse_err = |message: String| SchemaError::Parse { id, file: origin.to_string(), message };
        let fast: serde_avro_fast::Schema = text.parse().map_err(|e| parse_err(format!("{e}")))?;
        let canonical = apache_avro::Schema::parse_str(&text).map_err(|e| parse_err(e.to_string()))?;
        let schema = RegisteredSchema { id, subject: subject.to_string(), text, fast, canonical };
        if self.by_id.insert(id, Arc::new(schema)).is_some() {
            return Err(SchemaError::DuplicateId { id });
        }
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

/// Decodes framed values of one subject into `T`.
///
/// Built once per subject: it resolves, with `apache-avro`, which registered writer schemas
/// the reader schema can read, and refuses the others per event with a message saying why.
pub struct Decoder<T> {
    subject: String,
    registry: Arc<dyn SchemaRegistry>,
    /// Writer ids checked at construction: `Ok` readable, `Err` the reason it is not.
    checked: BTreeMap<u32, std::result::Result<Arc<RegisteredSchema>, String>>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Decoder<T> {
    /// `reader` is the schema the typed struct `T` follows (normally `registry.latest(subject)`
    /// or the first version weir shipped).
    pub fn new(registry: Arc<dyn SchemaRegistry>, subject: &str, reader: &RegisteredSchema) -> Self {
        let mut checked = BTreeMap::new();
        for writer in registry.versions(subject) {
            let verdict = match apache_avro::schema_compatibility::SchemaCompatibility::can_read(
                &writer.canonical,
                &reader.canonical,
            ) {
                Ok(()) => Ok(writer.clone()),
                Err(e) => Err(format!(
                    "schema id {} of subject {subject} cannot be read as schema id {}: {e}",
                    writer.id, reader.id
                )),
            };
            checked.insert(writer.id, verdict);
        }
        Decoder { subject: subject.to_string(), registry, checked, _t: std::marker::PhantomData }
    }

    /// Decodes one framed value. Never panics, whatever the bytes.
    pub fn decode(&self, bytes: &[u8]) -> std::result::Result<T, EventError> {
        let (id, body) = unframe(bytes)?;
        let writer = match self.checked.get(&id) {
            Some(Ok(writer)) => writer.clone(),
            Some(Err(reason)) => return Err(EventError::unknown_schema(reason.clone())),
            None => {
                // Registered later, or for another subject.
                let writer = self.registry.by_id(id)?;
                return Err(EventError::unknown_schema(format!(
                    "schema id {id} belongs to subject {}, expected {}",
                    writer.subject, self.subject
                )));
            }
        };
        serde_avro_fast::from_datum_slice::<T>(body, &writer.fast).map_err(|e| {
            EventError::malformed(format!("avro body does not decode with schema id {id}: {e}"))
        })
    }
}

/// Encodes values of one subject with weir's current schema for it.
pub struct Encoder {
    schema: Arc<RegisteredSchema>,
}

impl Encoder {
    pub fn new(registry: &dyn SchemaRegistry, subject: &str) -> Result<Self> {
        Ok(Encoder { schema: registry.latest(subject)? })
    }

    pub fn for_schema(schema: Arc<RegisteredSchema>) -> Self {
        Encoder { schema }
    }

    pub fn schema_id(&self) -> u32 {
        self.schema.id
    }

    /// Header + Avro body, appended to `out`.
    pub fn encode_into<T: Serialize>(&self, value: &T, out: &mut Vec<u8>) -> Result<()> {
        write_header(out, self.schema.id);
        let mut config = serde_avro_fast::ser::SerializerConfig::new(&self.schema.fast);
        let buf = std::mem::take(out);
        *out = serde_avro_fast::to_datum(value, buf, &mut config).map_err(|e| SchemaError::Encode {
            what: std::any::type_name::<T>(),
            id: self.schema.id,
            message: e.to_string(),
        })?;
        Ok(())
    }

    pub fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(128);
        self.encode_into(value, &mut out)?;
        Ok(out)
    }
}
