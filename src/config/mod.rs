//! `weir.toml`: the whole configuration, layered defaults → file → environment, checked
//! as a whole so that every problem is reported at once.
//!
//! Environment overrides (handy in containers and tests):
//! `WEIR_KAFKA_BROKERS`, `WEIR_KAFKA_GROUP_ID`, `WEIR_REDIS_URL`, `WEIR_MODEL_DIR`,
//! `WEIR_SCHEMA_REGISTRY_URL`.
//!
//! The bottom layer of the binary: it imports nothing else of `src/` (its own sections
//! [`input`], [`monitor`] and [`schemas`] are submodules). `crate::wiring` turns it into running
//! components.

pub mod input;
pub mod monitor;
pub mod schemas;
pub mod state;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use weir_features::config::FeaturesConfig;
use weir_ingest::config::KafkaConfig;
use weir_online_learner::config::LearnerConfig;
use weir_schemas::validate::ValidationRules;
use weir_scorer::config::ScorerConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeirConfig {
    /// Brokers, topics, batching, librdkafka properties.
    pub kafka: KafkaConfig,
    /// Redis: the serving copy of the state (and, with `state.mode = "redis"` or entity
    /// kinds not keyed like the input, the state itself).
    pub redis: Option<RedisConfig>,
    /// Where entity state lives: in process with a changelog, or in Redis.
    #[serde(default)]
    pub state: state::StateConfig,
    /// What the input topic carries: schema subject, event id, primary key, attributes,
    /// field checks.
    #[serde(default)]
    pub input: input::InputConfig,
    /// Feature definitions and feature store keys.
    #[serde(default)]
    pub features: FeaturesConfig,
    /// Model and decision thresholds.
    #[serde(default)]
    pub scorer: ScorerConfig,
    /// Rules every incoming event must pass.
    #[serde(default)]
    pub validation: ValidationRules,
    /// Where schema ids come from.
    #[serde(default)]
    pub schemas: SchemasConfig,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The monitor stage: drift, fairness, concept drift, alerts.
    #[serde(default)]
    pub monitor: monitor::MonitorStageConfig,
    /// The online learner (`weir learn`; with this section `weir run` runs it too).
    #[serde(default)]
    pub learner: Option<LearnerConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `host:port` on which `weir run` serves Prometheus metrics at `/metrics`, e.g.
    /// `127.0.0.1:9464`. Default: none (no endpoint).
    #[serde(default)]
    pub listen: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`. With `cluster = true`: one node of the cluster (a seed;
    /// the client discovers the others).
    pub url: String,
    /// The Redis is a Redis Cluster: keys are spread over its masters by hash slot (an
    /// entity's keys share one, through their `{kind:id}` hash tag) and each feature batch
    /// is sent as one pipeline per slot. Default false. The online learner's checkpoint
    /// (`[learner]`) needs a single Redis and is refused with this on.
    #[serde(default)]
    pub cluster: bool,
    /// More seed nodes (`redis://host:port`) tried besides `url` when connecting to the
    /// cluster, so that one node down at start does not stop weir. Only with
    /// `cluster = true`. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_seeds: Vec<String>,
    /// Entity states kept decoded in memory between micro-batches, so that the entities
    /// this process keeps writing are not read back from Redis each batch (a cached state
    /// is only ever written through the compare-and-set on its version, so a stale one is
    /// detected and re-read). Least recently used dropped first; 0 turns it off. Memory is
    /// roughly this times the average state size (about 1-2 KiB with 4 windows).
    /// Default 100000.
    #[serde(default = "default_state_cache_entities")]
    pub state_cache_entities: usize,
}

fn default_state_cache_entities() -> usize {
    weir_features::redis_store::DEFAULT_STATE_CACHE_ENTITIES
}

impl RedisConfig {
    /// A single (non-cluster) Redis at `url`.
    pub fn single(url: impl Into<String>) -> Self {
        RedisConfig { url: url.into(), cluster: false, cluster_seeds: Vec::new(), state_cache_entities: default_state_cache_entities() }
    }

