//! # weir-features
//!
//! weir's feature engine. It owns:
//!
//! - the feature configuration and the feature vector's names and order ([`config`],
//!   [`vector`]);
//! - sliding-window aggregation per entity in event time: panes in a fixed ring plus
//!   running totals per window, so the cost of an event does not grow with the window
//!   ([`windows`]);
//! - the online stores behind [`weir_schemas::store::FeatureStore`]: Redis for production
//!   ([`redis_store`]) and an in-process one for `weir demo` and tests ([`memory`]), which
//!   give the same answers, bit for bit; both also answer request-time reads as of any
//!   time (`read_at`, one round trip);
//! - replay safety: each entity keeps, per source partition, the highest offset applied,
//!   written atomically with its windows, so a replay after a crash applies nothing twice.
//!   Offsets are stored to Kafka only after the store acknowledged the batch (in
//!   `weir-ingest`), so nothing is skipped either.
//!
//! ```
//! use weir_features::{config::FeaturesConfig, memory::EmbeddedStore};
//! use weir_schemas::store::{FeatureStore, Observation, SourcePosition};
//!
//! let config = FeaturesConfig::default();
//! let store = EmbeddedStore::new(config.window_specs(), config.allowed_lateness_ms());
//! let obs = Observation {
//!     entity: "card-1".into(),
//!     event_time_ms: 1_700_000_000_000,
//!     value: 20.0,
//!     position: SourcePosition { topic: "transactions".into(), partition: 0, offset: 7 },
//! };
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let result = rt.block_on(store.observe(&[obs.clone(), obs])).unwrap();
//! assert_eq!(result[0].values, vec![1.0, 20.0, 1.0, 20.0]); // count_1m, sum_1m, count_1h, sum_1h
//! assert_eq!(result[1].values, result[0].values);          // the replay is fenced off
//! ```

pub mod config;
pub mod error;
pub mod memory;
pub mod redis_store;
pub mod vector;
pub mod windows;

pub use error::{Error, Result};
