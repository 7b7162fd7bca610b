//! The dead-letter topic. A poison message is produced there with its original key and
//! bytes and headers saying where it came from and why it was refused
//! (`weir_schemas::events::dead_letter_headers`), so it can be inspected and replayed.
//!
//! A dead letter must always be deliverable, or the poison stops the partition on every
//! restart (issue 24). So it is bounded:
//!
//! - every header value is cut to [`MAX_MESSAGE_BYTES`] (error messages are capped where
//!   they are made too; this is the second guard);
//! - key + value + headers must fit the producer's `message.max.bytes` minus
//!   [`HEADROOM_BYTES`] (librdkafka counts all three against it, plus its framing). A
//!   payload that does not fit is replaced by a truncated copy (its prefix) with the
//!   headers `weir.payload.truncated: true` and `weir.payload.original_bytes: N`; the
//!   original stays on the source topic at the partition and offset of the headers. A
//!   key that alone would not fit is cut to 1 KiB the same way (`weir.key.*`).
//! - if the broker still refuses a dead letter as too large (its own or the topic's
//!   `max.message.bytes` is below the producer's), it is sent again with the payload cut
//!   to [`FALLBACK_PAYLOAD_BYTES`].
//!
//! Any other delivery failure (topic missing, not authorized, broker unreachable past
//! `message.timeout.ms`) is returned classified ([`DeadLetterFailure`]); the consumer loop
//! retries the batch's dead letters with backoff and, when it persists, stops with
//! [`crate::Error::DeadLetter`] — offsets of the batch unstored, so nothing is skipped.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::warn;

use weir_schemas::bounded::{cap_to, MAX_MESSAGE_BYTES};
use weir_schemas::events::dead_letter_headers as h;
use weir_schemas::EventError;

use crate::producer::{EventProducer, OutgoingMessage};
use crate::record::InputRecord;

/// What a dead letter leaves free of the producer's `message.max.bytes` for librdkafka's
/// record and batch framing (tens of bytes) and header encoding, with a wide margin.
pub const HEADROOM_BYTES: usize = 16 * 1024;
/// The payload prefix kept when the broker refused a dead letter as too large.
pub const FALLBACK_PAYLOAD_BYTES: usize = 1024;
/// The smallest size budget, whatever `message.max.bytes` says.
const MIN_BUDGET_BYTES: usize = 4 * 1024;

/// Why a dead letter could not be delivered, by what it means for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterFailure {
    /// The broker (or librdkafka) refused it as too large even after truncation.
    TooLarge,
    /// The dead-letter topic does not exist or this client may not write to it.
    TopicRefused,
    /// No acknowledgement within `message.timeout.ms`, or the broker is unreachable.
    Unreachable,
    /// Anything else librdkafka reported.
    Other,
}

impl DeadLetterFailure {
    pub fn classify(e: &KafkaError) -> Self {
        use RDKafkaErrorCode as C;
        match e.rdkafka_error_code() {
            Some(C::MessageSizeTooLarge | C::InvalidMessageSize | C::MessageBatchTooLarge) => Self::TooLarge,
            Some(
                C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::UnknownPartition
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::InvalidTopic,
            ) => Self::TopicRefused,
            Some(
                C::MessageTimedOut
                | C::RequestTimedOut
                | C::AllBrokersDown
                | C::BrokerTransportFailure
                | C::NotEnoughReplicas
                | C::NotEnoughReplicasAfterAppend
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition,
            ) => Self::Unreachable,
            _ => Self::Other,
        }
    }

    /// Stable strings, for logs and a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::TopicRefused => "topic_refused",
            Self::Unreachable => "unreachable",
            Self::Other => "other",
        }
    }
}

/// What happened to the dead letters of one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeadLetterReport {
    /// Delivered.
    pub sent: u64,
    /// Delivered as a truncated copy (payload or key), counted in `sent` too.
    pub truncated: u64,
    /// Delivered only by the broker-refusal fallback, counted in `sent` and `truncated`.
    pub fallbacks: u64,
    /// Not delivered: the first failure of each kind, with its error.
    pub failed: Vec<(DeadLetterFailure, String)>,
    /// The positions (in the slice given to [`DeadLetterSink::send`]) of the letters not
    /// delivered.
    pub undelivered: Vec<usize>,
}

pub struct DeadLetterSink {
    producer: EventProducer,
    topic: String,
    /// key + value + headers of a dead letter stay within this.
    budget: usize,
}

