//! Kafka configuration (`[kafka]` in `weir.toml`).

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`. Required.
    pub brokers: String,
    /// Consumer group of the scoring pipeline. Default `weir`.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Where a group with no committed offset starts: `earliest` or `latest`. Default `earliest`.
    #[serde(default = "default_auto_offset_reset")]
    pub auto_offset_reset: String,
    #[serde(default)]
    pub topics: TopicsConfig,
    /// Exactly-once: each batch's scores, changelog records, dead letters and input
    /// offsets are committed in one Kafka transaction, so a `read_committed` reader sees
    /// exactly one score per event, carrying the features first computed for it. Needs a
    /// broker with transactions (Tansu 0.6.0 has none) and `kafka.transactional_id`.
    /// Default `false`: at-least-once, on any broker (a crash may produce an event's score
    /// twice; the state's replay fences keep the features counted once).
    #[serde(default)]
    pub exactly_once: bool,
    /// The transactional id of this process, with `exactly_once`: unique per running
    /// process and the same across its restarts (a StatefulSet's pod name, say), so that a
    /// restart fences its previous life at once and aborts the transaction it left open.
    /// Default `<group_id>-<hostname>`.
    #[serde(default)]
    pub transactional_id: Option<String>,
    /// Timeout of each transactional call and the broker's `transaction.timeout.ms`
    /// (after which it aborts a transaction whose producer went silent), ms. Default 10000.
    #[serde(default = "default_transaction_timeout_ms")]
    pub transaction_timeout_ms: u64,
    #[serde(default)]
    pub batch: BatchConfig,
    /// Extra librdkafka properties for every Kafka client weir makes (security, client
    /// id, ...): consumers, producers, the changelog's readers and admin client. The
    /// consumer's and producers' own properties below come after these and win.
    #[serde(default)]
    pub client_properties: BTreeMap<String, String>,
    /// Extra librdkafka properties for the consumer (security, timeouts, ...). Properties
    /// weir's delivery guarantee depends on (`enable.auto.offset.store`, `group.id`) are refused.
    #[serde(default)]
    pub consumer_properties: BTreeMap<String, String>,
    /// Extra librdkafka properties for producers.
    #[serde(default)]
    pub producer_properties: BTreeMap<String, String>,
}

/// Topic names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    /// The input events' topic (records of the `[input]` subject). Default `transactions`,
    /// the demo's events. Read also as `transactions`, the key's name before version 0.2.
    #[serde(default = "default_input", alias = "transactions")]
    pub input: String,
    /// Delayed labels. Default `labels`.
    #[serde(default = "default_labels")]
    pub labels: String,
    /// Scores out. Default `scores`.
    #[serde(default = "default_scores")]
    pub scores: String,
    /// Poison input, original bytes plus reason headers. Default `transactions.dlq`.
    #[serde(default = "default_dead_letter")]
    pub dead_letter: String,
    /// The changelog of the state kept in process (`store.state = "local"`): compacted,
    /// with the input topic's partition count, created at start when missing. Default
    /// `<group_id>-state-changelog` (characters a topic name cannot hold become `_`).
    #[serde(default)]
    pub changelog: Option<String>,
}

/// Micro-batching. A batch is what the consumer holds when the pipeline is free for the
/// next one (*smart batching*): one event at low load, up to `max_events` under load, so
/// batching costs no latency and load gets bigger batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Most events per batch. Default 2000.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// After a batch's first event, how long to wait for more when fewer than
    /// `max_events` have arrived, in milliseconds. Default 0: take what has arrived and go
    /// (a wait adds its whole length to the latency of the batch's first event).
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// At least once: batches whose acknowledgements (scores, changelog records) may be
    /// awaited while the next one is computed; offsets are still stored in batch order.
    /// 1: one batch at a time. Ignored with `exactly_once` (one transaction at a time).
    /// Default 4.
    #[serde(default = "default_in_flight")]
    pub in_flight: usize,
    /// On shutdown, how long a batch already in progress may take to finish, in
    /// milliseconds. Past it the batch is abandoned without storing its offsets (its
    /// events are replayed by the next owner, which the store's fences make harmless),
    /// so a stuck downstream (an unreachable topic, a Redis outage) cannot hold a
    /// shutdown hostage. Default 10000.
    #[serde(default = "default_shutdown_drain_ms")]
    pub shutdown_drain_ms: u64,
}

fn default_transaction_timeout_ms() -> u64 {
    10_000
}
fn default_group_id() -> String {
    "weir".into()
}
fn default_auto_offset_reset() -> String {
    "earliest".into()
}
fn default_input() -> String {
    "transactions".into()
}
fn default_labels() -> String {
    "labels".into()
}
fn default_scores() -> String {
    "scores".into()
}
fn default_dead_letter() -> String {
    "transactions.dlq".into()
}
fn default_max_events() -> usize {
    2000
}
fn default_max_wait_ms() -> u64 {
    0
}
fn default_in_flight() -> usize {
    4
}
fn default_shutdown_drain_ms() -> u64 {
    10_000
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            input: default_input(),
            labels: default_labels(),
            scores: default_scores(),
            dead_letter: default_dead_letter(),
            changelog: None,
        }
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: default_max_events(),
            max_wait_ms: default_max_wait_ms(),
            in_flight: default_in_flight(),
            shutdown_drain_ms: default_shutdown_drain_ms(),
        }
    }
}

/// librdkafka's default `message.max.bytes` (1 000 000 bytes).
pub const LIBRDKAFKA_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Consumer properties weir sets itself, because at-least-once depends on them.
const RESERVED_CONSUMER: &[&str] =
    &["enable.auto.offset.store", "group.id", "bootstrap.servers", "enable.partition.eof"];

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            group_id: default_group_id(),
            auto_offset_reset: default_auto_offset_reset(),
            topics: TopicsConfig::default(),
            exactly_once: false,
            transactional_id: None,
            transaction_timeout_ms: default_transaction_timeout_ms(),
            batch: BatchConfig::default(),
            client_properties: BTreeMap::new(),
            consumer_properties: BTreeMap::new(),
            producer_properties: BTreeMap::new(),
        }
    }

    /// Every problem with this configuration.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.brokers.trim().is_empty() {
            p.push("kafka.brokers is empty".to_string());
        }
        if self.group_id.trim().is_empty() {
            p.push("kafka.group_id is empty".to_string());
        }
        if !matches!(self.auto_offset_reset.as_str(), "earliest" | "latest") {
            p.push(format!("kafka.auto_offset_reset must be earliest or latest, got {:?}", self.auto_offset_reset));
        }
        let t = &self.topics;
        for (name, value) in [
            ("input", &t.input),
            ("labels", &t.labels),
            ("scores", &t.scores),
            ("dead_letter", &t.dead_letter),
        ] {
            if value.is_empty() || value.len() > 249 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
                p.push(format!("kafka.topics.{name} {value:?} is not a valid topic name"));
            }
        }
        if let Some(value) = &t.changelog
            && (value.is_empty() || value.len() > 249 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
        {
            p.push(format!("kafka.topics.changelog {value:?} is not a valid topic name"));
        }
        let changelog = self.changelog_topic();
        if [&t.input, &t.scores, &t.dead_letter, &t.labels].contains(&&changelog) {
            p.push(format!("kafka.topics.changelog {changelog:?} is also another of weir's topics"));
        }
        if self.transactional_id.as_ref().is_some_and(|id| id.trim().is_empty()) {
            p.push("kafka.transactional_id is empty".to_string());
        }
        if !(1_000..=900_000).contains(&self.transaction_timeout_ms) {
            p.push(format!("kafka.transaction_timeout_ms must be in 1000..=900000, got {}", self.transaction_timeout_ms));
        }
        if self.client_properties.contains_key("bootstrap.servers") {
            p.push("kafka.client_properties.\"bootstrap.servers\" is set by weir; use kafka.brokers".to_string());
        }
        for key in ["transactional.id", "isolation.level"] {
            if self.producer_properties.contains_key(key) || self.consumer_properties.contains_key(key) || self.client_properties.contains_key(key) {
                p.push(format!("{key:?} is set by weir; use kafka.exactly_once and kafka.transactional_id"));
            }
        }
        if t.input == t.scores || t.input == t.dead_letter || t.scores == t.dead_letter {
            p.push("kafka.topics: input, scores and dead_letter must be three different topics".to_string());
        }
        if self.batch.max_events == 0 || self.batch.max_events > 100_000 {
            p.push(format!("kafka.batch.max_events must be in 1..=100000, got {}", self.batch.max_events));
        }
        if !(1..=64).contains(&self.batch.in_flight) {
            p.push(format!("kafka.batch.in_flight must be in 1..=64, got {}", self.batch.in_flight));
        }
        if self.batch.max_wait_ms > 60_000 {
            p.push(format!("kafka.batch.max_wait_ms must be at most 60000, got {}", self.batch.max_wait_ms));
        }
        for key in self.consumer_properties.keys() {
            if RESERVED_CONSUMER.contains(&key.as_str()) {
                p.push(format!("kafka.consumer_properties.{key:?} is set by weir and cannot be overridden"));
            }
        }
        if let Some(v) = self.producer_properties.get("message.max.bytes")
            && !v.trim().parse::<usize>().is_ok_and(|n| (1000..=1_000_000_000).contains(&n))
        {
            p.push(format!("kafka.producer_properties.\"message.max.bytes\" must be a number of bytes in 1000..=1000000000, got {v:?}"));
        }
        if self.producer_properties.contains_key("bootstrap.servers") {
            p.push("kafka.producer_properties.\"bootstrap.servers\" is set by weir; use kafka.brokers".to_string());
        }
        p
    }

    /// The changelog topic's name (`topics.changelog`, or derived from the group).
    pub fn changelog_topic(&self) -> String {
        self.topics.changelog.clone().unwrap_or_else(|| {
            let group: String =
                self.group_id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
            format!("{group}-state-changelog")
        })
    }

    /// This process's transactional id (`transactional_id`, or `<group_id>-<hostname>`).
    pub fn transactional_id(&self) -> String {
        self.transactional_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .unwrap_or_else(|| "localhost".to_string());
            format!("{}-{host}", self.group_id)
        })
    }

    /// What every client starts from: the brokers and `client_properties`.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.client_properties {
            c.set(k, v);
        }
        c
    }

    /// The consumer's librdkafka configuration. Offsets are stored by weir after each
    /// batch's effects are acknowledged (`enable.auto.offset.store=false`) and committed
    /// by librdkafka's auto-commit from that store, plus a synchronous commit on revoke
    /// and on shutdown.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = self.client_config();
        c.set("group.id", &self.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", &self.auto_offset_reset)
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            // librdkafka's default, 500 ms, is how long a broker may hold a fetch when no
            // data is ready; a broker that holds every fetch that long (Tansu) adds it to
            // every event's latency. Real-time scoring wants a short one.
            .set("fetch.wait.max.ms", "5")
            .set("isolation.level", "read_committed");
        if self.exactly_once {
            // Offsets go in each batch's transaction, never by auto-commit.
            c.set("enable.auto.commit", "false");
        }
        for (k, v) in &self.consumer_properties {
            c.set(k, v);
        }
        c
    }

    /// The producers' librdkafka `message.max.bytes`: `kafka.producer_properties` when set
    /// there, else librdkafka's default, [`LIBRDKAFKA_MESSAGE_MAX_BYTES`]. librdkafka refuses
    /// to produce a message whose key, value and headers together exceed it; the
    /// dead-letter sink sizes its messages from it.
    pub fn producer_message_max_bytes(&self) -> usize {
        self.producer_properties
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(LIBRDKAFKA_MESSAGE_MAX_BYTES)
    }

    /// Producers: idempotent, acks from all in-sync replicas, a short linger to batch.
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.client_config();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            // A batch's messages are enqueued together and go out as the broker
            // connection is free; waiting for more (librdkafka's default 5 ms) would add
            // to every score's latency and gain nothing.
            .set("linger.ms", "0")
            .set("message.timeout.ms", "30000");
        for (k, v) in &self.producer_properties {
            c.set(k, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn one_problem(c: &KafkaConfig, needle: &str) {
        let p = c.problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains(needle), "{:?} does not contain {needle:?}", p[0]);
    }

    #[test]
    fn defaults_have_no_problems() {
        let c = KafkaConfig::new("127.0.0.1:9092");
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(
            (c.topics.input.as_str(), c.topics.labels.as_str(), c.topics.scores.as_str(), c.topics.dead_letter.as_str()),
            ("transactions", "labels", "scores", "transactions.dlq")
        );
        assert_eq!((c.batch.max_events, c.batch.max_wait_ms), (2000, 0));
    }

    #[test]
    fn basic_problems() {
        one_problem(&KafkaConfig::new(" "), "kafka.brokers is empty");
        one_problem(&KafkaConfig { group_id: "".into(), ..KafkaConfig::new("b:1") }, "kafka.group_id is empty");
        one_problem(
            &KafkaConfig { auto_offset_reset: "smallest".into(), ..KafkaConfig::new("b:1") },
            "auto_offset_reset must be earliest or latest",
        );
        let latest = KafkaConfig { auto_offset_reset: "latest".into(), ..KafkaConfig::new("b:1") };
        assert!(latest.problems().is_empty());
    }

    #[test]
    fn reserved_consumer_properties_are_refused() {
        for key in ["enable.auto.offset.store", "group.id", "bootstrap.servers", "enable.partition.eof"] {
            let mut c = KafkaConfig::new("b:1");
            c.consumer_properties.insert(key.into(), "x".into());
            one_problem(&c, &format!("kafka.consumer_properties.{key:?} is set by weir"));
        }
        let mut c = KafkaConfig::new("b:1");
        c.consumer_properties.insert("security.protocol".into(), "ssl".into());
        c.producer_properties.insert("compression.type".into(), "lz4".into());
        assert!(c.problems().is_empty());
        c.producer_properties.insert("bootstrap.servers".into(), "x:1".into());
        one_problem(&c, "kafka.producer_properties.\"bootstrap.servers\"");
    }

    #[test]
    fn bad_topic_names() {
        let long = "t".repeat(250);
        for name in ["", "with space", "slash/topic", "tópico", long.as_str()] {
            let mut c = KafkaConfig::new("b:1");
            c.topics.labels = name.into();
            one_problem(&c, "kafka.topics.labels");
        }
        let mut c = KafkaConfig::new("b:1");
        c.topics.labels = "t".repeat(249);
        c.topics.scores = "My_scores-v2.x".into();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn duplicate_topics() {
        for (scores, dead_letter) in [("transactions", "dlq"), ("scores", "transactions"), ("same", "same")] {
            let mut c = KafkaConfig::new("b:1");
            c.topics.scores = scores.into();
            c.topics.dead_letter = dead_letter.into();
            one_problem(&c, "must be three different topics");
        }
        // Labels may share a topic name with nothing in particular; it is read by another stage.
        let mut c = KafkaConfig::new("b:1");
        c.topics.labels = "transactions".into();
        assert!(c.problems().is_empty());
    }

    #[test]
    fn bad_batch_sizes() {
        for max_events in [0, 100_001] {
            let mut c = KafkaConfig::new("b:1");
            c.batch.max_events = max_events;
            one_problem(&c, "kafka.batch.max_events must be in 1..=100000");
        }
        let mut c = KafkaConfig::new("b:1");
        c.batch.max_wait_ms = 60_001;
        one_problem(&c, "kafka.batch.max_wait_ms must be at most 60000");
        c.batch = BatchConfig { max_events: 100_000, max_wait_ms: 60_000, ..BatchConfig::default() };
        assert!(c.problems().is_empty());
        c.batch = BatchConfig { max_events: 1, max_wait_ms: 0, ..BatchConfig::default() };
        assert!(c.problems().is_empty());
    }

    #[test]
    fn every_problem_at_once() {
        let mut c = KafkaConfig::new("");
        c.group_id.clear();
        c.topics.scores = "transactions".into();
        c.batch.max_events = 0;
        c.consumer_properties.insert("group.id".into(), "g".into());
        assert_eq!(c.problems().len(), 5, "{:?}", c.problems());
    }

    #[test]
    fn consumer_config_stores_offsets_only_when_weir_says_so() {
        let mut c = KafkaConfig::new("h1:9092,h2:9092");
        c.group_id = "scoring".into();
        c.auto_offset_reset = "latest".into();
        c.consumer_properties.insert("security.protocol".into(), "ssl".into());
        let cc = c.consumer_config();
        assert_eq!(cc.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(cc.get("enable.auto.commit"), Some("true"));
        assert_eq!(cc.get("enable.partition.eof"), Some("false"));
        assert_eq!(cc.get("bootstrap.servers"), Some("h1:9092,h2:9092"));
        assert_eq!(cc.get("group.id"), Some("scoring"));
        assert_eq!(cc.get("auto.offset.reset"), Some("latest"));
        assert_eq!(cc.get("security.protocol"), Some("ssl"));
    }

    #[test]
    fn producer_config_is_idempotent_with_acks_all() {
        let mut c = KafkaConfig::new("h:1");
        c.producer_properties.insert("linger.ms".into(), "50".into());
        let pc = c.producer_config();
        assert_eq!(pc.get("enable.idempotence"), Some("true"));
        assert_eq!(pc.get("acks"), Some("all"));
        assert_eq!(pc.get("bootstrap.servers"), Some("h:1"));
        // Extra properties come last and win.
        assert_eq!(pc.get("linger.ms"), Some("50"));
        assert_eq!(pc.get("group.id"), None);
    }
}