    /// Every problem with this section, each naming the field.
    pub fn problems(&self, learner: bool) -> Vec<String> {
        let mut p = Vec::new();
        if !(self.url.starts_with("redis://") || self.url.starts_with("rediss://") || self.url.starts_with("unix://")) {
            p.push(format!("redis.url {:?} must start with redis://, rediss:// or unix://", self.url));
        }
        if self.cluster {
            if self.url.starts_with("unix://") {
                p.push(format!("redis.url {:?}: a cluster is reached over TCP (redis:// or rediss://)", self.url));
            }
            for s in &self.cluster_seeds {
                if !(s.starts_with("redis://") || s.starts_with("rediss://")) {
                    p.push(format!("redis.cluster_seeds entry {s:?} must start with redis:// or rediss://"));
                }
            }
            if learner {
                p.push("redis.cluster = true with a [learner] section: the learner's checkpoint needs a single Redis".to_string());
            }
        } else if !self.cluster_seeds.is_empty() {
            p.push(format!("redis.cluster_seeds {:?} given but redis.cluster is false", self.cluster_seeds));
        }
        p
    }

    /// The cluster seeds: `url` first, then `cluster_seeds`.
    pub fn seeds(&self) -> Vec<String> {
        std::iter::once(self.url.clone()).chain(self.cluster_seeds.iter().cloned()).collect()
    }
}

pub use schemas::{RegistrySubjects, SchemasConfig};

impl WeirConfig {
    /// Reads `path`, applies the environment, and checks everything.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
        Self::from_toml(&text, |k| std::env::var(k).ok()).with_context(|| format!("config {}", path.display()))
    }

    /// Parses TOML, applies environment overrides from `env`, and checks everything.
    pub fn from_toml(text: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut config: WeirConfig = toml::from_str(text).context("parsing toml")?;
        config.apply_env(env);
        config.check()?;
        Ok(config)
    }

    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        if let Some(v) = env("WEIR_KAFKA_BROKERS") {
            self.kafka.brokers = v;
        }
        if let Some(v) = env("WEIR_KAFKA_GROUP_ID") {
            self.kafka.group_id = v;
        }
        if let Some(v) = env("WEIR_REDIS_URL") {
            // Keeps the file's cluster settings: the variable names the node (or seed).
            match &mut self.redis {
                Some(r) => r.url = v,
                None => self.redis = Some(RedisConfig::single(v)),
            }
        }
        if let Some(v) = env("WEIR_MODEL_DIR") {
            self.scorer.model_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = env("WEIR_SCHEMA_REGISTRY_URL") {
            self.schemas.registry_url = Some(v);
        }
    }

    /// Every problem in every section, in one error.
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.kafka.problems();
        p.extend(self.state.problems());
        if self.kafka.exactly_once && self.state.mode == state::StateMode::Redis {
            p.push(
                "kafka.exactly_once needs state.mode = \"local\": a Redis write cannot join a Kafka transaction, \
                 so with the state in Redis a replay would read state the aborted batch already changed"
                    .to_string(),
            );
        }
        p.extend(self.input.problems());
        p.extend(self.features.problems());
        p.extend(self.scorer.problems());
        p.extend(self.validation.problems());
        p.extend(self.monitor.problems());
        if let Some(redis) = &self.redis {
            p.extend(redis.problems(self.learner.is_some()));
        }
        if let Some(listen) = &self.metrics.listen {
            if listen.parse::<std::net::SocketAddr>().is_err() {
                p.push(format!("metrics.listen {listen:?} is not a host:port socket address"));
            }
        }
        if self.learner.is_some() {
            p.extend(learner_config(self).problems());
        }
        p.extend(self.schemas.problems());
        p
    }

    pub fn check(&self) -> anyhow::Result<()> {
        let problems = self.problems();
        if problems.is_empty() {
            return Ok(());
        }
        bail!("{} problem(s) in the configuration:\n  - {}", problems.len(), problems.join("\n  - "))
    }

    /// A configuration with defaults everywhere but the broker list.
    pub fn with_brokers(brokers: &str) -> Self {
        WeirConfig {
            kafka: KafkaConfig::new(brokers),
            redis: None,
            state: Default::default(),
            input: Default::default(),
            features: FeaturesConfig::default(),
            scorer: ScorerConfig::default(),
            validation: ValidationRules::default(),
            schemas: SchemasConfig::default(),
            metrics: MetricsConfig::default(),
            monitor: Default::default(),
            learner: None,
        }
    }
}

