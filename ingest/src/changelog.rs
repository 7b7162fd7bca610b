//! The changelog topic: where the state a process keeps in memory is written, and read
//! back by whoever owns a partition next.
//!
//! The records' format is `weir-features`' (`changelog` module); this file holds what is
//! Kafka about it: the topic is compacted (the newest record per entity is all a restore
//! needs) and has as many partitions as the input topic, since input partition `p`'s state
//! goes to changelog partition `p` ([`ensure_changelog_topic`]); a restore reads one
//! partition from its beginning to its end ([`read_changelog_partition`]).
//!
//! "Its end" is the last stable offset: with exactly-once on, the records of a
//! transaction that is still open (a process that died mid-batch, until the broker aborts
//! it or a process with the same `transactional.id` fences it) are not state yet. A
//! restore waits until no transaction is open on the partition (the last stable offset
//! has reached the high watermark), so that it never reads *past* an open transaction's
//! records into a later one's and then misses them, up to a deadline.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::config::KafkaConfig;
use crate::error::{Error, Result};

/// A changelog record as read back: key, value (`None` for a tombstone).
pub type ChangelogRecord = (Vec<u8>, Option<Vec<u8>>);

/// How long metadata and admin calls may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The number of partitions of `topic`, or `None` when it does not exist.
pub fn partition_count(config: &KafkaConfig, topic: &str) -> Result<Option<usize>> {
    let consumer: BaseConsumer = config
        .client_config()
        .create()
        .map_err(|e| Error::kafka("creating a metadata client", e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), CALL_TIMEOUT)
        .map_err(|e| Error::kafka(format!("reading the metadata of {topic}"), e))?;
    Ok(metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|&n| n > 0))
}

/// Makes sure the changelog topic exists, compacted, with at least as many partitions as
/// the input topic (created so when missing), and returns its partition count. Blocking.
pub fn ensure_changelog_topic(config: &KafkaConfig, changelog: &str, input: &str) -> Result<usize> {
    let wanted = partition_count(config, input)?
        .ok_or_else(|| Error::Config(vec![format!("the input topic {input} does not exist (its partition count sizes the changelog)")]))?;
    if let Some(have) = partition_count(config, changelog)? {
        if have < wanted {
            return Err(Error::Config(vec![format!(
                "the changelog topic {changelog} has {have} partitions, fewer than the input topic {input}'s {wanted}: \
                 input partition p keeps its state in changelog partition p"
            )]));
        }
        return Ok(have);
    }
    let admin: AdminClient<DefaultClientContext> =
        config.client_config().create().map_err(|e| Error::kafka("creating an admin client", e))?;
    let topic = NewTopic::new(changelog, wanted as i32, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::handler(false, "starting a runtime for the admin client", e))?;
    let results = runtime
        .block_on(admin.create_topics([&topic], &AdminOptions::new().request_timeout(Some(CALL_TIMEOUT))))
        .map_err(|e| Error::kafka(format!("creating the changelog topic {changelog}"), e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::kafka(format!("creating the changelog topic {name}"), KafkaError::AdminOp(code)));
            }
        }
    }
    info!(topic = changelog, partitions = wanted, "changelog topic created (compacted)");
    // Metadata reaches every broker a little after the topic is created.
    let deadline = Instant::now() + CALL_TIMEOUT;
    while partition_count(config, changelog)?.is_none() {
        if Instant::now() > deadline {
            return Err(Error::Config(vec![format!("the changelog topic {changelog} was created but its metadata never showed it")]));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(wanted)
}

/// Every record of one changelog partition, from its beginning to its last stable offset,
/// in order; waits up to `open_transactions_wait` for transactions open on it to end
/// (module docs). Blocking.
pub fn read_changelog_partition(
    config: &KafkaConfig,
    topic: &str,
    partition: i32,
    open_transactions_wait: Duration,
) -> Result<Vec<ChangelogRecord>> {
    let committed = reader(config, "read_committed")?;
    let uncommitted = reader(config, "read_uncommitted")?;
    let watermarks = |c: &BaseConsumer| {
        c.fetch_watermarks(topic, partition, CALL_TIMEOUT)
            .map_err(|e| Error::kafka(format!("reading the offsets of changelog {topic}[{partition}]"), e))
    };
    let deadline = Instant::now() + open_transactions_wait;
    let end = loop {
        let (_, stable) = watermarks(&committed)?;
        let (_, high) = watermarks(&uncommitted)?;
        if stable >= high {
            break high;
        }
        if Instant::now() > deadline {
            return Err(Error::Handler {
                retryable: true,
                message: format!(
                    "changelog {topic}[{partition}] still has a transaction open after {open_transactions_wait:?} \
                     (last stable offset {stable}, high watermark {high}): is another process with the same \
                     kafka.transactional_id running, or did one die within transaction.timeout.ms?"
                ),
                source: None,
            });
        }
        warn!(topic, partition, stable, high, "changelog partition has an open transaction; waiting for it to end before restoring");
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(uncommitted);
    let mut records = Vec::new();
    let (low, _) = watermarks(&committed)?;
    if end <= low {
        return Ok(records);
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(|e| Error::kafka("assigning the changelog partition", e))?;
    committed.assign(&assignment).map_err(|e| Error::kafka(format!("assigning changelog {topic}[{partition}]"), e))?;
    let read_deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match committed.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                let offset = m.offset();
                records.push((m.key().map(<[u8]>::to_vec).unwrap_or_default(), m.payload().map(<[u8]>::to_vec)));
                if offset + 1 >= end {
                    break;
                }
            }
            // The end of what a read_committed reader may see (control records and
            // aborted transactions leave offsets no message is returned for).
            Some(Err(KafkaError::PartitionEOF(_))) => {
                let position = committed.position().ok();
                let at = position.as_ref().and_then(|p| p.find_partition(topic, partition)).and_then(|p| p.offset().to_raw());
                if at.is_some_and(|o| o >= end) {
                    break;
                }
            }
            Some(Err(e)) => return Err(Error::kafka(format!("reading changelog {topic}[{partition}]"), e)),
            None => {}
        }
        if Instant::now() > read_deadline {
            return Err(Error::Handler {
                retryable: true,
                message: format!("reading changelog {topic}[{partition}] up to offset {end} took over 300 s ({} records read)", records.len()),
                source: None,
            });
        }
    }
    Ok(records)
}

/// A consumer that reads partitions it is assigned, commits nothing, and reports the end
/// of a partition.
fn reader(config: &KafkaConfig, isolation: &str) -> Result<BaseConsumer> {
    let mut c = config.client_config();
    c.set("group.id", format!("{}-changelog-restore", config.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", isolation);
    c.create().map_err(|e| Error::kafka("creating a changelog reader", e))
}
