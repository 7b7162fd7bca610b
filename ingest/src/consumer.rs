//! The at-least-once consumer loop.
//!
//! The contract, in order, for every micro-batch:
//!
//! 1. poll up to `max_events` messages, or until `max_wait_ms` after the first one;
//! 2. hand the batch to the [`BatchHandler`] (decode, features, score, produce scores) and
//!    wait until it reports every effect acknowledged (feature writes applied, scores
//!    delivered), retrying the whole batch on a retryable failure;
//! 3. produce the poison messages it rejected to the dead-letter topic and wait for their
//!    delivery (bounded in size so that they are always deliverable, see [`dead_letter`];
//!    a delivery failure is retried with backoff and, if it persists, stops the loop
//!    with a classified [`Error::DeadLetter`], offsets unstored);
//!
//! [`dead_letter`]: crate::dead_letter
//! 4. only then store each partition's last offset (`enable.auto.offset.store=false`);
//!    librdkafka's auto-commit commits what is stored, and weir commits synchronously on
//!    partition revoke and on shutdown.
//!
//! A crash anywhere before 4 means the batch is consumed again after restart: events may
//! be replayed, never skipped. Replays are made harmless downstream (the feature store's
//! per-partition fence). Batches are processed one at a time, so order per partition is
//! kept, and the loop cannot run ahead of the store or the model: memory stays bounded by
//! one batch plus librdkafka's prefetch queue (`queued.max.messages.kbytes`).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use weir_schemas::EventError;

use crate::config::KafkaConfig;
use crate::dead_letter::{DeadLetterFailure, DeadLetterReport, DeadLetterSink};
use crate::error::{Error, Report, Result};
use crate::producer::EventProducer;
pub use crate::record::InputRecord;

/// What happened to one record of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Its effects are acknowledged.
    Done,
    /// Poison: goes to the dead-letter topic with this reason.
    DeadLetter(EventError),
}

/// The stage behind the consumer. `handle` returns one disposition per record, in order,
/// once every effect of the `Done` ones is acknowledged.
pub trait BatchHandler: Send {
    fn handle(
        &mut self,
        batch: &[InputRecord<'_>],
    ) -> impl Future<Output = Result<Vec<Disposition>>> + Send;

    /// Told what happened to each attempt at delivering a batch's dead letters (for
    /// metrics: truncated copies, classified failures). Default: nothing.
    fn dead_letters_sent(&mut self, report: &DeadLetterReport) {
        let _ = report;
    }
}

/// Counts since the loop started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopStats {
    pub batches: u64,
    pub records: u64,
    pub dead_lettered: u64,
    /// Dead letters delivered as a truncated copy (payload or key too large).
    pub dead_letters_truncated: u64,
    /// Failed attempts at delivering a batch's dead letters (each retried).
    pub dead_letter_failures: u64,
    pub retries: u64,
    /// Batches given up at shutdown after the drain timeout (their offsets not stored).
    pub abandoned: u64,
}

/// A partition assignment change, as the rebalance callback saw it: `(topic, partition)`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
}

/// Where [`CommitOnRevoke`] appends assignment changes for a handler keeping state per
/// partition (the monitor's watermarks); the handler drains it between batches.
pub type RebalanceLog = Arc<Mutex<Vec<RebalanceEvent>>>;

/// Commits stored offsets synchronously before partitions are taken away, so the next
/// owner starts exactly after what this process finished; optionally logs every
/// assignment change to a [`RebalanceLog`].
#[derive(Default)]
pub struct CommitOnRevoke {
    log: Option<RebalanceLog>,
}

impl CommitOnRevoke {
    fn record(&self, tpl: &rdkafka::TopicPartitionList, event: fn(Vec<(String, i32)>) -> RebalanceEvent) {
        if let Some(log) = &self.log
            && let Ok(mut log) = log.lock()
        {
            log.push(event(tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()));
        }
    }
}