/// The learner configuration in effect: `[learner]`, or its defaults; promotion goes to
/// the registry the scorer serves from unless `learner.promotion.registry_dir` says
/// otherwise.
pub fn learner_config(config: &WeirConfig) -> LearnerConfig {
    let mut lc = config.learner.clone().unwrap_or_default();
    if lc.promotion.registry_dir.is_none() {
        lc.promotion.registry_dir = config.scorer.registry.clone();
    }
    lc
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../weir.example.toml");

    #[test]
    fn example_config_parses_and_round_trips() {
        let config = WeirConfig::from_toml(EXAMPLE, |_| None).unwrap();
        assert_eq!(config.kafka.brokers, "127.0.0.1:9092");
        let text = toml::to_string(&config).unwrap();
        let again = WeirConfig::from_toml(&text, |_| None).unwrap();
        assert_eq!(config, again);
    }

    #[test]
    fn the_input_topic_is_read_under_its_earlier_name_too() {
        let read = |key: &str| {
            let text = format!("[kafka]\nbrokers = \"x:1\"\n[kafka.topics]\n{key} = \"payments\"\n");
            WeirConfig::from_toml(&text, |_| None).unwrap().kafka.topics.input
        };
        assert_eq!((read("input"), read("transactions")), ("payments".to_string(), "payments".to_string()));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = WeirConfig::from_toml("[kafka]\nbrokers = \"x:1\"\nbrokerz = \"y\"\n", |_| None).unwrap_err();
        assert!(format!("{err:#}").contains("brokerz"), "{err:#}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            [kafka]
            brokers = ""
            auto_offset_reset = "middle"
            [kafka.batch]
            max_events = 0
            [kafka.consumer_properties]
            "enable.auto.offset.store" = "true"
            [features]
            allowed_lateness_secs = 10
            windows = [{ name = "1m", length_secs = 60, pane_secs = 7 }, { name = "1m", length_secs = 0, pane_secs = 1 }]
            [scorer]
            review_threshold = 0.9
            decline_threshold = 0.5
            [validation]
            max_amount = -1.0
            [redis]
            url = "http://nope"
            [metrics]
            listen = "nowhere"
        "#;
        let err = format!("{:#}", WeirConfig::from_toml(text, |_| None).unwrap_err());
        for needle in [
            "kafka.brokers is empty",
            "auto_offset_reset",
            "max_events",
            "enable.auto.offset.store",
            "does not divide",
            "used by another window",
            "must be > 0",
            "review_threshold 0.9 is above",
            "validation.max_amount",
            "redis.url",
            "metrics.listen",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
        assert!(err.starts_with("config") || err.contains("10 problem(s)") || err.contains("problem(s)"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = WeirConfig::from_toml(EXAMPLE, |k| match k {
            "WEIR_KAFKA_BROKERS" => Some("10.0.0.1:9093".into()),
            "WEIR_REDIS_URL" => Some("redis://127.0.0.1:7000".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.kafka.brokers, "10.0.0.1:9093");
        assert_eq!(config.redis.unwrap().url, "redis://127.0.0.1:7000");
    }

    #[test]
    fn redis_cluster_settings() {
        let text = "[kafka]\nbrokers = \"x:1\"\n[redis]\nurl = \"redis://10.0.0.1:7000\"\ncluster = true\ncluster_seeds = [\"redis://10.0.0.2:7000\"]\n";
        let config = WeirConfig::from_toml(text, |_| None).unwrap();
        let redis = config.redis.clone().unwrap();
        assert!(redis.cluster);
        assert_eq!(redis.seeds(), vec!["redis://10.0.0.1:7000".to_string(), "redis://10.0.0.2:7000".to_string()]);
        // The environment names the node and keeps cluster mode.
        let config = WeirConfig::from_toml(text, |k| (k == "WEIR_REDIS_URL").then(|| "redis://10.0.0.3:7000".to_string())).unwrap();
        assert_eq!(config.redis.unwrap().seeds()[0], "redis://10.0.0.3:7000");
        // Seeds without cluster mode, a unix socket for a cluster, a bad seed: all reported.
        let bad = RedisConfig { url: "unix:///tmp/r.sock".into(), cluster: true, cluster_seeds: vec!["http://x".into()], ..RedisConfig::single("") };
        let p = bad.problems(true);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("over TCP") && p[1].contains("\"http://x\"") && p[2].contains("learner"), "{p:?}");
        let p = RedisConfig { cluster: false, ..redis }.problems(false);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("redis.cluster is false"), "{p:?}");
    }
}
