//! Typed values of one subject to and from framed Avro: [`Decoder`] (by the writer's
//! schema, resolution checked at start-up) and [`Encoder`] (weir's current schema).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::frame::{unframe, write_header};
use super::schema_registry::{RegisteredSchema, SchemaRegistry};
use crate::error::{EventError, Result, SchemaError};

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
