//! librdkafka's mock Kafka cluster in a process of its own, meant for issue 23's
//! exactly-once tests — and what it was measured to do (it cannot carry them).
//!
//! ## Why a mock, and why its own process
//! Tansu 0.6.0, the broker of every other test, has no EndTxn: librdkafka's
//! `init_transactions` succeeds against it, but `commit_transaction` fails with
//! "EndTxnRequest (KIP-98) not supported by broker". librdkafka ships a mock cluster that
//! answers the transactional requests over TCP. A mock lives inside an rd_kafka handle and
//! dies with the process that holds it, while the tests must SIGKILL `weir run` children
//! and restart them against the same broker state; so `weir-mock-broker`
//! (`src/bin/weir-mock-broker.rs`) hosts it, prints its bootstrap address, and serves
//! until its stdin closes — when the test drops [`MockBroker`], or dies (the kernel closes
//! the pipe; measured: the mock is gone < 1 s after its parent's SIGKILL) — or it gets
//! SIGTERM.
//!
//! ## What it does (measured with librdkafka 2.12.1, from rdkafka-sys 4.10.0)
//! - Produce, fetch, idempotent and transactional producers: every transactional call
//!   (`init_transactions`, `begin_transaction`, `send_offsets_to_transaction`,
//!   `commit_transaction`, `abort_transaction`) succeeds.
//! - Consumer groups across processes, with plain offset commits stored and read back.
//!   With [`MockBrokerConfig::default`] (initial rebalance delay 0) a lone subscriber is
//!   assigned after 54 ms (3.0 s with the mock's default delay of 3000 ms); when a second
//!   process joins, both hold partitions 5.1 s later; when that process is SIGKILLed the
//!   survivor holds all partitions 11.9 s later (`session.timeout.ms` = 6000).
//!
//! ## What it does not do (measured; `tests/tests/mock_broker_transactions.rs` pins it)
//! - **No transaction semantics.** EndTxn only checks the producer id: no commit or abort
//!   marker is written and nothing is remembered, and Fetch reports the high watermark as
//!   the last stable offset with no aborted transactions. A `read_committed` consumer sees
//!   aborted records and records of transactions still open.
//! - **Offsets sent to a transaction are dropped**: TxnOffsetCommit answers success and
//!   stores nothing; after `send_offsets_to_transaction` and `commit_transaction` the group
//!   has no committed offset.
//! - **No fencing**: `init_transactions` with a `transactional.id` already in use gets a
//!   new producer id at epoch 0 instead of bumping the old one's epoch, so the zombie still
//!   commits and the open transaction of a SIGKILLed producer is never aborted.
//! - `transaction.timeout.ms` is ignored: a commit 3 s into a transaction with a 1 s
//!   timeout succeeds.
//! - librdkafka's master (v2.15.0, read, not run) writes commit/abort markers and filters
//!   aborted data for share groups' ShareFetch only; its Fetch, TxnOffsetCommit and
//!   InitProducerId behave as above. rdkafka-sys 4.10.0 is the newest on crates.io.
//! - No CreateTopics (the admin client's `create_topics` times out), so topics come from
//!   [`MockBroker::start`] or [`MockBroker::create_topic`]; and no topic configs, so no
//!   `cleanup.policy=compact`: a changelog topic keeps every record, none is ever
//!   compacted away.
//! - A producer writing to an unknown topic creates it with 4 partitions (consumers
//!   create nothing).
//! - A partition keeps only its newest ~5 MiB of record batches (hard-coded; 100 000
//!   batches at most): after 80 records of 100 KiB to one partition its log started at
//!   offset 36. [`read_to_end`] fails on such a partition rather than return a short list.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// How to start the mock cluster.
#[derive(Debug, Clone)]
pub struct MockBrokerConfig {
    /// Brokers in the cluster (partition leaders are spread over them). Default 1.
    pub brokers: i32,
    /// How long a new consumer group waits for more members before its first
    /// assignment, in ms. Default 0 (the mock's own default, like Kafka's, is 3000).
    pub group_initial_rebalance_delay_ms: i32,
}

