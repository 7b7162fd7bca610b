//! Decoding any Avro record into the values of named field paths.
//!
//! weir's feature definitions name the fields they read by path (`amount`, `user.id`,
//! `dwell_ms`), so weir needs no Rust type per event schema. This module owns that
//! decoding:
//!
//! - [`PathDecoder`]: for ONE writer schema and a list of paths, a flat program compiled
//!   once. Each writer field, in write order, is either skipped (as cheaply as its encoding
//!   allows: a varint, a fixed width, a length prefix, array/map blocks, by byte size when
//!   the writer gave one) or materialized into its slot of the [`EventRecord`]. Nothing
//!   that is not asked for is allocated.
//! - [`RecordDecoder`]: what the pipeline holds. Confluent framing, one accepted subject,
//!   and a [`PathDecoder`] per writer schema id, built on first sight and shared by all
//!   threads; so producers on v1 and v2 of a subject decode with the same paths.
//!
//! What a path means, for a writer schema:
//! - segments are record field names; a path goes through records and through unions of
//!   `null` and records (a null record gives [`FieldValue::Missing`] for every path below
//!   it; a record branch without the field likewise);
//! - the last segment names a value: `int`/`long` (and their logical types) give
//!   [`FieldValue::Int`], `float`/`double` [`FieldValue::Float`], `boolean`
//!   [`FieldValue::Bool`], `string` [`FieldValue::Str`], an enum the symbol as a
//!   [`FieldValue::Str`], `bytes`/`fixed` (decimals, durations) [`FieldValue::Bytes`]; a
//!   union of such (`["null", "long"]`) gives [`FieldValue::Null`] or the branch's value;
//! - a field the writer lacks is [`FieldValue::Missing`] (an older producer; the feature
//!   definitions decide what that means);
//! - a path that goes through a scalar, an array or a map, or names a record, an array or
//!   a map, is refused when the decoder is built ([`PathError`]), never per event.
//!
//! Decoding never panics: truncation, bad varints, lengths past the end, bad union or
//! enum indexes, invalid UTF-8 and trailing bytes are [`ErrorClass::Malformed`]
//! events; a schema id of another subject, or one the paths cannot be read from, is
//! [`ErrorClass::UnknownSchema`].
//!
//! ```
//! use std::sync::Arc;
//! use weir_schemas::events::Transaction;
//! use weir_schemas::paths::RecordDecoder;
//! use weir_schemas::record::FieldValue;
//! use weir_schemas::wire::{Encoder, LocalSchemaRegistry, SchemaRegistry, subjects};
//!
//! let registry: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded().unwrap());
//! let decoder = RecordDecoder::new(registry.clone(), subjects::TRANSACTION, &["amount", "card_id", "mcc"]).unwrap();
//! # let tx = Transaction { event_id: "e1".into(), card_id: "c1".into(), merchant_id: "m1".into(),
//! #   device_id: "d1".into(), amount: 12.5, currency: "EUR".into(), country: "FR".into(),
//! #   channel: "pos".into(), customer_segment: "retail".into(), event_time: 1_700_000_000_000 };
//! let v1 = Encoder::for_schema(registry.by_id(1).unwrap()).encode(&tx).unwrap();
//! let record = decoder.decode(&v1).unwrap();
//! assert_eq!(record.values, [FieldValue::Float(12.5), FieldValue::Str("c1".into()), FieldValue::Missing]);
//! let v2 = Encoder::for_schema(registry.by_id(6).unwrap()).encode(&tx).unwrap();
//! assert_eq!(decoder.decode(&v2).unwrap().get(2), &FieldValue::Null); // v2 has mcc, null here
//! ```
//!
//! [`ErrorClass::Malformed`]: crate::error::ErrorClass::Malformed
//! [`ErrorClass::UnknownSchema`]: crate::error::ErrorClass::UnknownSchema
//! [`EventRecord`]: crate::record::EventRecord
//! [`FieldValue`]: crate::record::FieldValue
//! [`FieldValue::Missing`]: crate::record::FieldValue::Missing
//! [`FieldValue::Null`]: crate::record::FieldValue::Null
//! [`FieldValue::Int`]: crate::record::FieldValue::Int
//! [`FieldValue::Float`]: crate::record::FieldValue::Float
//! [`FieldValue::Bool`]: crate::record::FieldValue::Bool
//! [`FieldValue::Str`]: crate::record::FieldValue::Str
//! [`FieldValue::Bytes`]: crate::record::FieldValue::Bytes
//! [`PathError`]: crate::error::PathError
//!
//! One concept per file, dependencies pointing one way: `program` (the ops and their
//! interpreter) ← `tree` (the requested paths) ← `compile` (schema + paths → ops) ←
//! `decoder` ([`PathDecoder`]) ← `record_decoder` ([`RecordDecoder`], with its per-id
//! cache `id_table`).

mod compile;
mod decoder;
mod id_table;
mod program;
mod record_decoder;
mod tree;

pub use decoder::PathDecoder;
pub use record_decoder::RecordDecoder;

#[cfg(test)]
mod tests;
