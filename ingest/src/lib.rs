//! # weir-ingest
//!
//! Everything in weir that touches Kafka. It owns:
//!
//! - the at-least-once consumer loop ([`consumer`]): micro-batches, offsets stored with
//!   `enable.auto.offset.store=false` only after the batch's effects (feature writes,
//!   score deliveries, dead letters) are acknowledged, commit on revoke and on shutdown;
//! - producers that wait for delivery ([`producer`]) and the dead-letter topic
//!   ([`dead_letter`]);
//! - the seeded load generator behind `weir produce` ([`generator`]) and the paced
//!   producer that sends its output ([`load_producer`]);
//! - exactly-once batches ([`transactions`]: scores, changelog records, dead letters and
//!   offsets in one Kafka transaction, with `kafka.exactly_once`) and the changelog topic
//!   of the state kept in process ([`changelog`]: created compacted, read back to restore a
//!   partition);
//! - consumer-lag queries against the brokers' watermarks ([`lag`]);
//! - Kafka configuration ([`config`]).
//!
//! The stage behind the consumer is a [`consumer::BatchHandler`], implemented by the
//! `weir` binary, which wires features and scorer in; this crate knows neither.
//!
//! ```no_run
//! # use weir_ingest::{config::KafkaConfig, consumer::*, producer::EventProducer};
//! # struct Handler;
//! # impl BatchHandler for Handler {
//! #   async fn handle(&mut self, b: &[InputRecord<'_>]) -> weir_ingest::Result<Vec<Disposition>> {
//! #     Ok(vec![Disposition::Done; b.len()]) } }
//! # async fn run() -> weir_ingest::Result<()> {
//! let config = KafkaConfig::new("127.0.0.1:9092");
//! let consumer = subscribe(&config, &[&config.topics.input])?;
//! let producer = EventProducer::new(&config)?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let (stats, _handler) = ConsumerLoop::new(&config, consumer, producer, Handler).run(shutdown).await?;
//! # Ok(()) }
//! ```

pub mod changelog;
pub mod config;
pub mod consumer;
pub mod dead_letter;
pub mod error;
pub mod generator;
pub mod lag;
pub mod load_producer;
pub mod producer;
pub mod record;
pub mod transactions;

pub use error::{Error, Result};
