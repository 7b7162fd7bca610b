//! `weir-txn-producer`: a transactional producer in a process of its own, for the tests
//! that SIGKILL one in the middle of a transaction (`tests/transactions_contract.rs`).
//!
//! ```text
//! weir-txn-producer --brokers B --topic T --transactional-id ID --records N --prefix P
//! ```
//!
//! Calls `init_transactions`, `begin_transaction`, produces N records `P-0 … P-(N-1)`
//! (key `i`, round-robin over the topic's partitions), waits until the broker has
//! acknowledged every one (so they are in the log), prints `sent N` and then waits —
//! never committing — until it is killed or its stdin is closed.

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::Context;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;

fn main() -> anyhow::Result<()> {
    let mut brokers = None;
    let mut topic = None;
    let mut id = None;
    let mut records: usize = 0;
    let mut prefix = "record".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--brokers" => brokers = Some(value),
            "--topic" => topic = Some(value),
            "--transactional-id" => id = Some(value),
            "--records" => records = value.parse().with_context(|| format!("--records {value:?}: not a number"))?,
            "--prefix" => prefix = value,
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    let (brokers, topic, id) = (
        brokers.context("--brokers is required")?,
        topic.context("--topic is required")?,
        id.context("--transactional-id is required")?,
    );
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("transactional.id", &id)
        .create()
        .context("creating the transactional producer")?;
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).context("init_transactions")?;
    producer.begin_transaction().context("begin_transaction")?;
    let partitions = producer
        .client()
        .fetch_metadata(Some(&topic), timeout)?
        .topics()
        .first()
        .map(|t| t.partitions().len() as i32)
        .filter(|&n| n > 0)
        .with_context(|| format!("topic {topic} has no partitions"))?;
    for i in 0..records {
        let key = i.to_string();
        let value = format!("{prefix}-{i}");
        let record = BaseRecord::to(&topic).key(&key).payload(&value).partition(i as i32 % partitions);
        producer.send(record).map_err(|(e, _)| e).with_context(|| format!("sending {value}"))?;
    }
    // flush() returns once every record is acknowledged by its partition leader.
    producer.flush(timeout).context("flush")?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "sent {records}")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        line?;
    }
    Ok(())
}
