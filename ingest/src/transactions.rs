//! Exactly-once batches: a batch's outputs (scores, changelog records, dead letters) and
//! its input offsets committed in one Kafka transaction, or none of them.
//!
//! The consumer loop ([`crate::consumer`], with `kafka.exactly_once = true`) begins a
//! transaction before handing a batch to its handler, lets the handler produce through the
//! transactional producer, sends the dead letters the same way, adds the batch's offsets
//! with the consumer's group metadata (KIP-447: a zombie of an older group generation is
//! fenced by the group coordinator, whatever its `transactional.id`), and commits. A
//! `read_committed` reader of the scores then sees each event's score exactly once, and a
//! restore from the changelog sees exactly the state those scores were computed from.
//!
//! When anything fails, the transaction is aborted and the batch *rewound*: the consumer
//! seeks back to the batch's first offsets and the handler forgets the state it applied
//! (the changelog, read committed, still holds the state before the batch), then the batch
//! is consumed again. librdkafka's transactional calls block: they run on the blocking
//! pool.

use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::TopicPartitionList;

use crate::producer::EventProducer;

/// How a transactional call failed, by what to do next.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// Abort the transaction and try the batch again.
    #[error("transaction must be aborted while {context}: {source}")]
    Abortable { context: &'static str, source: KafkaError },
    /// The producer cannot go on (fenced by a newer producer with the same
    /// `transactional.id`, or a broker that does not support transactions): stop.
    #[error("transactional producer failed for good while {context}: {source}")]
    Fatal { context: &'static str, source: KafkaError },
}

fn classify(context: &'static str, source: KafkaError) -> TransactionError {
    let fatal = match &source {
        KafkaError::Transaction(e) => e.is_fatal(),
        _ => false,
    };
    if fatal { TransactionError::Fatal { context, source } } else { TransactionError::Abortable { context, source } }
}

fn retriable(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(e) if e.is_retriable() && !e.txn_requires_abort() && !e.is_fatal())
}

/// Begins a transaction (a local call: no round trip).
pub fn begin(producer: &EventProducer) -> Result<(), TransactionError> {
    producer.inner().begin_transaction().map_err(|e| classify("beginning a transaction", e))
}

/// Adds `offsets` (the next offset to read, per partition) for `group` to the open
/// transaction and commits it; a retriable failure is retried (librdkafka's contract) up
/// to a few times within `timeout` each.
pub async fn commit(
    producer: &EventProducer,
    offsets: TopicPartitionList,
    group: ConsumerGroupMetadata,
    timeout: Duration,
) -> Result<(), TransactionError> {
    let producer = producer.inner().clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match producer.send_offsets_to_transaction(&offsets, &group, timeout) {
                Ok(()) => break,
                Err(e) if retriable(&e) && attempts < 3 => continue,
                Err(e) => return Err(classify("adding the batch's offsets to the transaction", e)),
            }
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            match producer.commit_transaction(timeout) {
                Ok(()) => return Ok(()),
                Err(e) if retriable(&e) && attempts < 3 => continue,
                Err(e) => return Err(classify("committing the transaction", e)),
            }
        }
    })
    .await;
    outcome.unwrap_or_else(|e| {
        Err(TransactionError::Fatal { context: "committing the transaction", source: KafkaError::Canceled })
            .inspect_err(|_| tracing::error!(error = %e, "transaction commit task failed"))
    })
}

/// Aborts the open transaction: none of its messages or offsets will be visible to a
/// `read_committed` reader.
pub async fn abort(producer: &EventProducer, timeout: Duration) -> Result<(), TransactionError> {
    let producer = producer.inner().clone();
    tokio::task::spawn_blocking(move || {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match producer.abort_transaction(timeout) {
                Ok(()) => return Ok(()),
                Err(e) if retriable(&e) && attempts < 3 => continue,
                Err(e) => return Err(classify("aborting the transaction", e)),
            }
        }
    })
    .await
    .unwrap_or(Err(TransactionError::Fatal { context: "aborting the transaction", source: KafkaError::Canceled }))
}
