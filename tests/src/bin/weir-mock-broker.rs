//! `weir-mock-broker`: librdkafka's mock Kafka cluster (`rdkafka::mocking::MockCluster`)
//! hosted in a process of its own, so that `weir run` children can be SIGKILLed while the
//! broker — and the transactions, offsets and records it holds — lives on. The harness
//! side is `weir_tests::mock_broker::MockBroker`; see its module docs for what the mock
//! does and does not implement.
//!
//! ```text
//! weir-mock-broker [--brokers N] [--group-initial-rebalance-delay-ms MS] [--topic NAME:PARTITIONS]...
//! ```
//!
//! `--group-initial-rebalance-delay-ms` is the broker setting of that name: how long a
//! new (empty) consumer group waits for more members before its first assignment. The
//! mock's default, like Kafka's, is 3000 ms (measured: a lone subscriber gets its
//! partitions after 3.0 s); the harness passes 0.
//!
//! Protocol (line based, so a test needs nothing but pipes):
//! - stdout, once the topics exist: `bootstrap=HOST:PORT[,HOST:PORT...]`
//! - stdin, one command a line, each answered by one line on stdout:
//!   `topic NAME PARTITIONS` creates a topic (the mock has no CreateTopics API) → `ok`
//!   or `error MESSAGE`.
//! - stdin closed (the test ended or died) or SIGTERM/SIGINT: the process exits.

use std::io::{BufRead, Write};

use anyhow::{bail, Context};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::ClientConfig;

struct Args {
    brokers: i32,
    rebalance_delay_ms: Option<i32>,
    topics: Vec<(String, i32)>,
}

fn parse_topic(spec: &str) -> anyhow::Result<(String, i32)> {
    let (name, partitions) = spec.rsplit_once(':').with_context(|| format!("topic {spec:?}: expected NAME:PARTITIONS"))?;
    let partitions: i32 = partitions.parse().with_context(|| format!("topic {spec:?}: partitions not a number"))?;
    if name.is_empty() || partitions < 1 {
        bail!("topic {spec:?}: expected a name and at least 1 partition");
    }
    Ok((name.to_string(), partitions))
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { brokers: 1, rebalance_delay_ms: None, topics: Vec::new() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--brokers" => {
                let n = it.next().context("--brokers needs a number")?;
                args.brokers = n.parse().with_context(|| format!("--brokers {n:?}: not a number"))?;
                if args.brokers < 1 {
                    bail!("--brokers {n}: at least 1");
                }
            }
            "--group-initial-rebalance-delay-ms" => {
                let ms = it.next().context("--group-initial-rebalance-delay-ms needs a number")?;
                let ms: i32 = ms.parse().with_context(|| format!("--group-initial-rebalance-delay-ms {ms:?}: not a number"))?;
                if ms < 0 {
                    bail!("--group-initial-rebalance-delay-ms {ms}: not negative");
                }
                args.rebalance_delay_ms = Some(ms);
            }
            "--topic" => args.topics.push(parse_topic(&it.next().context("--topic needs NAME:PARTITIONS")?)?),
            other => bail!(
                "unknown argument {other:?} (usage: weir-mock-broker [--brokers N] [--group-initial-rebalance-delay-ms MS] [--topic NAME:PARTITIONS]...)"
            ),
        }
    }
    Ok(args)
}

fn create_topic<C: rdkafka::ClientContext>(cluster: &MockCluster<'_, C>, name: &str, partitions: i32, brokers: i32) -> anyhow::Result<()> {
    // Replication as in a real cluster of that size (at most 3); the mock keeps one copy
    // of the data either way.
    cluster.create_topic(name, partitions, brokers.min(3)).with_context(|| format!("creating topic {name}"))
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // The mock cluster belongs to an rd_kafka handle whose threads serve its brokers: here
    // a producer that never produces, made with `test.mock.num.brokers` rather than
    // `MockCluster::new`, because only through the handle can we reach the mock's raw
    // pointer for the settings rdkafka does not wrap (the rebalance delay). The cluster
    // lives as long as `handle` does, i.e. until main returns.
    let handle: BaseProducer = ClientConfig::new()
        .set("test.mock.num.brokers", args.brokers.to_string())
        .create()
        .context("creating the mock cluster")?;
    let cluster = handle.client().mock_cluster().context("the handle has no mock cluster")?;
    if let Some(ms) = args.rebalance_delay_ms {
        // SAFETY: the pointer is the live mock cluster of `handle`, which outlives this call.
        unsafe {
            let mock = rdkafka::bindings::rd_kafka_handle_mock_cluster(handle.client().native_ptr());
            anyhow::ensure!(!mock.is_null(), "the handle has no mock cluster");
            rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(mock, ms);
        }
    }
    for (name, partitions) in &args.topics {
        create_topic(&cluster, name, *partitions, args.brokers)?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "bootstrap={}", cluster.bootstrap_servers())?;
    out.flush()?;

    // SIGTERM and SIGINT keep their default action (exit): the mock holds nothing worth
    // saving. End of stdin means the test that started us is gone.
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            [] => continue,
            ["topic", name, partitions] => match partitions.parse::<i32>() {
                Ok(p) if p >= 1 => match create_topic(&cluster, name, p, args.brokers) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("error {e:#}"),
                },
                _ => format!("error topic {name}: partitions {partitions:?} not a positive number"),
            },
            _ => format!("error unknown command {line:?} (expected: topic NAME PARTITIONS)"),
        };
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    // Exit without destroying the handle: an orderly rd_kafka_destroy of the mock took
    // ~1.8 s (measured), and there is nothing to flush.
    std::process::exit(0)
}
