//! Expected results computed independently of the code under test: brute force over the
//! raw event list, no panes, no rings, no Lua. Slow and obviously right.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Message, TopicPartitionList};
use weir_schemas::events::Transaction;

/// A window as the user configures it: name, length and pane in milliseconds.
#[derive(Debug, Clone)]
pub struct Window {
    pub name: &'static str,
    pub length_ms: i64,
    pub pane_ms: i64,
}

/// weir's default windows.
pub fn default_windows() -> Vec<Window> {
    vec![
        Window { name: "1m", length_ms: 60_000, pane_ms: 5_000 },
        Window { name: "1h", length_ms: 3_600_000, pane_ms: 60_000 },
    ]
}

/// Count and sum of the events whose pane lies in the window as of `t`: the `length/pane`
/// panes ending with the pane of `t`.
pub fn window_at(events: &[(i64, f64)], t: i64, w: &Window) -> (u64, f64) {
    let last = t.div_euclid(w.pane_ms);
    let first = last - w.length_ms / w.pane_ms + 1;
    let inside: Vec<f64> = events
        .iter()
        .filter(|(u, _)| (first..=last).contains(&u.div_euclid(w.pane_ms)))
        .map(|(_, a)| *a)
        .collect();
    (inside.len() as u64, inside.iter().sum())
}

/// What the readable Redis hash of each card must hold after a clean pass over `txs` (in
/// stream order): per window `count_<w>`, `amount_sum_<w>` as of the card's newest event,
/// and `event_time_max`. Events later than `lateness_ms` behind the card's newest are not
/// applied.
pub fn expected_card_features(
    txs: &[Transaction],
    windows: &[Window],
    lateness_ms: i64,
) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut applied: BTreeMap<&str, Vec<(i64, f64)>> = BTreeMap::new();
    let mut max_t: BTreeMap<&str, i64> = BTreeMap::new();
    for tx in txs {
        let m = max_t.entry(&tx.card_id).or_insert(tx.event_time);
        if tx.event_time < *m - lateness_ms {
            continue;
        }
        *m = (*m).max(tx.event_time);
        applied.entry(&tx.card_id).or_default().push((tx.event_time, tx.amount));
    }
    applied
        .into_iter()
        .map(|(card, events)| {
            let t = max_t[card];
            let mut fields = BTreeMap::new();
            for w in windows {
                let (count, sum) = window_at(&events, t, w);
                fields.insert(format!("count_{}", w.name), count as f64);
                fields.insert(format!("amount_sum_{}", w.name), sum);
            }
            fields.insert("event_time_max".to_string(), t as f64);
            (card.to_string(), fields)
        })
        .collect()
}

/// Reads every message of `topic` from the beginning until `done(messages)` holds or
/// `timeout` passes. Uses manual assignment, so no consumer group is involved.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[OwnedMessage]) -> bool,
) -> anyhow::Result<Vec<OwnedMessage>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", crate::unique("weir-test-reader"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    anyhow::ensure!(partitions > 0, "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    let mut messages = Vec::new();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => messages.push(m.detach()),
            Some(Err(e)) => tracing::warn!(error = %e, "reader"),
            None => {
                if done(&messages) {
                    return Ok(messages);
                }
            }
        }
    }
    anyhow::ensure!(done(&messages), "reading {topic}: condition not met after {timeout:?} ({} messages)", messages.len());
    Ok(messages)
}

/// The payload of a message, or an empty slice.
pub fn payload(m: &OwnedMessage) -> &[u8] {
    m.payload().unwrap_or_default()
}

/// Compares the readable Redis hash of each card in `expected` with its expected fields
/// (counts exactly, sums to 1e-9 relative) and lists every difference.
pub async fn redis_feature_differences<'a>(
    redis_url: &str,
    keys: &weir_features::redis_store::KeySpace,
    expected: impl IntoIterator<Item = (&'a String, &'a BTreeMap<String, f64>)>,
) -> anyhow::Result<Vec<String>> {
    let client = redis::Client::open(redis_url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    feature_differences_on(&mut con, keys, expected).await
}

/// [`redis_feature_differences`] on a Redis Cluster reached through `seeds`.
pub async fn redis_cluster_feature_differences<'a>(
    seeds: &[String],
    keys: &weir_features::redis_store::KeySpace,
    expected: impl IntoIterator<Item = (&'a String, &'a BTreeMap<String, f64>)>,
) -> anyhow::Result<Vec<String>> {
    let client = redis::cluster::ClusterClient::new(seeds.iter().map(String::as_str))?;
    let mut con = client.get_async_connection().await?;
    feature_differences_on(&mut con, keys, expected).await
}

async fn feature_differences_on<'a>(
    con: &mut impl redis::aio::ConnectionLike,
    keys: &weir_features::redis_store::KeySpace,
    expected: impl IntoIterator<Item = (&'a String, &'a BTreeMap<String, f64>)>,
) -> anyhow::Result<Vec<String>> {
    let mut differences = Vec::new();
    for (card, fields) in expected {
        let actual: BTreeMap<String, String> =
            redis::cmd("HGETALL").arg(keys.features_key("card", card)).query_async(con).await?;
        for (name, want) in fields {
            let got: f64 = actual.get(name).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            if !((got - want).abs() <= 1e-9 * want.abs().max(1.0)) {
                differences.push(format!("{card} {name}: redis {got}, expected {want}"));
            }
        }
    }
    Ok(differences)
}
