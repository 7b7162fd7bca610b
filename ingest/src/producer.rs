//! Producing with delivery acknowledgement.
//!
//! weir never treats a message as sent until the broker acknowledged it: callers get a
//! future per batch that resolves when every message in it is delivered, and only then
//! store the offsets of the input that caused them.

use std::time::Duration;

use futures::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::config::KafkaConfig;
use crate::error::{Error, Result};

/// The acknowledgement of a batch's messages, to wait for later: `'static`, so it can
/// outlive the batch it came from.
pub type Acks = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'static>>;

/// One message to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Sent with a null value (`payload` unused): a tombstone, which compaction turns
    /// into the key's deletion; or the copy of an input that had a null value.
    pub null_value: bool,
}

impl OutgoingMessage {
    pub fn new(key: impl Into<Vec<u8>>, payload: Vec<u8>) -> Self {
        OutgoingMessage { key: Some(key.into()), payload, headers: Vec::new(), null_value: false }
    }

    /// The librdkafka record of this message, to `topic` (and `partition`, when given).
    fn record<'m>(&'m self, topic: &'m str, partition: Option<i32>) -> FutureRecord<'m, [u8], [u8]> {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic);
        if !self.null_value {
            record = record.payload(&self.payload);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(k) = &self.key {
            record = record.key(k.as_slice());
        }
        if !self.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(self.headers.len());
            for (k, v) in &self.headers {
                headers = headers.insert(Header { key: k, value: Some(v.as_slice()) });
            }
            record = record.headers(headers);
        }
        record
    }

    /// A tombstone for `key`.
    pub fn tombstone(key: impl Into<Vec<u8>>) -> Self {
        OutgoingMessage { key: Some(key.into()), payload: Vec::new(), headers: Vec::new(), null_value: true }
    }
}

#[derive(Clone)]
pub struct EventProducer {
    producer: FutureProducer,
}

impl EventProducer {
    pub fn new(config: &KafkaConfig) -> Result<Self> {
        let producer: FutureProducer =
            config.producer_config().create().map_err(|e| Error::kafka("creating producer", e))?;
        Ok(EventProducer { producer })
    }

    pub fn inner(&self) -> &FutureProducer {
        &self.producer
    }

    /// A transactional producer (`transactional.id` set), its transactions initialised:
    /// an earlier producer with the same id is fenced, and a transaction it left open is
    /// aborted. See [`crate::transactions`].
    pub async fn transactional(config: &KafkaConfig, transactional_id: &str, timeout: Duration) -> Result<Self> {
        let mut c = config.producer_config();
        // librdkafka refuses a message timeout longer than the transaction's.
        let message_timeout = config.transaction_timeout_ms.min(30_000);
        c.set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", config.transaction_timeout_ms.to_string())
            .set("message.timeout.ms", message_timeout.to_string());
        let producer: FutureProducer = c.create().map_err(|e| Error::kafka("creating a transactional producer", e))?;
        let init = producer.clone();
        tokio::task::spawn_blocking(move || init.init_transactions(timeout))
            .await
            .map_err(|e| Error::handler(false, "initialising transactions", e))?
            .map_err(|e| Error::kafka(format!("initialising transactions as {transactional_id:?}"), e))?;
        Ok(EventProducer { producer })
    }

    /// Produces every message to `topic` and waits until the broker acknowledged all of
    /// them. Messages are enqueued together, so the batch costs about one round trip.
    /// Returns the (partition, offset) of each message, in order.
    pub async fn send_all(&self, topic: &str, messages: &[OutgoingMessage]) -> Result<Vec<(i32, i64)>> {
        self.send_each(topic, messages)
            .await
            .into_iter()
            .map(|r| r.map_err(|source| Error::Delivery { topic: topic.to_string(), source }))
            .collect()
    }

    /// Enqueues every message (to one partition of `topic` when `partition` is given)
    /// and returns at once with a future of their acknowledgement: a pipelined stage
    /// computes the next batch while the broker acknowledges this one. Waits only while
    /// librdkafka's queue is full.
    pub async fn enqueue_all(&self, topic: &str, partition: Option<i32>, messages: &[OutgoingMessage]) -> Result<Acks> {
        let mut deliveries = Vec::with_capacity(messages.len());
        for m in messages {
            let mut record = m.record(topic, partition);
            let waited = std::time::Instant::now();
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) if waited.elapsed() < Duration::from_secs(60) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Err((source, _)) => return Err(Error::Delivery { topic: topic.to_string(), source }),
                }
            }
        }
        let topic = topic.to_string();
        Ok(Box::pin(async move {
            for delivery in deliveries {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((source, _))) => return Err(Error::Delivery { topic, source }),
                    Err(_) => return Err(Error::Delivery { topic, source: KafkaError::Canceled }),
                }
            }
            Ok(())
        }))
    }

    /// [`send_all`](Self::send_all) with one outcome per message, for callers that treat
    /// failures one by one (the dead-letter sink).
    pub async fn send_each(&self, topic: &str, messages: &[OutgoingMessage]) -> Vec<Result<(i32, i64), KafkaError>> {
        let sends = messages.iter().map(|m| {
            let record = m.record(topic, None);
            // Queue-full is retried inside `send` until the timeout; the timeout only bounds
            // waiting for queue space, delivery itself is bounded by message.timeout.ms.
            self.producer.send(record, Timeout::After(Duration::from_secs(60)))
        });
        join_all(sends)
            .await
            .into_iter()
            .map(|r| match r {
                Ok(delivery) => Ok((delivery.partition, delivery.offset)),
                Err((source, _)) => Err(source),
            })
            .collect()
    }
}
