//! # weir-features
//!
//! weir's feature engine. It owns:
//!
//! - the feature configuration and the definitions built from it: transforms of the event
//!   and aggregations per entity, over any event schema (fields named by path), the
//!   feature vector's names and order ([`config`], [`definitions`], [`transforms`]);
//! - sliding-window aggregation per entity in event time: count, sum, mean, min, max,
//!   distinct (exact and incremental, then HyperLogLog, and back to exact once a busy
//!   entity calms down), seconds since the last event; panes plus running totals per
//!   window, so the cost of an event does not grow with the window ([`windows`], one
//!   concept per file: the spec, panes, HyperLogLog, exact distinct, the entity state, its
//!   encoding, watermarks, replay fences). All aggregation runs in Rust, shared by both
//!   stores;
//! - the online stores behind [`weir_schemas::store::FeatureStore`]: Redis for production
//!   ([`redis_store`], a transactional state store: states this process wrote stay decoded
//!   in memory, others are read; compute here; write back with a compare-and-set on a
//!   version that never repeats) and an in-process one for `weir demo` and tests
//!   ([`embedded`]), which give the same answers and states, bit for bit;
//! - state in process for production ([`local_state`]): the states of the input
//!   partitions a process owns, in the embedded engine, restored from and written to a
//!   changelog ([`changelog`]: the records' format; the topic itself is `weir-ingest`'s),
//!   with Redis as the serving copy written behind ([`serving_copy`], through
//!   `redis_store`'s versioned `serving` writes);
//! - replay safety: each entity keeps, per source partition, the highest offset applied,
//!   written atomically with its windows, so a replay after a crash applies nothing twice;
//!   per partition watermarks make a replay decide lateness as the first pass did.
//!   Offsets are stored to Kafka only after the store acknowledged the batch (in
//!   `weir-ingest`), so nothing is skipped either.
//!
//! Inside, one open-addressing hash table (`probe`) serves every hand-rolled lookup (the
//! embedded store's entity slots, the distinct index, the distinct recount), and `hint`
//! holds the prefetch hint both use. Dependencies point one way: the stores use
//! `windows`, `windows` uses `probe`, `probe` uses `hint`.
//!
//! ```
//! use weir_features::{config::FeaturesConfig, definitions::FeatureDefinitions, embedded::EmbeddedStore};
//! use weir_schemas::record::{EventRecord, FieldValue};
//! use weir_schemas::store::{FeatureStore, SourcePosition};
//!
//! let defs = FeatureDefinitions::new(&FeaturesConfig::default()).unwrap();
//! assert_eq!(defs.paths(), ["event_time", "amount", "channel", "card_id"]);
//! let record = EventRecord::new(vec![
//!     FieldValue::Int(1_700_000_000_000),
//!     FieldValue::Float(20.0),
//!     FieldValue::Str("ecom".into()),
//!     FieldValue::Str("card-1".into()),
//! ]);
//! defs.check(&record).unwrap();
//! let store = EmbeddedStore::new(defs.engine_spec().clone());
//! let at = SourcePosition { topic: "transactions".into(), partition: 0, offset: 7 };
//! let observations = defs.observations(&record, at);
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let answer = rt.block_on(store.observe(&observations)).unwrap();
//! let mut vector = Vec::new();
//! defs.assemble(&record, &answer.results, &mut vector);
//! assert_eq!(defs.names()[4..8], ["card_count_1m", "card_amount_sum_1m", "card_count_1h", "card_amount_sum_1h"]);
//! assert_eq!(vector[4..9], [1.0, 20.0, 1.0, 20.0, 1.0]);
//! // The same position again is a replay, fenced off: the windows do not change.
//! let again = rt.block_on(store.observe(&observations)).unwrap();
//! assert_eq!((again.replayed, &again.results[0].values), (1, &answer.results[0].values));
//! ```

pub mod changelog;
pub mod config;
pub mod definitions;
pub mod embedded;
pub mod error;
mod hint;
pub mod local_state;
mod probe;
pub mod redis_store;
pub mod serving_copy;
pub mod transforms;
pub mod windows;

pub use error::{Error, Result};
