//! The Kafka transactional contract weir's exactly-once mode relies on, checked on the
//! broker the exactly-once tests run on (noida-db, `Services::start_transactional`), from
//! other clients and processes as `weir run` will use it:
//!
//! - a transaction that writes to two topics and commits a consumer group's offsets is
//!   seen whole by a `read_committed` consumer, and its offsets become the group's;
//!   an aborted one is seen by nobody reading committed data and moves no offset;
//! - a transactional producer SIGKILLed inside a transaction leaves records in the log
//!   that a successor with the same `transactional.id` aborts when it starts;
//! - a producer still running when its successor starts (a zombie) is fenced: it can
//!   no longer commit.
//!
//! If these fail, `tests/exactly_once.rs` proves nothing on that broker.
//! `WEIR_TXN_TEST_BROKERS=HOST:PORT` runs them on another broker instead (topics made
//! through the admin API), to judge a candidate: on Tansu 0.6.0 they fail at the first
//! `commit_transaction`, "EndTxnRequest (KIP-98) not supported by broker" (measured).
//!
//! `librdkafka_mock_cluster_has_the_transaction_api_but_not_its_semantics` pins why the
//! exactly-once tests cannot run on librdkafka's mock cluster (the demo's broker).
//!
//! librdkafka's transactional calls block, so the tests are plain threads; a runtime is
//! made only for the admin client. Every wait is a poll with a deadline.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir_tests::transactions::{committed_offsets, read_committed, read_to_end, Isolation, Record};
use weir_tests::{unique, Services};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The broker a contract test runs on: noida-db started by the harness, or the one named
/// by `WEIR_TXN_TEST_BROKERS`. Its topics are made through the admin API (CreateTopics).
enum TxnBroker {
    Harness(Services),
    External(String),
}

impl TxnBroker {
    fn start(topics: &[(&str, i32)]) -> anyhow::Result<Self> {
        let broker = match std::env::var("WEIR_TXN_TEST_BROKERS") {
            Ok(brokers) if !brokers.is_empty() => TxnBroker::External(brokers),
            _ => TxnBroker::Harness(Services::start_transactional()?),
        };
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", broker.brokers()).create()?;
        let new: Vec<NewTopic<'_>> =
            topics.iter().map(|(n, p)| NewTopic::new(n, *p, TopicReplication::Fixed(1))).collect();
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        for result in runtime.block_on(admin.create_topics(&new, &options))? {
            result.map_err(|(topic, code)| anyhow::anyhow!("creating topic {topic} on {}: {code:?}", broker.brokers()))?;
        }
        Ok(broker)
    }

    fn brokers(&self) -> &str {
        match self {
            TxnBroker::Harness(s) => &s.brokers,
            TxnBroker::External(b) => b,
        }
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        match self {
            TxnBroker::Harness(s) => s.check_alive(),
            TxnBroker::External(_) => Ok(()),
        }
    }
}

fn transactional_producer(brokers: &str, id: &str) -> anyhow::Result<BaseProducer> {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("transactional.id", id).create()?;
    producer.init_transactions(TIMEOUT).context("init_transactions")?;
    Ok(producer)
}

/// Sends `values` to `topic`, round-robin over `partitions`, and waits until every one is
/// acknowledged.
fn send(producer: &BaseProducer, topic: &str, partitions: i32, values: &[String]) -> anyhow::Result<()> {
    for (i, v) in values.iter().enumerate() {
        let key = i.to_string();
        producer
            .send(BaseRecord::to(topic).key(&key).payload(v).partition(i as i32 % partitions))
            .map_err(|(e, _)| e)
            .with_context(|| format!("sending {v} to {topic}"))?;
    }
    producer.flush(TIMEOUT).context("flush")?;
    Ok(())
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

fn sorted_values(records: &[Record]) -> Vec<String> {
    let mut v: Vec<String> = records.iter().map(Record::value_str).collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A consumer of `group` (it only lends the group's metadata to the producer, as a
/// consume-transform-produce loop does).
fn group_consumer(brokers: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?)
}

fn offsets(topic: &str, by_partition: &[(i32, i64)]) -> anyhow::Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for &(p, o) in by_partition {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))?;
    }
    Ok(tpl)
}

