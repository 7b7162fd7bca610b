//! `weir produce`: seeded synthetic transactions (or, with `--kind interactions`,
//! recommendation-style interactions) and their delayed labels, to Kafka or to a JSON-lines
//! file (for training offline).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;
use weir_ingest::config::{KafkaConfig, TopicsConfig};
use weir_ingest::generator::interactions::{
    InteractionContent, InteractionMessage, InteractionsConfig, InteractionsGenerator,
};
use weir_ingest::generator::{Content, GeneratedMessage, Generator, GeneratorConfig};
use weir_ingest::produce::{produce_all, ProduceReport};
use weir_ingest::producer::EventProducer;
use weir_schemas::wire::{subjects, Encoder, LocalSchemaRegistry, SchemaRegistry};

use crate::config::WeirConfig;

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

/// `weir produce`'s command line.
#[derive(clap::Args)]
pub struct ProduceArgs {
    /// Take brokers and topic names from this config file.
    #[arg(long, short, conflicts_with = "brokers")]
    config: Option<PathBuf>,
    /// Bootstrap servers (when no config file is given).
    #[arg(long)]
    brokers: Option<String>,
    /// Write JSON lines to this file instead of producing to Kafka.
    #[arg(long, conflicts_with_all = ["config", "brokers"])]
    jsonl: Option<PathBuf>,
    /// What to generate: `transactions` (card payments, fraud labels) or `interactions`
    /// (recommendation events of `interaction.avsc`, purchase labels). Interactions go to
    /// the config's input topic (`kafka.topics.transactions`; `interactions` with
    /// `--brokers`).
    #[arg(long, value_enum, default_value = "transactions")]
    kind: ProduceKind,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Event time of the first transaction, ms since the epoch. Default: one hour ago.
    /// Same seed and start → the same bytes.
    #[arg(long)]
    start_ms: Option<i64>,
    /// Valid input events to generate (transactions or interactions).
    #[arg(long, visible_alias = "events", default_value_t = 10_000)]
    transactions: u64,
    /// Transactions per second to send; 0 for as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long, default_value_t = 2_000)]
    cards: u32,
    #[arg(long, default_value_t = 300)]
    merchants: u32,
    /// (interactions) Users.
    #[arg(long, default_value_t = 1_000)]
    users: u32,
    /// (interactions) Items.
    #[arg(long, default_value_t = 1_500)]
    items: u32,
    /// Legitimate transactions (interactions) per second of event time. Default 50 (1).
    #[arg(long)]
    event_rate: Option<f64>,
    /// Mean label delay, seconds of event time. Default 60 (600).
    #[arg(long)]
    label_delay_secs: Option<f64>,
    #[arg(long, default_value_t = 0.0)]
    poison_rate: f64,
    /// Shift the amount distribution from this transaction index on.
    #[arg(long)]
    drift_at: Option<u64>,
    /// Move the fraud pattern (other risky merchants, slow ATM draining instead of quick
    /// card-not-present bursts) from this transaction index on.
    #[arg(long)]
    concept_change_at: Option<u64>,
}

async fn produce_interactions(args: ProduceArgs, start_ms: i64) -> anyhow::Result<()> {
    let mut g = weir_ingest::generator::interactions::InteractionsConfig::new(args.seed, start_ms, args.transactions);
    g.users = args.users;
    g.items = args.items;
    g.event_rate = args.event_rate.unwrap_or(g.event_rate);
    g.label_delay_secs_mean = args.label_delay_secs.unwrap_or(g.label_delay_secs_mean);
    eprintln!("interactions generator: seed {} start_ms {start_ms}", args.seed);
    let report = if let Some(path) = args.jsonl {
        interactions_to_jsonl(&path, g)?
    } else {
        let (kafka, topics) = match (args.config, args.brokers) {
            (Some(path), _) => {
                let kafka = WeirConfig::load(&path)?.kafka;
                let topics = kafka.topics.clone();
                (kafka, topics)
            }
            (None, Some(brokers)) => {
                let kafka = KafkaConfig::new(brokers);
                let topics = weir_ingest::config::TopicsConfig { transactions: "interactions".into(), ..kafka.topics.clone() };
                (kafka, topics)
            }
            (None, None) => anyhow::bail!("give --config, --brokers or --jsonl"),
        };
        interactions_to_kafka(&kafka, &topics, g, (args.rate > 0.0).then_some(args.rate)).await?
    };
    println!("{} interactions, {} labels", report.transactions, report.labels);
    Ok(())
}

/// `weir produce`.
pub async fn execute(args: ProduceArgs) -> anyhow::Result<()> {
    let start_ms = args.start_ms.unwrap_or_else(|| weir_schemas::now_ms() - 3_600_000);
    if args.kind == ProduceKind::Interactions {
        return produce_interactions(args, start_ms).await;
    }
    let mut g = GeneratorConfig::new(args.seed, start_ms, args.transactions);
    g.cards = args.cards;
    g.merchants = args.merchants;
    g.event_rate = args.event_rate.unwrap_or(g.event_rate);
    g.label_delay_secs_mean = args.label_delay_secs.unwrap_or(g.label_delay_secs_mean);
    g.poison_rate = args.poison_rate;
    g.drift_at = args.drift_at;
    g.concept_change_at = args.concept_change_at;
    eprintln!("generator: seed {} start_ms {start_ms}", args.seed);
    let report = if let Some(path) = args.jsonl {
        to_jsonl(&path, g)?
    } else {
        let kafka = match (args.config, args.brokers) {
            (Some(path), _) => WeirConfig::load(&path)?.kafka,
            (None, Some(brokers)) => KafkaConfig::new(brokers),
            (None, None) => anyhow::bail!("give --config, --brokers or --jsonl"),
        };
        to_kafka(&kafka, &kafka.topics, g, (args.rate > 0.0).then_some(args.rate)).await?
    };
    println!(
        "{} transactions, {} labels, {} poison",
        report.transactions, report.labels, report.poison
    );
    Ok(())
}
