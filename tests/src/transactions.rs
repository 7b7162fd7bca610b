//! Reading back what Kafka transactions left behind, for the tests that check a broker's
//! transactional semantics (`tests/transactions_contract.rs`): a topic's records at either
//! isolation level, read to the end the broker reports for that level, and the offsets a
//! consumer group has committed. All blocking (librdkafka's calls are), for plain-thread
//! tests or `spawn_blocking`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// One record as a consumer saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl Record {
    /// The value as UTF-8 (lossy), for messages and assertions.
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }
}

/// Which records a consumer is given: only those of committed transactions (and
/// non-transactional ones), or everything in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

impl Isolation {
    fn as_config(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// Every record of `topic` that a `read_committed` consumer sees, from the beginning of
/// each partition up to its end as the broker reports it to such a consumer (the last
/// stable offset: nothing past an open transaction), in (partition, offset) order.
/// Blocking (call it from `spawn_blocking` in async tests). Manual assignment, no group.
///
/// Fails if a partition's log no longer starts at offset 0 (records a test wrote are
/// gone, so "exactly once" could not be judged), or if the end is not reached in `timeout`.
pub fn read_committed(brokers: &str, topic: &str, timeout: Duration) -> anyhow::Result<Vec<Record>> {
    read_to_end(brokers, topic, Isolation::ReadCommitted, timeout)
}

/// [`read_committed`] with a choice of isolation: `ReadUncommitted` shows what the log
/// holds, aborted and open transactions included (to prove records a test expects
/// `read_committed` to hide were written at all).
pub fn read_to_end(brokers: &str, topic: &str, isolation: Isolation, timeout: Duration) -> anyhow::Result<Vec<Record>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", crate::unique("weir-read-to-end"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation.as_config())
        // The end of a partition is where the consumer's fetch reaches the offset the
        // broker gives fetches of this isolation level (the high watermark, or for
        // read_committed the last stable offset); librdkafka says so with a
        // PartitionEOF event after the partition's last record.
        .set("enable.partition.eof", "true")
        .create()?;
    let partitions = partition_count(&consumer, topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        let (low, _high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        anyhow::ensure!(low == 0, "{topic}/{p} starts at offset {low}: records were deleted from its head");
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut pending: std::collections::BTreeSet<i32> = (0..partitions).collect();
    let mut records = Vec::new();
    let deadline = Instant::now() + timeout;
    while !pending.is_empty() {
        if Instant::now() > deadline {
            bail!("reading {topic} ({isolation:?}): partitions {pending:?} did not reach their end in {timeout:?}");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => records.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            }),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                pending.remove(&p);
            }
            Some(Err(e)) => bail!("reading {topic} ({isolation:?}): {e}"),
            None => {}
        }
    }
    records.sort();
    Ok(records)
}

/// The offsets `group` has committed on `topic`, by partition (partitions without a
/// committed offset are left out). Blocking.
pub fn committed_offsets(brokers: &str, group: &str, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let partitions = partition_count(&consumer, topic)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect())
}

fn partition_count(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<i32> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()).unwrap_or(0);
    anyhow::ensure!(partitions > 0, "topic {topic} has no partitions");
    Ok(partitions as i32)
}