impl ClientContext for CommitOnRevoke {}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                self.record(tpl, RebalanceEvent::Revoked);
                // The loop only polls between batches, so nothing is in flight here: all
                // finished work has its offsets stored already.
                let partitions = describe(tpl);
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => info!(%partitions, "partitions revoked, stored offsets committed"),
                    // No stored offset yet is not a failure.
                    Err(e) => info!(%partitions, error = %e, "partitions revoked, nothing to commit"),
                }
            }
            Rebalance::Assign(tpl) => {
                self.record(tpl, RebalanceEvent::Assigned);
                info!(partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

/// `topic[0,1,3]` for a partition list, for logs.
fn describe(tpl: &rdkafka::TopicPartitionList) -> String {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for e in tpl.elements() {
        by_topic.entry(e.topic().to_string()).or_default().push(e.partition());
    }
    by_topic.iter().map(|(t, p)| format!("{t}{p:?}")).collect::<Vec<_>>().join(" ")
}

pub type WeirConsumer = StreamConsumer<CommitOnRevoke>;

/// Creates the consumer and subscribes it to `topics`.
pub fn subscribe(config: &KafkaConfig, topics: &[&str]) -> Result<WeirConsumer> {
    subscribe_logging(config, topics, None)
}

/// [`subscribe`], appending every assignment change to `log` when given.
pub fn subscribe_logging(config: &KafkaConfig, topics: &[&str], log: Option<RebalanceLog>) -> Result<WeirConsumer> {
    let consumer: WeirConsumer = config
        .consumer_config()
        .create_with_context(CommitOnRevoke { log })
        .map_err(|e| Error::kafka("creating consumer", e))?;
    consumer.subscribe(topics).map_err(|e| Error::kafka(format!("subscribing to {topics:?}"), e))?;
    Ok(consumer)
}

pub struct ConsumerLoop<H> {
    consumer: WeirConsumer,
    dead_letters: DeadLetterSink,
    handler: H,
    max_events: usize,
    max_wait: Duration,
    /// Retries of a batch whose handler failed with a retryable error, before giving up.
    max_retries: u32,
    /// How long an in-flight batch may run on after shutdown.
    shutdown_drain: Duration,
    stats: LoopStats,
}

impl<H: BatchHandler> ConsumerLoop<H> {
    pub fn new(config: &KafkaConfig, consumer: WeirConsumer, producer: EventProducer, handler: H) -> Self {
        ConsumerLoop {
            consumer,
            dead_letters: DeadLetterSink::new(
                producer,
                config.topics.dead_letter.clone(),
                config.producer_message_max_bytes(),
            ),
            handler,
            max_events: config.batch.max_events,
            max_wait: Duration::from_millis(config.batch.max_wait_ms),
            max_retries: 10,
            shutdown_drain: Duration::from_millis(config.batch.shutdown_drain_ms),
            stats: LoopStats::default(),
        }
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Runs until `shutdown` is cancelled or a fatal error. A batch in progress when
    /// shutdown comes may finish within `kafka.batch.shutdown_drain_ms` (no retry starts
    /// after shutdown); past that it is abandoned with its offsets unstored, to be
    /// replayed. Then stored offsets are committed.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(LoopStats, H)> {
        let outcome = self.run_inner(&shutdown).await;
        // Whatever happened, commit what is stored: it is all finished work.
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            debug!(error = %e, "final commit");
        }
        outcome.map(|()| (self.stats, self.handler))
    }

    async fn run_inner(&mut self, shutdown: &CancellationToken) -> Result<()> {
        let ConsumerLoop { consumer, dead_letters, handler, max_events, max_wait, max_retries, shutdown_drain, stats } =
            self;
        loop {
            let batch = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                batch = next_batch(consumer, *max_events, *max_wait) => batch,
            };
            if batch.is_empty() {
                continue;
            }
            let records: Vec<InputRecord<'_>> = batch.iter().map(|(m, at)| record_of(m, *at)).collect();

            // Past this, an in-flight batch is given up: dropping its future is safe
            // because nothing of the batch is acknowledged until its offsets are stored.
            let drain = *shutdown_drain;
            let drain_expired = async {
                shutdown.cancelled().await;
                tokio::time::sleep(drain).await;
            };
            tokio::pin!(drain_expired);
            let mut attempt = 0;
            let dispositions = loop {
                let outcome = tokio::select! {
                    outcome = handler.handle(&records) => outcome,
                    _ = &mut drain_expired => {
                        warn!(events = records.len(), ?drain, "shutdown: in-flight batch abandoned, its events will be replayed");
                        stats.abandoned += 1;
                        return Ok(());
                    }
                };
                match outcome {
                    Ok(d) => break d,
                    Err(e @ Error::Handler { retryable: true, .. }) if shutdown.is_cancelled() => {
                        warn!(error = %Report(&e), "shutdown: failed batch not retried, its events will be replayed");
                        stats.abandoned += 1;
                        return Ok(());
                    }
                    Err(e @ Error::Handler { retryable: true, .. }) if attempt < *max_retries => {
                        attempt += 1;
                        stats.retries += 1;
                        let backoff = Duration::from_millis(100 * 2u64.pow(attempt.min(6)));
                        warn!(attempt, ?backoff, error = %Report(&e), "batch failed, retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.cancelled() => {
                                warn!("shutdown: failed batch not retried, its events will be replayed");
                                stats.abandoned += 1;
                                return Ok(());
                            }
                        }
                    }
                    Err(e) => return Err(e),
                }
            };
            if dispositions.len() != records.len() {
                return Err(Error::Handler {
                    retryable: false,
                    message: format!("handler returned {} dispositions for {} records", dispositions.len(), records.len()),
                    source: None,
                });
            }

            let poison: Vec<_> = records
                .iter()
                .zip(&dispositions)
                .filter_map(|(r, d)| match d {
                    Disposition::DeadLetter(e) => Some((r, e)),
                    Disposition::Done => None,
                })
                .collect();
            if !poison.is_empty() {
                // Only the letters not yet delivered are sent again.
                let mut pending = poison;
                let mut attempt = 0u32;
                loop {
                    let report = dead_letters.send(&pending).await;
                    handler.dead_letters_sent(&report);
                    stats.dead_letters_truncated += report.truncated;
                    stats.dead_lettered += report.sent;
                    if report.undelivered.is_empty() {
                        break;
                    }
                    attempt += 1;
                    stats.dead_letter_failures += 1;
                    let (class, message) = report.failed.first().cloned().unwrap_or((DeadLetterFailure::Other, String::new()));
                    let class = class.as_str();
                    let topic = dead_letters.topic();
                    if attempt > *max_retries || shutdown.is_cancelled() {
                        error!(topic, class, attempts = attempt, %message, "dead letters not delivered, stopping; the batch will be replayed");
                        return Err(Error::DeadLetter { topic: topic.to_string(), class, attempts: attempt, message });
                    }
                    let backoff = Duration::from_millis(100 * 2u64.pow(attempt.min(6)));
                    error!(topic, class, attempt, undelivered = report.undelivered.len(), ?backoff, %message, "dead letters not delivered, retrying");
                    pending = report.undelivered.iter().map(|&i| pending[i]).collect();
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }

            // Every effect of the batch is acknowledged: now, and only now, store offsets.
            let mut last: BTreeMap<(&str, i32), i64> = BTreeMap::new();
            for r in &records {
                let e = last.entry((r.topic, r.partition)).or_insert(r.offset);
                *e = (*e).max(r.offset);
            }
            for ((topic, partition), offset) in last {
                // Fails only if the partition was revoked meanwhile; its new owner will
                // replay these events, which the fences make harmless.
                if let Err(e) = consumer.store_offset(topic, partition, offset) {
                    warn!(topic, partition, offset, error = %e, "could not store offset (partition revoked?)");
                }
            }
            stats.batches += 1;
            stats.records += records.len() as u64;
        }
    }
}

