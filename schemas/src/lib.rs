//! # weir-schemas
//!
//! The shared language of weir's stages. It owns:
//!
//! - the Avro schemas of every event on Kafka (`schemas/avro/*.avsc`, readable by any Avro
//!   tool) and the typed Rust structs for them ([`events`]); reading every version of
//!   weir's `Score` into the current one ([`score_versions`]);
//! - the Confluent wire format and the schema-id registry seam ([`wire`]);
//! - validation of incoming events with classified errors ([`validate`], [`error`]);
//! - [`secret::Secret`], the redacting holder of passwords and tokens read from the
//!   environment or files;
//! - decoding any Avro record into the values of named field paths ([`paths`]: a
//!   [`paths::RecordDecoder`] per subject, one compiled program per writer schema, giving
//!   [`record::EventRecord`]s), so that feature definitions, not Rust structs, say what
//!   weir reads from an event;
//! - the contracts between stages: the online feature store trait ([`store`]) and the
//!   model registry: each version's metadata ([`model`]) and the directory layout with
//!   promotion and rollback ([`registry`]).
//!
//! Stage crates depend on this crate and never on each other.
//!
//! The name stays `schemas` although the crate holds contracts of every kind (wire
//! format, store trait, model registry): every one of them is a schema in the wide sense
//! — the shape two stages agree on — and the folder name is fixed at the top of the
//! workspace. What would grow it beyond contracts (an implementation, I/O of its own
//! beyond reading the registry's files) belongs in a stage crate instead.
//!
//! ```
//! use std::sync::Arc;
//! use weir_schemas::wire::{Decoder, Encoder, LocalSchemaRegistry, SchemaRegistry, subjects};
//! use weir_schemas::events::Transaction;
//!
//! let registry: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded().unwrap());
//! let encoder = Encoder::new(registry.as_ref(), subjects::TRANSACTION).unwrap();
//! let reader = registry.by_id(1).unwrap();
//! let decoder = Decoder::<Transaction>::new(registry.clone(), subjects::TRANSACTION, &reader);
//! # let tx = Transaction { event_id: "e1".into(), card_id: "c1".into(), merchant_id: "m1".into(),
//! #   device_id: "d1".into(), amount: 12.5, currency: "EUR".into(), country: "FR".into(),
//! #   channel: "pos".into(), customer_segment: "retail".into(), event_time: 1_700_000_000_000 };
//! let bytes = encoder.encode(&tx).unwrap();
//! assert_eq!(decoder.decode(&bytes).unwrap(), tx);
//! assert!(decoder.decode(&bytes[..3]).is_err()); // classified, never a panic
//! ```

pub mod bounded;
pub mod error;
pub mod events;
pub mod model;
pub mod paths;
pub mod record;
pub mod registry;
pub mod score_versions;
pub mod secret;
pub mod store;
pub mod validate;
pub mod wire;

pub use error::{ErrorClass, EventError, PathError, SchemaError, StoreError};

/// Milliseconds since the Unix epoch, from the system clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
