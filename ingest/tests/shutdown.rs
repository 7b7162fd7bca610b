//! Shutdown never waits on a stuck batch for long, and never loses its events.
//!
//! Regression for a bug seen in `weir run`: the monitor stage retried delivering an alert
//! to a topic that did not exist, and the consumer loop kept retrying that batch after
//! Ctrl-C, so the process outlived every shutdown allowance. Now no retry starts after
//! shutdown, an attempt in flight gets `kafka.batch.shutdown_drain_ms`, and an abandoned
//! batch's offsets are not stored: the next consumer of the group reads it again.
//!
//! Runs on librdkafka's in-process mock cluster (the consumer-loop mechanics only; the
//! end-to-end fault tests against Tansu live in the `tests` crate).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use rdkafka::mocking::MockCluster;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use weir_ingest::Error;
use weir_ingest::config::KafkaConfig;
use weir_ingest::consumer::{BatchHandler, ConsumerLoop, Disposition, InputRecord, subscribe};
use weir_ingest::producer::{EventProducer, OutgoingMessage};

/// How a test handler misbehaves.
#[derive(Clone, Copy)]
enum Stuck {
    /// Every attempt fails with a retryable error (the alerts-topic case).
    FailsRetryably,
    /// The attempt never completes (a downstream that hangs).
    Hangs,
}

struct StuckHandler {
    mode: Stuck,
    calls: Arc<AtomicU32>,
    first_call: Arc<Notify>,
}

impl BatchHandler for StuckHandler {
    async fn handle(&mut self, _batch: &[InputRecord<'_>]) -> weir_ingest::Result<Vec<Disposition>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.first_call.notify_one();
        match self.mode {
            Stuck::FailsRetryably => {
                Err(Error::Handler { retryable: true, message: "topic drift-alerts does not exist".into(), source: None })
            }
            Stuck::Hangs => std::future::pending().await,
        }
    }
}

async fn shutdown_abandons_and_replays(mode: Stuck) {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let mut config = KafkaConfig::new(cluster.bootstrap_servers());
    config.topics.input = "in".into();
    config.group_id = "g".into();
    config.batch.shutdown_drain_ms = 200;
    cluster.create_topic("in", 1, 1).expect("topic");
    let producer = EventProducer::new(&config).expect("producer");
    let messages: Vec<OutgoingMessage> =
        (0..10).map(|i| OutgoingMessage::new(format!("k{i}"), format!("v{i}").into_bytes())).collect();
    producer.send_all("in", &messages).await.expect("produce");

    let calls = Arc::new(AtomicU32::new(0));
    let first_call = Arc::new(Notify::new());
    let handler = StuckHandler { mode, calls: calls.clone(), first_call: first_call.clone() };
    let consumer = subscribe(&config, &["in"]).expect("consumer");
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(ConsumerLoop::new(&config, consumer, producer.clone(), handler).run(shutdown.clone()));
    first_call.notified().await;
    shutdown.cancel();
    // A liveness guard, not a timing assertion: without the fix this never returns.
    let (stats, _) = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the loop outlived its shutdown")
        .expect("join")
        .expect("a clean stop");
    assert_eq!(stats.abandoned, 1);
    assert_eq!(stats.batches, 0, "nothing acknowledged");
    let calls_at_stop = calls.load(Ordering::SeqCst);
    assert!(calls_at_stop >= 1);

    // Nothing of the batch was committed: the group's next consumer starts from the
    // first event again (auto.offset.reset = earliest), so nothing is skipped.
    let probe: BaseConsumer = config.consumer_config().create().expect("probe");
    let mut partitions = TopicPartitionList::new();
    partitions.add_partition("in", 0);
    let committed = probe.committed_offsets(partitions, Duration::from_secs(10)).expect("committed offsets");
    assert_eq!(committed.elements()[0].offset(), Offset::Invalid, "no offset committed for an abandoned batch");
    assert_eq!(config.auto_offset_reset, "earliest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_at_shutdown_is_not_retried_and_is_replayed() {
    shutdown_abandons_and_replays(Stuck::FailsRetryably).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_hanging_at_shutdown_is_abandoned_after_the_drain_and_replayed() {
    shutdown_abandons_and_replays(Stuck::Hangs).await;
}
