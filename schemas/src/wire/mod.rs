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
//! id → `.avsc` map (the default one, `schemas/avro/registry.json`, is compiled in); the
//! `weir-schema-registry` crate's client of the Confluent REST API implements the same
//! trait (`[schemas] registry_url`).
//!
//! Decoding is by the *writer's* schema (the one the id names) into the typed struct, field
//! by name, with `serde_avro_fast` on the hot path. At start-up every writer schema of a
//! subject is checked with `apache-avro`'s resolution rules against weir's reader schema,
//! so a writer weir cannot read is refused per event as [`ErrorClass::UnknownSchema`]
//! instead of half-decoding.
//!
//! The framing ([`unframe`], [`write_header`]), the registry seam and its in-memory
//! implementation ([`SchemaRegistry`], [`LocalSchemaRegistry`]) and the typed codec
//! ([`Decoder`], [`Encoder`]) are one file each; the codec uses the other two, which use
//! nothing of it.
//!
//! [`ErrorClass::UnknownSchema`]: crate::error::ErrorClass::UnknownSchema

mod codec;
mod frame;
mod schema_registry;

pub use codec::{Decoder, Encoder};
pub use frame::{unframe, write_header, HEADER_LEN, MAGIC_BYTE};
pub use schema_registry::{LocalSchemaRegistry, RegisteredSchema, SchemaRegistry};

/// Subjects weir itself reads and writes.
pub mod subjects {
    pub const TRANSACTION: &str = "transaction";
    pub const LABEL: &str = "label";
    pub const SCORE: &str = "score";
    pub const DEAD_LETTER: &str = "dead-letter";
    pub const DRIFT_ALERT: &str = "drift-alert";
    /// The second example schema (`interaction.avsc`): recommendation-style events.
    pub const INTERACTION: &str = "interaction";
}

#[cfg(test)]
mod tests;
