//! Consumer lag: how far a consumer group's committed offsets are behind the brokers'
//! high watermarks, summed over the partitions of some topics.
//!
//! A query is a few broker round trips (metadata, committed offsets, one watermark
//! request per partition), each bounded by the given timeout, made with a short-lived
//! client of its own that joins no group and commits nothing. It blocks: call it from a
//! blocking thread (`tokio::task::spawn_blocking`).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::error::{Error, Result};

/// Consumer lag of `group` on `topics`: the sum over their partitions of the high
/// watermark minus the group's committed offset (minus the low watermark where nothing is
/// committed), never negative per partition.
pub fn consumer_lag(brokers: &str, group: &str, topics: &[&str], timeout: Duration) -> Result<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| Error::kafka("creating the lag client", e))?;
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        let metadata =
            consumer.fetch_metadata(Some(topic), timeout).map_err(|e| Error::kafka(format!("metadata of {topic}"), e))?;
        for t in metadata.topics().iter().filter(|t| t.name() == *topic) {
            for p in t.partitions() {
                tpl.add_partition(topic, p.id());
            }
        }
    }
    let committed = consumer
        .committed_offsets(tpl, timeout)
        .map_err(|e| Error::kafka(format!("committed offsets of group {group}"), e))?;
    let mut lag = 0i64;
    for e in committed.elements() {
        let (low, high) = consumer
            .fetch_watermarks(e.topic(), e.partition(), timeout)
            .map_err(|err| Error::kafka(format!("watermarks of {}/{}", e.topic(), e.partition()), err))?;
        let at = match e.offset() {
            Offset::Offset(o) => o,
            _ => low,
        };
        lag += (high - at).max(0);
    }
    Ok(lag)
}