#[test]
fn a_committed_transaction_is_seen_whole_and_an_aborted_one_not_at_all() -> anyhow::Result<()> {
    let (input, scores, changelog) = (unique("input"), unique("scores"), unique("changelog"));
    let group = unique("group");
    let mut broker = TxnBroker::start(&[(&input, 2), (&scores, 2), (&changelog, 3)])?;
    let consumer = group_consumer(broker.brokers(), &group)?;
    let metadata = consumer.group_metadata().context("consumer group metadata")?;
    let producer = transactional_producer(broker.brokers(), &unique("txn"))?;

    // Transaction 1, committed: both topics and the input offsets.
    producer.begin_transaction()?;
    send(&producer, &scores, 2, &values("committed", 6))?;
    send(&producer, &changelog, 3, &values("committed", 6))?;
    producer.send_offsets_to_transaction(&offsets(&input, &[(0, 3), (1, 2)])?, &metadata, TIMEOUT)?;
    producer.commit_transaction(TIMEOUT).context("commit_transaction")?;

    // Transaction 2, aborted: neither its records nor its offsets may count.
    producer.begin_transaction()?;
    send(&producer, &scores, 2, &values("aborted", 4))?;
    send(&producer, &changelog, 3, &values("aborted", 4))?;
    producer.send_offsets_to_transaction(&offsets(&input, &[(0, 9), (1, 9)])?, &metadata, TIMEOUT)?;
    producer.abort_transaction(TIMEOUT).context("abort_transaction")?;

    // Transaction 3, committed after the abort: the producer goes on.
    producer.begin_transaction()?;
    send(&producer, &scores, 2, &values("after-abort", 2))?;
    send(&producer, &changelog, 3, &values("after-abort", 2))?;
    producer.send_offsets_to_transaction(&offsets(&input, &[(0, 4), (1, 3)])?, &metadata, TIMEOUT)?;
    producer.commit_transaction(TIMEOUT).context("commit_transaction after an abort")?;

    let expected = sorted([values("committed", 6), values("after-abort", 2)].concat());
    for topic in [&scores, &changelog] {
        // The aborted records are in the log: read_committed has something to hide.
        let all = read_to_end(broker.brokers(), topic, Isolation::ReadUncommitted, TIMEOUT)?;
        assert_eq!(all.len(), 12, "{topic}: the log holds all three transactions' records: {:?}", sorted_values(&all));
        let committed = read_committed(broker.brokers(), topic, TIMEOUT)?;
        assert_eq!(sorted_values(&committed), expected, "{topic}: read_committed sees exactly the committed transactions");
    }
    assert_eq!(
        committed_offsets(broker.brokers(), &group, &input)?,
        BTreeMap::from([(0, 4), (1, 3)]),
        "the group's offsets are those of the last committed transaction"
    );
    broker.check_alive()
}