impl DeadLetterSink {
    /// `message_max_bytes`: the producer's librdkafka `message.max.bytes`
    /// ([`crate::config::KafkaConfig::producer_message_max_bytes`]).
    pub fn new(producer: EventProducer, topic: String, message_max_bytes: usize) -> Self {
        DeadLetterSink { producer, topic, budget: budget(message_max_bytes) }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The producer the letters go through (the transactional one, with exactly-once on).
    pub fn producer(&self) -> &EventProducer {
        &self.producer
    }

    /// Produces the dead letters and waits for their delivery. Letters that fail are
    /// reported, not retried (the caller retries the batch's letters).
    pub async fn send(&self, poison: &[(&InputRecord<'_>, &EventError)]) -> DeadLetterReport {
        let now = weir_schemas::now_ms().to_string();
        let letters: Vec<(OutgoingMessage, bool)> =
            poison.iter().map(|(r, e)| bounded_letter(r, e, &now, self.budget)).collect();
        let messages: Vec<OutgoingMessage> = letters.iter().map(|(m, _)| m.clone()).collect();
        let mut report = DeadLetterReport::default();
        let outcomes = self.producer.send_each(&self.topic, &messages).await;
        let mut too_large = Vec::new();
        let mut retried = Vec::new();
        for (i, ((message, truncated), outcome)) in letters.into_iter().zip(outcomes).enumerate() {
            match outcome {
                Ok(_) => {
                    report.sent += 1;
                    report.truncated += u64::from(truncated);
                }
                Err(e) if DeadLetterFailure::classify(&e) == DeadLetterFailure::TooLarge => {
                    warn!(topic = %self.topic, error = %e, bytes = message_size(&message),
                        "dead letter refused as too large, sending it again with its payload cut to {FALLBACK_PAYLOAD_BYTES} bytes");
                    too_large.push(shrink(message, FALLBACK_PAYLOAD_BYTES));
                    retried.push(i);
                }
                Err(e) => {
                    note(&mut report, DeadLetterFailure::classify(&e), &e);
                    report.undelivered.push(i);
                }
            }
        }
        if !too_large.is_empty() {
            for (i, outcome) in retried.into_iter().zip(self.producer.send_each(&self.topic, &too_large).await) {
                match outcome {
                    Ok(_) => {
                        report.sent += 1;
                        report.truncated += 1;
                        report.fallbacks += 1;
                    }
                    Err(e) => {
                        note(&mut report, DeadLetterFailure::classify(&e), &e);
                        report.undelivered.push(i);
                    }
                }
            }
            report.undelivered.sort_unstable();
        }
        report
    }
}

fn note(report: &mut DeadLetterReport, kind: DeadLetterFailure, e: &KafkaError) {
    if !report.failed.iter().any(|(k, _)| *k == kind) {
        report.failed.push((kind, e.to_string()));
    }
}

/// The size budget for key + value + headers under `message.max.bytes`.
pub fn budget(message_max_bytes: usize) -> usize {
    message_max_bytes.saturating_sub(HEADROOM_BYTES).max(MIN_BUDGET_BYTES)
}

fn message_size(m: &OutgoingMessage) -> usize {
    m.key.as_ref().map_or(0, Vec::len) + m.payload.len() + m.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
}

/// Cuts the payload to `keep` bytes, marking it (unless already marked).
fn shrink(mut m: OutgoingMessage, keep: usize) -> OutgoingMessage {
    if m.payload.len() > keep {
        if !m.headers.iter().any(|(k, _)| k == h::PAYLOAD_TRUNCATED) {
            m.headers.push((h::PAYLOAD_TRUNCATED.into(), b"true".to_vec()));
            m.headers.push((h::PAYLOAD_ORIGINAL_BYTES.into(), m.payload.len().to_string().into_bytes()));
        }
        m.payload.truncate(keep);
    }
    m
}

/// The dead letter of `r`, within `budget` bytes; `true` when something was cut.
fn bounded_letter(r: &InputRecord<'_>, e: &EventError, now: &str, budget: usize) -> (OutgoingMessage, bool) {
    let capped = |s: &str| cap_to(s.to_string(), MAX_MESSAGE_BYTES).into_bytes();
    let mut m = OutgoingMessage {
        key: r.key.map(<[u8]>::to_vec),
        payload: r.payload.unwrap_or_default().to_vec(),
        // A tombstone stays a tombstone: null, not an empty value.
        null_value: r.payload.is_none(),
        headers: vec![
            (h::SOURCE_TOPIC.into(), capped(r.topic)),
            (h::SOURCE_PARTITION.into(), r.partition.to_string().into_bytes()),
            (h::SOURCE_OFFSET.into(), r.offset.to_string().into_bytes()),
            (h::ERROR_CLASS.into(), e.class.as_str().as_bytes().to_vec()),
            (h::ERROR_MESSAGE.into(), capped(&e.message)),
            (h::FAILED_AT.into(), now.as_bytes().to_vec()),
        ],
    };
    if message_size(&m) <= budget {
        return (m, false);
    }
    // Room for the truncation headers themselves.
    const MARKS: usize = 128;
    let without_payload = message_size(&m) - m.payload.len();
    if let Some(key) = &mut m.key
        && key.len() > MAX_MESSAGE_BYTES
        && without_payload + MARKS * 2 > budget
    {
        let original = key.len();
        key.truncate(MAX_MESSAGE_BYTES);
        m.headers.push((h::KEY_TRUNCATED.into(), b"true".to_vec()));
        m.headers.push((h::KEY_ORIGINAL_BYTES.into(), original.to_string().into_bytes()));
    }
    let fixed = message_size(&m) - m.payload.len() + MARKS;
    let keep = budget.saturating_sub(fixed);
    (shrink(m, keep), true)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn record<'a>(key: Option<&'a [u8]>, payload: &'a [u8]) -> InputRecord<'a> {
        InputRecord {
            topic: "tx",
            partition: 3,
            offset: 42,
            key,
            payload: Some(payload),
            timestamp_ms: None,
            received_at: Instant::now(),
        }
    }

    fn header<'m>(m: &'m OutgoingMessage, name: &str) -> Option<&'m [u8]> {
        m.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
    }

    #[test]
    fn a_small_dead_letter_is_the_original_untouched() {
        let (m, cut) = bounded_letter(&record(Some(b"k"), b"abc"), &EventError::malformed("short"), "1", budget(1_000_000));
        assert!(!cut);
        assert_eq!((m.key.as_deref(), m.payload.as_slice()), (Some(&b"k"[..]), &b"abc"[..]));
        assert_eq!(header(&m, h::ERROR_MESSAGE), Some(&b"short"[..]));
        assert_eq!(header(&m, h::PAYLOAD_TRUNCATED), None);
    }

    #[test]
    fn a_999_kb_payload_is_cut_to_fit_with_headers_saying_so() {
        // Regression (issue 24): a ~1 MB malformed record could not be dead-lettered, the
        // process exited and replayed it on every restart.
        let payload = vec![0xffu8; 999_000];
        let mut e = EventError::malformed("x");
        e.message = "m".repeat(700_000); // an uncapped message, as from an older producer of errors
        let (m, cut) = bounded_letter(&record(Some(b"card-1"), &payload), &e, "1", budget(1_000_000));
        assert!(cut);
        assert!(message_size(&m) <= budget(1_000_000), "{}", message_size(&m));
        assert!(message_size(&m) + HEADROOM_BYTES <= 1_000_000);
        assert_eq!(header(&m, h::PAYLOAD_TRUNCATED), Some(&b"true"[..]));
        assert_eq!(header(&m, h::PAYLOAD_ORIGINAL_BYTES), Some(&b"999000"[..]));
        assert_eq!(header(&m, h::SOURCE_OFFSET), Some(&b"42"[..]));
        assert!(header(&m, h::ERROR_MESSAGE).unwrap().len() <= MAX_MESSAGE_BYTES);
        assert!(payload.starts_with(&m.payload) && m.payload.len() > 900_000);
    }

    #[test]
    fn a_huge_key_is_cut_too_and_a_small_budget_holds() {
        let key = vec![b'k'; 50_000];
        let (m, cut) = bounded_letter(&record(Some(&key), &[1u8; 20_000]), &EventError::malformed("bad"), "1", budget(1000));
        assert!(cut);
        assert!(message_size(&m) <= budget(1000), "{}", message_size(&m));
        assert_eq!(header(&m, h::KEY_ORIGINAL_BYTES), Some(&b"50000"[..]));
        assert_eq!(m.key.as_ref().map(Vec::len), Some(MAX_MESSAGE_BYTES));
    }

    #[test]
    fn failures_are_classified() {
        use rdkafka::error::KafkaError::MessageProduction as P;
        assert_eq!(DeadLetterFailure::classify(&P(RDKafkaErrorCode::MessageSizeTooLarge)), DeadLetterFailure::TooLarge);
        assert_eq!(DeadLetterFailure::classify(&P(RDKafkaErrorCode::UnknownTopicOrPartition)), DeadLetterFailure::TopicRefused);
        assert_eq!(DeadLetterFailure::classify(&P(RDKafkaErrorCode::MessageTimedOut)), DeadLetterFailure::Unreachable);
        assert_eq!(DeadLetterFailure::classify(&P(RDKafkaErrorCode::InvalidRecord)), DeadLetterFailure::Other);
    }
}
