//! What every pipeline test sets up the same way: a configuration of its own on the
//! harness's services, its topics, generated input, and a reader for scores.

use std::sync::Arc;

use weir::config::{RedisConfig, WeirConfig};
use weir_ingest::generator::{Content, GeneratedMessage, GeneratorConfig};
use weir_schemas::events::Transaction;
use weir_schemas::score_versions::ScoreDecoder;
use weir_schemas::wire::{LocalSchemaRegistry, SchemaRegistry};

use crate::{unique, Services};

/// Defaults plus the harness's broker and Redis, and a random group, topics and Redis key
/// prefix named after `name`, so tests never see each other's data.
pub fn pipeline_config(services: &Services, name: &str) -> WeirConfig {
    let mut config = WeirConfig::with_brokers(&services.brokers);
    config.kafka.group_id = unique(&format!("weir-{name}"));
    config.kafka.topics.input = unique("transactions");
    config.kafka.topics.labels = unique("labels");
    config.kafka.topics.scores = unique("scores");
    config.kafka.topics.dead_letter = unique("dlq");
    config.features.key_prefix = unique(&format!("weir-{name}"));
    config.redis = Some(RedisConfig::single(services.redis_url.clone()));
    config
}

/// `kafka` with producers that write every record as a batch of its own, for the topics a
/// test consumes again from a committed offset (a restart, a takeover). Tansu 0.6.0
/// serves a fetch from an offset inside a stored record batch with the batches *after*
/// it, so a consumer resuming mid-batch never gets the rest of that batch (Kafka returns
/// the whole batch and the client skips what it already had); see point 3 of the comment
/// in tests/tests/crash_restart.rs. Only the producers change; weir's consumers do not.
pub fn one_record_per_batch(kafka: &weir_ingest::config::KafkaConfig) -> weir_ingest::config::KafkaConfig {
    let mut kafka = kafka.clone();
    kafka.producer_properties.insert("batch.num.messages".into(), "1".into());
    kafka
}

/// Creates the configuration's four topics with `partitions` partitions each.
pub async fn create_pipeline_topics(services: &Services, config: &WeirConfig, partitions: i32) -> anyhow::Result<()> {
    let t = &config.kafka.topics;
    services.create_topics(&[&t.input, &t.labels, &t.scores, &t.dead_letter], partitions).await
}

/// The generator's messages, and the valid transactions among them in stream order.
pub fn generate(config: GeneratorConfig) -> anyhow::Result<(Vec<GeneratedMessage>, Vec<Transaction>)> {
    let messages: Vec<GeneratedMessage> = weir::commands::produce::generator(config)?.collect::<Result<_, _>>()?;
    let valid = messages
        .iter()
        .filter_map(|m| match &m.content {
            Content::Transaction { tx, .. } => Some(tx.clone()),
            _ => None,
        })
        .collect();
    Ok((messages, valid))
}

/// Decodes `Score` values as weir writes them.
pub fn score_decoder() -> anyhow::Result<ScoreDecoder> {
    let registry: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded()?);
    Ok(ScoreDecoder::new(registry)?)
}
