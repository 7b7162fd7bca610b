//! The input record: one consumed message as the batch handler and the dead-letter sink
//! see it.

use std::time::Instant;

/// A message as the handler sees it: a view into the consumer's buffer.
#[derive(Debug, Clone, Copy)]
pub struct InputRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    /// Kafka message timestamp, ms.
    pub timestamp_ms: Option<i64>,
    /// When this process received it; latency is measured from here.
    pub received_at: Instant,
}
