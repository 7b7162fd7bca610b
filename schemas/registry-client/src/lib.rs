//! # weir-schema-registry
//!
//! weir's client of a Confluent-compatible Schema Registry (Confluent Platform or Cloud,
//! Karapace, Redpanda, Apicurio in its Confluent mode), behind the same
//! [`SchemaRegistry`](weir_schemas::wire::SchemaRegistry) seam as the compiled-in id map:
//!
//! - input messages are decoded with the writer schema their id names, fetched once per
//!   id ([`ConfluentRegistry`]: lock-free cache hits, concurrent misses of one id
//!   coalesced into one fetch, an id the registry does not know answered as
//!   `UnknownSchema` after a bounded retry, never a crash);
//! - weir's output schemas (scores, drift alerts, labels) are registered at start under
//!   the configured subjects (default TopicNameStrategy, `<topic>-value`), and the ids
//!   the registry gives frame what weir writes, so Confluent deserializers downstream
//!   read them;
//! - the input subject's latest schema is fetched at start, so that the binary can check
//!   the configured field paths against it before consuming anything;
//! - an unreachable registry at start-up is retried with exponential backoff within a
//!   budget, then reported with the URL, the number of tries and the last cause;
//!   credentials come as [`Secret`](weir_schemas::secret::Secret)s and never appear in
//!   a message.
//!
//! ## Why weir has its own client
//!
//! The two maintained Rust clients were weighed against weir's hot path and build:
//!
//! - `schema-registry-client` (0.4) keeps its cache behind one `Mutex` that every
//!   lookup takes, so with several decoding threads each event would contend on it; and
//!   its non-optional dependencies include Protobuf and JSON Schema support
//!   (`prost-reflect`, `jsonschema`), `reqwest` 0.13, `mini-moka` and `dashmap`: minutes
//!   of cold build on this project's 2-core machines for the five REST calls weir makes.
//! - `schema_registry_converter` (6.0) coalesces concurrent fetches well
//!   (`DashMap` of shared futures), but is async-only for what weir calls from a
//!   synchronous decoder, decodes into `apache_avro::Value` (weir decodes by field path
//!   with its own compiled programs), needs apache-avro 0.22 where the workspace is on
//!   0.21 (two copies built), and its TLS goes through `reqwest` 0.13, whose rustls
//!   defaults to aws-lc-rs (a CMake build).
//!
//! What weir needs is small: five REST calls ([`rest`]), a cache whose hits take no lock,
//! and control over retries. Per event, weir's own
//! [`RecordDecoder`](weir_schemas::paths::RecordDecoder) caches its compiled decoder per
//! id (a table read with plain loads, about 4 ns once cached: `docs/performance.md`), so
//! this client is only asked on a new id. It is
//! blocking (`ureq`, rustls on ring, HTTP/1.1): those calls are rare, and blocking keeps
//! the [`SchemaRegistry`](weir_schemas::wire::SchemaRegistry) trait synchronous, as the
//! decoders that call it are.
//!
//! ```no_run
//! use weir_schema_registry::{ClientSettings, ConfluentRegistry, Input, SubjectPlan};
//! use weir_schemas::wire::SchemaRegistry;
//!
//! let settings = ClientSettings::new("http://127.0.0.1:8081").unwrap();
//! let plan = SubjectPlan {
//!     outputs: vec![],
//!     inputs: vec![Input { subject: "transaction".into(), registry_subject: "transactions-value".into() }],
//! };
//! let registry = ConfluentRegistry::connect(settings, &plan).unwrap();
//! let latest = registry.latest("transaction").unwrap();
//! assert_eq!(registry.by_id(latest.id).unwrap().text, latest.text); // cached, no request
//! ```
//!
//! One concept per file: [`settings`] ← [`rest`] (HTTP and the API's replies) ←
//! [`registry`] (the cache and the seam), with [`retry`] and [`plan`] beside them.

pub mod error;
pub mod plan;
pub mod registry;
pub mod rest;
pub mod retry;
pub mod settings;

pub use error::{Error, Result};
pub use plan::{topic_value_subject, Input, Output, SubjectPlan};
pub use registry::ConfluentRegistry;
pub use settings::{Auth, ClientSettings};