#[test]
fn a_producer_killed_inside_a_transaction_is_aborted_by_its_successor() -> anyhow::Result<()> {
    let scores = unique("scores");
    let id = unique("txn");
    let mut broker = TxnBroker::start(&[(&scores, 2)])?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir-txn-producer"))
        .args(["--brokers", broker.brokers(), "--topic", &scores, "--transactional-id", &id])
        .args(["--records", "8", "--prefix", "killed"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting weir-txn-producer")?;
    // The child prints `sent 8` once the broker acknowledged all 8 (or exits on error,
    // closing its stdout, which ends this read).
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("child stdout")?).read_line(&mut line)?;
    anyhow::ensure!(line.trim() == "sent 8", "weir-txn-producer said {line:?} ({:?})", child.try_wait()?);
    child.kill()?;
    child.wait()?;
    broker.check_alive().context("the broker must outlive the producer it serves")?;
    let all = read_to_end(broker.brokers(), &scores, Isolation::ReadUncommitted, TIMEOUT)?;
    assert_eq!(sorted_values(&all), sorted(values("killed", 8)), "the killed producer's records are in the log");
    // Its transaction is still open (noida-db does not abort it when transaction.timeout.ms
    // passes; Kafka would, after 60 s by default): read_committed stops before it.
    let open = read_committed(broker.brokers(), &scores, TIMEOUT)?;
    assert_eq!(sorted_values(&open), Vec::<String>::new(), "read_committed sees nothing of an open transaction");

    // The successor: same transactional.id. init_transactions fences the dead producer's
    // epoch and aborts its open transaction before returning.
    let producer = transactional_producer(broker.brokers(), &id)?;
    producer.begin_transaction()?;
    send(&producer, &scores, 2, &values("successor", 4))?;
    producer.commit_transaction(TIMEOUT)?;

    let committed = read_committed(broker.brokers(), &scores, TIMEOUT)?;
    assert_eq!(sorted_values(&committed), sorted(values("successor", 4)), "read_committed sees the successor's records only");
    broker.check_alive()
}

#[test]
fn a_zombie_producer_cannot_commit_once_its_successor_started() -> anyhow::Result<()> {
    let scores = unique("scores");
    let id = unique("txn");
    let mut broker = TxnBroker::start(&[(&scores, 2)])?;
    let zombie = transactional_producer(broker.brokers(), &id)?;
    zombie.begin_transaction()?;
    send(&zombie, &scores, 2, &values("zombie", 3))?;

    let successor = transactional_producer(broker.brokers(), &id)?;
    let zombie_commit = zombie.commit_transaction(TIMEOUT);
    assert!(zombie_commit.is_err(), "the zombie's commit must fail once its successor initialised: {zombie_commit:?}");

    successor.begin_transaction()?;
    send(&successor, &scores, 2, &values("successor", 2))?;
    successor.commit_transaction(TIMEOUT)?;
    let committed = read_committed(broker.brokers(), &scores, TIMEOUT)?;
    assert_eq!(sorted_values(&committed), sorted(values("successor", 2)), "read_committed sees the successor's records only");
    broker.check_alive()
}

/// Why weir's exactly-once tests cannot run on librdkafka's mock cluster
/// (`rdkafka::mocking::MockCluster`, librdkafka 2.12.1 from rdkafka-sys 4.10.0, the
/// broker of the demo, which runs at-least-once): it answers every transactional request
/// with success but keeps no transaction state (`rdkafka_mock_handlers.c`: EndTxn only
/// checks the producer id and writes no marker; Fetch reports the high watermark as the
/// last stable offset and lists no aborted transactions; TxnOffsetCommit stores nothing).
/// So a `read_committed` reader sees an aborted transaction's records, and the offsets
/// committed with a transaction are lost: an exactly-once test would fail on the broker,
/// not on weir. Also measured, not pinned here: no fencing (a second `init_transactions`
/// with the same `transactional.id` gets a new producer id at epoch 0, so the zombie
/// still commits) and `transaction.timeout.ms` ignored.
///
/// This test fails the day librdkafka gives the mock those semantics: then the contract
/// tests above can run on it too.
#[test]
fn librdkafka_mock_cluster_has_the_transaction_api_but_not_its_semantics() -> anyhow::Result<()> {
    let (input, scores) = (unique("input"), unique("scores"));
    let cluster = MockCluster::new(1)?;
    cluster.create_topic(&input, 1, 1)?;
    cluster.create_topic(&scores, 1, 1)?;
    let brokers = cluster.bootstrap_servers();
    let group = unique("group");
    let consumer = group_consumer(&brokers, &group)?;
    let metadata = consumer.group_metadata().context("consumer group metadata")?;
    let producer = transactional_producer(&brokers, &unique("txn"))?;

    producer.begin_transaction()?;
    send(&producer, &scores, 1, &values("committed", 2))?;
    producer.send_offsets_to_transaction(&offsets(&input, &[(0, 5)])?, &metadata, TIMEOUT)?;
    producer.commit_transaction(TIMEOUT).context("commit_transaction")?;

    producer.begin_transaction()?;
    send(&producer, &scores, 1, &values("aborted", 2))?;
    producer.abort_transaction(TIMEOUT).context("abort_transaction")?;

    let seen = sorted_values(&read_committed(&brokers, &scores, TIMEOUT)?);
    assert_eq!(
        seen,
        sorted([values("committed", 2), values("aborted", 2)].concat()),
        "the mock's read_committed sees the aborted transaction's records"
    );
    assert_eq!(
        committed_offsets(&brokers, &group, &input)?,
        BTreeMap::new(),
        "the mock stores no offset sent with a committed transaction (TxnOffsetCommit)"
    );
    Ok(())
}
