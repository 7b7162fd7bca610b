//! `weir.toml`: the whole configuration, layered defaults → file → environment, checked
//! as a whole so that every problem is reported at once.
//!
//! Environment overrides (handy in containers and tests):
//! `WEIR_KAFKA_BROKERS`, `WEIR_KAFKA_GROUP_ID`, `WEIR_REDIS_URL`, `WEIR_MODEL_DIR`.

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
    /// The online feature store. Required for `weir run`.
    pub redis: Option<RedisConfig>,
    /// Windows and feature store keys.
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
    pub monitor: crate::monitor_stage::MonitorStageConfig,
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
    /// `redis://host:port[/db]`.
    pub url: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemasConfig {
    /// An id → `.avsc` map file like `schemas/avro/registry.json`. Default: weir's own
    /// schemas, compiled in.
    #[serde(default)]
    pub registry_map: Option<PathBuf>,
}

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
            self.redis = Some(RedisConfig { url: v });
        }
        if let Some(v) = env("WEIR_MODEL_DIR") {
            self.scorer.model_dir = Some(PathBuf::from(v));
        }
    }

    /// Every problem in every section, in one error.
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.kafka.problems();
        p.extend(self.features.problems());
        p.extend(self.scorer.problems());
        p.extend(self.validation.problems());
        p.extend(self.monitor.problems());
        if let Some(redis) = &self.redis {
            if !(redis.url.starts_with("redis://") || redis.url.starts_with("rediss://") || redis.url.starts_with("unix://")) {
                p.push(format!("redis.url {:?} must start with redis://, rediss:// or unix://", redis.url));
            }
        }
        if let Some(listen) = &self.metrics.listen {
            if listen.parse::<std::net::SocketAddr>().is_err() {
                p.push(format!("metrics.listen {listen:?} is not a host:port socket address"));
            }
        }
        if self.learner.is_some() {
            p.extend(crate::learn::learner_config(self).problems());
        }
        if let Some(map) = &self.schemas.registry_map {
            if !map.is_file() {
                p.push(format!("schemas.registry_map {} does not exist", map.display()));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../weir.example.toml");

    #[test]
    fn example_config_parses_and_round_trips() {
        let config = WeirConfig::from_toml(EXAMPLE, |_| None).unwrap();
        assert_eq!(config.kafka.brokers, "127.0.0.1:9092");
        let text = toml::to_string(&config).unwrap();
        let again = WeirConfig::from_toml(&text, |_| None).unwrap();
        assert_eq!(config, again);
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
}
