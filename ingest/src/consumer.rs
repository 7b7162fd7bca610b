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

use futures::FutureExt;
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
use crate::producer::{Acks, EventProducer};
use crate::transactions;
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

    /// [`BatchHandler::handle`] that may return before the batch's effects are
    /// acknowledged, with a future of that acknowledgement: the loop then computes the
    /// next batch while the broker acknowledges this one (`kafka.batch.in_flight`), and
    /// stores offsets strictly in batch order as acknowledgements arrive. Default: `handle`,
    /// already acknowledged.
    fn handle_pipelined(
        &mut self,
        batch: &[InputRecord<'_>],
    ) -> impl Future<Output = Result<(Vec<Disposition>, Acks)>> + Send {
        async move {
            let dispositions = self.handle(batch).await?;
            Ok((dispositions, Box::pin(async { Ok(()) }) as Acks))
        }
    }

    /// Told what happened to each attempt at delivering a batch's dead letters (for
    /// metrics: truncated copies, classified failures). Default: nothing.
    fn dead_letters_sent(&mut self, report: &DeadLetterReport) {
        let _ = report;
    }

    /// Told that the last batch is committed: its offsets are stored (at-least-once) or
    /// its transaction committed (exactly-once). A handler with effects that must not show
    /// before that (the serving copy of state kept in process) releases them now.
    /// Default: nothing.
    fn committed(&mut self) {}

    /// Told that what the handler applied of the last batch(es) on these `(topic,
    /// partition)`s may not all have been made durable (a transaction aborted, a delivery
    /// failed) and that those events will be handled again: a handler that keeps state in
    /// process forgets it, to start again from its durable copy. Default: nothing.
    fn rewind(&mut self, partitions: &[(String, i32)]) {
        let _ = partitions;
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
    /// Flushed before partitions are given up, so that nothing this process produced
    /// for them (a pipelined batch's changelog records) lands after their next owner
    /// has read the changelog back.
    flush: Option<EventProducer>,
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
                // Batches still awaiting their acknowledgements (`kafka.batch.in_flight`)
                // are delivered before the partitions go; their offsets are not stored,
                // so the next owner consumes them again, which the fences make harmless.
                if let Some(producer) = &self.flush
                    && let Err(e) = rdkafka::producer::Producer::flush(producer.inner(), Duration::from_secs(30))
                {
                    warn!(error = %e, "flushing the producer before a revoke");
                }
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
    subscribe_with(config, topics, log, None)
}

/// [`subscribe_logging`], flushing `producer` before partitions are revoked (for a
/// pipeline whose batches may be in flight at a rebalance).
pub fn subscribe_with(
    config: &KafkaConfig,
    topics: &[&str],
    log: Option<RebalanceLog>,
    flush: Option<EventProducer>,
) -> Result<WeirConsumer> {
    let consumer: WeirConsumer = config
        .consumer_config()
        .create_with_context(CommitOnRevoke { log, flush })
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
    /// With exactly-once on: the timeout of each transactional call.
    transaction_timeout: Option<Duration>,
    /// At least once: batches whose acknowledgements may be awaited at once.
    in_flight: usize,
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
            transaction_timeout: config.exactly_once.then(|| Duration::from_millis(config.transaction_timeout_ms)),
            in_flight: config.batch.in_flight.max(1),
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
        match self.transaction_timeout {
            None if self.in_flight > 1 => self.run_pipelined(shutdown).await,
            None => self.run_at_least_once(shutdown).await,
            Some(timeout) => self.run_exactly_once(shutdown, timeout).await,
        }
    }

    async fn run_at_least_once(&mut self, shutdown: &CancellationToken) -> Result<()> {
        let ConsumerLoop { consumer, dead_letters, handler, max_events, max_wait, max_retries, shutdown_drain, stats, .. } =
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
            let drain_expired = drain_after(shutdown, drain);
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
                        // What the failed attempt applied in process may not all have
                        // reached the changelog: start again from what did.
                        handler.rewind(&partitions_of(&records));
                        let backoff = backoff(attempt);
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
            check_dispositions(&dispositions, &records)?;
            deliver_dead_letters(dead_letters, handler, stats, &records, &dispositions, *max_retries, shutdown).await?;

            // Every effect of the batch is acknowledged: now, and only now, store offsets.
            for ((topic, partition), (_, last)) in offset_ranges(&records) {
                // Fails only if the partition was revoked meanwhile; its new owner will
                // replay these events, which the fences make harmless.
                if let Err(e) = consumer.store_offset(topic, partition, last) {
                    warn!(topic, partition, offset = last, error = %e, "could not store offset (partition revoked?)");
                }
            }
            handler.committed();
            stats.batches += 1;
            stats.records += records.len() as u64;
        }
    }

    /// At least once with up to `in_flight` batches awaiting their acknowledgements: a
    /// batch is computed and its messages enqueued while earlier ones are acknowledged;
    /// offsets are stored in batch order, each batch's only once its own and every earlier
    /// batch's effects are acknowledged. A failed acknowledgement sends the consumer back
    /// to the first offset of that batch (and of every later one in flight): those events
    /// are consumed again, which the state's fences make harmless, as for any replay.
    async fn run_pipelined(&mut self, shutdown: &CancellationToken) -> Result<()> {
        let in_flight = self.in_flight;
        let ConsumerLoop { consumer, dead_letters, handler, max_events, max_wait, max_retries, shutdown_drain, stats, .. } =
            self;
        let mut pending: std::collections::VecDeque<InFlight> = std::collections::VecDeque::new();
        // Consecutive failed acknowledgements; reset by an acknowledged batch.
        let mut failures = 0u32;
        loop {
            enum Next<B> {
                Stop,
                Acked(Result<()>),
                Batch(B),
            }
            let next = if pending.len() >= in_flight {
                match pending.front_mut() {
                    Some(front) => Next::Acked((&mut front.acks).await),
                    None => continue,
                }
            } else {
                let front = pending.front_mut();
                let has_front = front.is_some();
                let acked = async {
                    match front {
                        Some(f) => (&mut f.acks).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => Next::Stop,
                    acked = acked, if has_front => Next::Acked(acked),
                    batch = next_batch(consumer, *max_events, *max_wait) => Next::Batch(batch),
                }
            };
            let batch = match next {
                Next::Stop => {
                    // Drain: what is in flight may still be acknowledged and stored.
                    let deadline = tokio::time::Instant::now() + *shutdown_drain;
                    while let Some(mut front) = pending.pop_front() {
                        match tokio::time::timeout_at(deadline, &mut front.acks).await {
                            Ok(Ok(())) => front.store(consumer, handler, stats),
                            _ => {
                                warn!(batches = pending.len() + 1, "shutdown: batches in flight abandoned, their events will be replayed");
                                stats.abandoned += pending.len() as u64 + 1;
                                break;
                            }
                        }
                    }
                    return Ok(());
                }
                Next::Acked(Ok(())) => {
                    failures = 0;
                    if let Some(front) = pending.pop_front() {
                        front.store(consumer, handler, stats);
                    }
                    continue;
                }
                Next::Acked(Err(e)) => {
                    failures += 1;
                    stats.retries += 1;
                    if failures > *max_retries {
                        return Err(e);
                    }
                    // This batch and every later one go back to be consumed again.
                    let mut from: BTreeMap<(String, i32), i64> = BTreeMap::new();
                    for batch in pending.drain(..) {
                        for (at, (first, _)) in batch.ranges {
                            let e = from.entry(at).or_insert(first);
                            *e = (*e).min(first);
                        }
                    }
                    for ((topic, partition), first) in &from {
                        consumer
                            .seek(topic, *partition, rdkafka::Offset::Offset(*first), Duration::from_secs(10))
                            .map_err(|e| Error::kafka(format!("seeking {topic}[{partition}] back to {first}"), e))?;
                    }
                    // And the state kept in process starts again from what reached the
                    // changelog.
                    handler.rewind(&from.keys().cloned().collect::<Vec<_>>());
                    let backoff = backoff(failures);
                    warn!(attempt = failures, ?backoff, error = %Report(&e), "a batch's acknowledgement failed; consuming it again");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                    continue;
                }
                Next::Batch(batch) => batch,
            };
            if batch.is_empty() {
                continue;
            }
            let records: Vec<InputRecord<'_>> = batch.iter().map(|(m, at)| record_of(m, *at)).collect();
            // Past this, the batch being computed is given up (as in the one-batch loop):
            // nothing of it is acknowledged until its offsets are stored.
            let drain = *shutdown_drain;
            let drain_expired = drain_after(shutdown, drain);
            tokio::pin!(drain_expired);
            let mut attempt = 0;
            let (dispositions, acks) = loop {
                let outcome = tokio::select! {
                    outcome = handler.handle_pipelined(&records) => outcome,
                    _ = &mut drain_expired => {
                        warn!(events = records.len(), ?drain, "shutdown: in-flight batch abandoned, its events will be replayed");
                        stats.abandoned += 1 + pending.len() as u64;
                        return Ok(());
                    }
                };
                match outcome {
                    Ok(done) => break done,
                    Err(e @ Error::Handler { retryable: true, .. }) if attempt < *max_retries && !shutdown.is_cancelled() => {
                        attempt += 1;
                        stats.retries += 1;
                        handler.rewind(&partitions_of(&records));
                        let backoff = backoff(attempt);
                        warn!(attempt, ?backoff, error = %Report(&e), "batch failed, retrying");
                        tokio::time::sleep(backoff).await;
                    }
                    Err(e @ Error::Handler { retryable: true, .. }) if shutdown.is_cancelled() => {
                        warn!(error = %Report(&e), "shutdown: failed batch not retried, its events will be replayed");
                        stats.abandoned += 1;
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            };
            check_dispositions(&dispositions, &records)?;
            deliver_dead_letters(dead_letters, handler, stats, &records, &dispositions, *max_retries, shutdown).await?;
            let ranges = offset_ranges(&records).into_iter().map(|((t, p), r)| ((t.to_string(), p), r)).collect();
            pending.push_back(InFlight { ranges, acks, records: records.len() });
        }
    }

    /// One transaction per batch ([`crate::transactions`]).
    async fn run_exactly_once(&mut self, shutdown: &CancellationToken, timeout: Duration) -> Result<()> {
        let ConsumerLoop { consumer, dead_letters, handler, max_events, max_wait, max_retries, shutdown_drain, stats, .. } =
            self;
        let producer = dead_letters.producer().clone();
        // Consecutive failed attempts; reset by a committed batch.
        let mut attempt = 0u32;
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
            let ranges = offset_ranges(&records);
            transactions::begin(&producer).map_err(|e| Error::handler(false, "exactly-once batch", e))?;

            let drain = *shutdown_drain;
            let drain_expired = drain_after(shutdown, drain);
            tokio::pin!(drain_expired);
            let work = async {
                let dispositions = handler.handle(&records).await?;
                check_dispositions(&dispositions, &records)?;
                deliver_dead_letters(dead_letters, handler, stats, &records, &dispositions, 0, shutdown).await?;
                let mut offsets = rdkafka::TopicPartitionList::new();
                for ((topic, partition), (_, last)) in &ranges {
                    offsets
                        .add_partition_offset(topic, *partition, rdkafka::Offset::Offset(last + 1))
                        .map_err(|e| Error::kafka("listing the batch's offsets", e))?;
                }
                let group = consumer
                    .group_metadata()
                    .ok_or_else(|| Error::handler(false, "exactly-once batch", "the consumer has no group metadata"))?;
                transactions::commit(&producer, offsets, group, timeout)
                    .await
                    .map_err(|e| match e {
                        e @ transactions::TransactionError::Fatal { .. } => Error::handler(false, "committing a batch", e),
                        e => Error::handler(true, "committing a batch", e),
                    })
            };
            let outcome = tokio::select! {
                outcome = work => Some(outcome),
                _ = &mut drain_expired => None,
            };
            let Some(outcome) = outcome else {
                warn!(events = records.len(), ?drain, "shutdown: in-flight batch abandoned (transaction aborted), its events will be consumed again");
                stats.abandoned += 1;
                let _ = transactions::abort(&producer, timeout).await;
                return Ok(());
            };
            match outcome {
                Ok(()) => {
                    handler.committed();
                    attempt = 0;
                    stats.batches += 1;
                    stats.records += records.len() as u64;
                }
                Err(e) => {
                    // Nothing of the batch is visible: abort, then go back to its start.
                    if let Err(abort) = transactions::abort(&producer, timeout).await {
                        error!(error = %Report(&abort), "could not abort the transaction");
                        return Err(Error::handler(false, "aborting a failed batch's transaction", abort));
                    }
                    let retryable = matches!(e, Error::Handler { retryable: true, .. } | Error::Delivery { .. } | Error::DeadLetter { .. });
                    if !retryable || attempt >= *max_retries {
                        return Err(e);
                    }
                    attempt += 1;
                    stats.retries += 1;
                    rewind(consumer, handler, &ranges)?;
                    let backoff = backoff(attempt);
                    warn!(attempt, ?backoff, error = %Report(&e), "batch failed, transaction aborted; consuming it again");
                    if shutdown.is_cancelled() {
                        stats.abandoned += 1;
                        return Ok(());
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => {
                            stats.abandoned += 1;
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

/// A batch whose messages are enqueued, awaiting their acknowledgement.
struct InFlight {
    /// Per (topic, partition): its first and last offsets in the batch.
    ranges: BTreeMap<(String, i32), (i64, i64)>,
    acks: Acks,
    records: usize,
}

impl InFlight {
    /// The batch is acknowledged, and every batch before it: stores its offsets.
    fn store<H: BatchHandler>(self, consumer: &WeirConsumer, handler: &mut H, stats: &mut LoopStats) {
        for ((topic, partition), (_, last)) in &self.ranges {
            // Fails only if the partition was revoked meanwhile; its new owner will replay
            // these events, which the fences make harmless.
            if let Err(e) = consumer.store_offset(topic, *partition, *last) {
                warn!(topic, partition, offset = last, error = %e, "could not store offset (partition revoked?)");
            }
        }
        handler.committed();
        stats.batches += 1;
        stats.records += self.records as u64;
    }
}

/// Resolves `drain` after `shutdown` is cancelled: how long a batch in progress may run on.
async fn drain_after(shutdown: &CancellationToken, drain: Duration) {
    shutdown.cancelled().await;
    tokio::time::sleep(drain).await;
}

/// The wait before retry `attempt` (1, 2, ...): 200 ms doubling, at most 6.4 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(6)))
}

fn check_dispositions(dispositions: &[Disposition], records: &[InputRecord<'_>]) -> Result<()> {
    if dispositions.len() != records.len() {
        return Err(Error::Handler {
            retryable: false,
            message: format!("handler returned {} dispositions for {} records", dispositions.len(), records.len()),
            source: None,
        });
    }
    Ok(())
}

/// The (topic, partition)s of a batch.
fn partitions_of(records: &[InputRecord<'_>]) -> Vec<(String, i32)> {
    offset_ranges(records).into_keys().map(|(t, p)| (t.to_string(), p)).collect()
}

/// Per (topic, partition) of a batch: its first and last offsets.
fn offset_ranges<'r>(records: &[InputRecord<'r>]) -> BTreeMap<(&'r str, i32), (i64, i64)> {
    let mut ranges: BTreeMap<(&str, i32), (i64, i64)> = BTreeMap::new();
    for r in records {
        let e = ranges.entry((r.topic, r.partition)).or_insert((r.offset, r.offset));
        e.0 = e.0.min(r.offset);
        e.1 = e.1.max(r.offset);
    }
    ranges
}

/// Puts the consumer back at the start of an aborted batch and tells the handler to forget
/// what it applied of it.
fn rewind<H: BatchHandler>(consumer: &WeirConsumer, handler: &mut H, ranges: &BTreeMap<(&str, i32), (i64, i64)>) -> Result<()> {
    for ((topic, partition), (first, _)) in ranges {
        consumer
            .seek(topic, *partition, rdkafka::Offset::Offset(*first), Duration::from_secs(10))
            .map_err(|e| Error::kafka(format!("seeking {topic}[{partition}] back to {first}"), e))?;
    }
    let partitions: Vec<(String, i32)> = ranges.keys().map(|(t, p)| (t.to_string(), *p)).collect();
    handler.rewind(&partitions);
    Ok(())
}

/// Produces a batch's poison records to the dead-letter topic and waits for their delivery,
/// retrying what was not delivered up to `max_retries` times (0: fail at once, for a
/// transaction that is retried whole).
async fn deliver_dead_letters<H: BatchHandler>(
    dead_letters: &DeadLetterSink,
    handler: &mut H,
    stats: &mut LoopStats,
    records: &[InputRecord<'_>],
    dispositions: &[Disposition],
    max_retries: u32,
    shutdown: &CancellationToken,
) -> Result<()> {
    let poison: Vec<_> = records
        .iter()
        .zip(dispositions)
        .filter_map(|(r, d)| match d {
            Disposition::DeadLetter(e) => Some((r, e)),
            Disposition::Done => None,
        })
        .collect();
    if poison.is_empty() {
        return Ok(());
    }
    // Only the letters not yet delivered are sent again.
    let mut pending = poison;
    let mut attempt = 0u32;
    loop {
        let report = dead_letters.send(&pending).await;
        handler.dead_letters_sent(&report);
        stats.dead_letters_truncated += report.truncated;
        stats.dead_lettered += report.sent;
        if report.undelivered.is_empty() {
            return Ok(());
        }
        attempt += 1;
        stats.dead_letter_failures += 1;
        let (class, message) = report.failed.first().cloned().unwrap_or((DeadLetterFailure::Other, String::new()));
        let class = class.as_str();
        let topic = dead_letters.topic();
        if attempt > max_retries || shutdown.is_cancelled() {
            error!(topic, class, attempts = attempt, %message, "dead letters not delivered, stopping; the batch will be replayed");
            return Err(Error::DeadLetter { topic: topic.to_string(), class, attempts: attempt, message });
        }
        let backoff = backoff(attempt);
        error!(topic, class, attempt, undelivered = report.undelivered.len(), ?backoff, %message, "dead letters not delivered, retrying");
        pending = report.undelivered.iter().map(|&i| pending[i]).collect();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

/// Waits for a first message, then takes what has already arrived (smart batching: a
/// batch is small at low load, for latency, and large under load, for throughput, without
/// waiting for either), up to `max_events`; with a `max_wait` above zero, then waits up to
/// that long after the first message for more.
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
        match consumer.recv().now_or_never() {
            Some(Ok(m)) => batch.push((m, Instant::now())),
            Some(Err(e)) => warn!(error = %e, "consumer error"),
            None => break,
        }
    }
    if max_wait.is_zero() {
        return batch;
    }
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