/// Waits for a first message, then gathers more until the batch is full or `max_wait`
/// has passed since the first.
async fn next_batch<'c>(
    consumer: &'c WeirConsumer,
    max_events: usize,
    max_wait: Duration,
) -> Vec<(BorrowedMessage<'c>, Instant)> {
    let mut batch = Vec::with_capacity(max_events.min(4096));
    let deadline = loop {
        match consumer.recv().await {
            Ok(m) => {
                let now = Instant::now();
                batch.push((m, now));
                break tokio::time::Instant::from_std(now + max_wait);
            }
            Err(e) => {
                warn!(error = %e, "consumer error");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    while batch.len() < max_events {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => batch.push((m, Instant::now())),
            Ok(Err(e)) => warn!(error = %e, "consumer error"),
            Err(_) => break,
        }
    }
    batch
}

fn record_of<'a>(m: &'a BorrowedMessage<'a>, received_at: Instant) -> InputRecord<'a> {
    InputRecord {
        topic: m.topic(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key(),
        payload: m.payload(),
        timestamp_ms: m.timestamp().to_millis(),
        received_at,
    }
}

/// Reads a header as UTF-8 text.
pub fn header_str<'a>(m: &'a impl Message, name: &str) -> Option<&'a str> {
    let headers = m.headers()?;
    headers.iter().find(|h| h.key == name).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
}