impl Default for MockBrokerConfig {
    fn default() -> Self {
        MockBrokerConfig { brokers: 1, group_initial_rebalance_delay_ms: 0 }
    }
}

/// A running `weir-mock-broker` process. Killed when dropped; it also exits by itself
/// when the test process dies, because its stdin (our pipe) then closes.
pub struct MockBroker {
    /// The bootstrap servers to give clients and `weir run` children.
    pub brokers: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl MockBroker {
    /// Starts a one-broker mock cluster with `topics` (name, partitions) created and no
    /// initial rebalance delay ([`MockBrokerConfig::default`]).
    pub fn start(topics: &[(&str, i32)]) -> anyhow::Result<Self> {
        Self::start_with(&MockBrokerConfig::default(), topics)
    }

    /// Starts a mock cluster as `config` says, with `topics` (name, partitions) created.
    pub fn start_with(config: &MockBrokerConfig, topics: &[(&str, i32)]) -> anyhow::Result<Self> {
        let bin = mock_broker_bin()?;
        let mut cmd = Command::new(&bin);
        cmd.args(["--brokers", &config.brokers.to_string()]);
        cmd.args(["--group-initial-rebalance-delay-ms", &config.group_initial_rebalance_delay_ms.to_string()]);
        for (name, partitions) in topics {
            cmd.args(["--topic", &format!("{name}:{partitions}")]);
        }
        // No PR_SET_PDEATHSIG here (unlike `spawn_child`): it fires when the spawning
        // *thread* ends, and a test may start the broker from a short-lived thread. The
        // stdin pipe is the lifeline instead: std opens it close-on-exec, so only this
        // process holds its write end, and the kernel closes it when we die.
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdin = child.stdin.take().context("mock broker stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("mock broker stdout")?);
        let mut broker = MockBroker { brokers: String::new(), child, stdin, stdout };
        let line = broker.read_line().context("waiting for the mock broker's bootstrap line")?;
        broker.brokers = line
            .strip_prefix("bootstrap=")
            .with_context(|| format!("mock broker said {line:?}, expected bootstrap=..."))?
            .to_string();
        Ok(broker)
    }

    /// Creates a topic on the running cluster. The mock answers no CreateTopics request
    /// (librdkafka 2.12.1 implements no handler for it), so this goes through the mock
    /// process's own API.
    pub fn create_topic(&mut self, name: &str, partitions: i32) -> anyhow::Result<()> {
        writeln!(self.stdin, "topic {name} {partitions}")?;
        self.stdin.flush()?;
        match self.read_line()?.as_str() {
            "ok" => Ok(()),
            other => bail!("creating topic {name} on the mock broker: {other}"),
        }
    }

    /// Fails if the mock broker process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("weir-mock-broker exited: {status}");
        }
        Ok(())
    }

    /// The process id (to show that it outlives the processes a test kills).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    fn read_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            bail!("weir-mock-broker closed its stdout ({status})");
        }
        Ok(line.trim_end().to_string())
    }
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `weir-mock-broker` binary: `WEIR_MOCK_BROKER_BIN` if set; else the one cargo built
/// next to the running test (`target/debug/deps/TEST` → `target/debug/weir-mock-broker`;
/// cargo builds a package's binaries before its integration tests); else built now.
pub fn mock_broker_bin() -> anyhow::Result<PathBuf> {
    tests_bin("weir-mock-broker", "WEIR_MOCK_BROKER_BIN")
}

/// A binary of this crate (`src/bin/NAME.rs`): see [`mock_broker_bin`].
pub fn tests_bin(name: &str, env_override: &str) -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var(env_override) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    if let Some(profile_dir) = exe.parent().and_then(|deps| deps.parent()) {
        let bin = profile_dir.join(name);
        if bin.is_file() {
            return Ok(bin);
        }
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "-p", "weir-tests", "--bin", name])
        .current_dir(&workspace)
        .status()
        .with_context(|| format!("running cargo build --bin {name}"))?;
    anyhow::ensure!(status.success(), "cargo build --bin {name} failed: {status}");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace.join("target"));
    let bin = target.join("debug").join(name);
    anyhow::ensure!(bin.is_file(), "no {name} binary at {}", bin.display());
    Ok(bin)
}

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
