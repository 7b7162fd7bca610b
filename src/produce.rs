//! `weir produce`: seeded synthetic transactions (or, with `--kind interactions`,
//! recommendation-style interactions) and their delayed labels, to Kafka or to a JSON-lines
//! file (for training offline).

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::json;
use weir_ingest::config::TopicsConfig;
use weir_ingest::generator::interactions::{
    InteractionContent, InteractionMessage, InteractionsConfig, InteractionsGenerator,
};
use weir_ingest::generator::{Content, GeneratedMessage, Generator, GeneratorConfig};
use weir_ingest::produce::{produce_all, ProduceReport};
use weir_ingest::producer::EventProducer;
use weir_ingest::config::KafkaConfig;
use weir_schemas::wire::{subjects, Encoder, LocalSchemaRegistry, SchemaRegistry};

pub fn generator(config: GeneratorConfig) -> anyhow::Result<Generator> {
    let problems = config.problems();
    if !problems.is_empty() {
        anyhow::bail!("invalid generator settings:\n  - {}", problems.join("\n  - "));
    }
    let registry = LocalSchemaRegistry::embedded()?;
    Ok(Generator::new(
        config,
        Encoder::new(&registry, subjects::TRANSACTION)?,
        Encoder::for_schema(registry.latest(subjects::LABEL)?),
    ))
}

/// Sends the generator's output to Kafka.
pub async fn to_kafka(
    kafka: &KafkaConfig,
    topics: &TopicsConfig,
    config: GeneratorConfig,
    rate: Option<f64>,
) -> anyhow::Result<ProduceReport> {
    let producer = EventProducer::new(kafka)?;
    let generator = generator(config)?;
    let report = produce_all(&producer, topics, generator, rate, |r| {
        eprint!("\rproduced {} transactions, {} labels, {} poison", r.transactions, r.labels, r.poison);
    })
    .await?;
    eprintln!();
    Ok(report)
}

/// Writes the generator's output as JSON lines: one object per message with a `type`
/// (`transaction`, `label`, `poison`), the event's fields, and for transactions the
/// generator's ground truth `is_fraud` (what the label will say, if it arrives).
pub fn to_jsonl(path: &Path, config: GeneratorConfig) -> anyhow::Result<ProduceReport> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut report = ProduceReport::default();
    for message in generator(config)? {
        let GeneratedMessage { content, .. } = message?;
        let line = match content {
            Content::Transaction { tx, is_fraud } => {
                report.transactions += 1;
                let mut v = serde_json::to_value(&tx)?;
                v["type"] = json!("transaction");
                v["is_fraud"] = json!(is_fraud);
                v
            }
            Content::Label(label) => {
                report.labels += 1;
                let mut v = serde_json::to_value(&label)?;
                v["type"] = json!("label");
                v
            }
            Content::Poison(kind) => {
                report.poison += 1;
                json!({"type": "poison", "kind": format!("{kind:?}")})
            }
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(report)
}

/// What `weir produce` generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProduceKind {
    /// Card payments (`transaction.avsc`), fraud as labels.
    Transactions,
    /// Recommendation-style interactions (`interaction.avsc`), purchases as labels.
    Interactions,
}

pub fn interactions_generator(config: InteractionsConfig) -> anyhow::Result<InteractionsGenerator> {
    let problems = config.problems();
    if !problems.is_empty() {
        anyhow::bail!("invalid generator settings:\n  - {}", problems.join("\n  - "));
    }
    let registry = LocalSchemaRegistry::embedded()?;
    Ok(InteractionsGenerator::new(
        config,
        Encoder::new(&registry, subjects::INTERACTION)?,
        Encoder::for_schema(registry.latest(subjects::LABEL)?),
    ))
}

/// Sends the interactions generator's output to Kafka: interactions to the input topic
/// (`topics.transactions`), labels to `topics.labels`.
pub async fn interactions_to_kafka(
    kafka: &KafkaConfig,
    topics: &TopicsConfig,
    config: InteractionsConfig,
    rate: Option<f64>,
) -> anyhow::Result<ProduceReport> {
    let producer = EventProducer::new(kafka)?;
    let generator = interactions_generator(config)?;
    let report = produce_all(&producer, topics, generator, rate, |r| {
        eprint!("\rproduced {} interactions to {}, {} labels", r.transactions, topics.transactions, r.labels);
    })
    .await?;
    eprintln!();
    Ok(report)
}

/// Writes the interactions generator's output as JSON lines: one object per message with a
/// `type` (`interaction`, `label`), the event's fields (`user` and `item` nested as in the
/// schema, `action` its symbol, `dwell_ms` null when missing), and for interactions the
/// generator's ground truth `purchased` (what the label will say, if it arrives).
pub fn interactions_to_jsonl(path: &Path, config: InteractionsConfig) -> anyhow::Result<ProduceReport> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut report = ProduceReport::default();
    for message in interactions_generator(config)? {
        let InteractionMessage { content, .. } = message?;
        let line = match content {
            InteractionContent::Interaction { interaction, purchased } => {
                report.transactions += 1;
                let mut v = serde_json::to_value(&interaction)?;
                v["type"] = json!("interaction");
                v["purchased"] = json!(purchased);
                v
            }
            InteractionContent::Label(label) => {
                report.labels += 1;
                let mut v = serde_json::to_value(&label)?;
                v["type"] = json!("label");
                v
            }
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(report)
}
