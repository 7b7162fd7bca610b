//! `weir produce`: seeded synthetic transactions (or, with `--kind interactions`,
//! recommendation-style interactions) and their delayed labels, to Kafka or to a JSON-lines
//! file (for training offline). Both kinds go through one path: a [`Workload`] says what
//! differs (generator, schema subject, JSON line, wording).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{json, Value};
use weir_ingest::config::{KafkaConfig, TopicsConfig};
use weir_ingest::generator::interactions::{
    InteractionContent, InteractionMessage, InteractionsConfig, InteractionsGenerator,
};
use weir_ingest::generator::{Content, GeneratedMessage, Generator, GeneratorConfig};
use weir_ingest::load_producer::{produce_all, ProduceReport, Produced};
use weir_ingest::producer::EventProducer;
use weir_schemas::wire::{subjects, Encoder, LocalSchemaRegistry, SchemaRegistry};

use crate::config::WeirConfig;

/// What `weir produce` generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProduceKind {
    /// Card payments (`transaction.avsc`), fraud as labels.
    Transactions,
    /// Recommendation-style interactions (`interaction.avsc`), purchases as labels.
    Interactions,
}

/// A kind of synthetic traffic: its generator settings, and what differs between kinds
/// when they are sent or written.
pub trait Workload: Sized {
    type Message: Produced;
    type Generator: Iterator<Item = weir_ingest::Result<Self::Message>>;
    /// Schema subject of the input events.
    const SUBJECT: &'static str;
    /// Input topic with `--brokers` (no config file); `None`: the default input topic.
    const BROKERS_INPUT_TOPIC: Option<&'static str>;
    fn problems(&self) -> Vec<String>;
    fn generator(self, events: Encoder, labels: Encoder) -> Self::Generator;
    /// The message as one JSON line: a `type`, the event's fields and the generator's
    /// ground truth for input events.
    fn json_line(message: Self::Message) -> serde_json::Result<Value>;
    /// The running count, as the progress line shows it.
    fn progress(report: &ProduceReport, topics: &TopicsConfig) -> String;
    /// The final count.
    fn summary(report: &ProduceReport) -> String;
}

impl Workload for GeneratorConfig {
    type Message = GeneratedMessage;
    type Generator = Generator;
    const SUBJECT: &'static str = subjects::TRANSACTION;
    const BROKERS_INPUT_TOPIC: Option<&'static str> = None;
    fn problems(&self) -> Vec<String> {
        GeneratorConfig::problems(self)
    }
    fn generator(self, events: Encoder, labels: Encoder) -> Generator {
        Generator::new(self, events, labels)
    }
    /// `type` `transaction`, `label` or `poison`; `is_fraud` on transactions.
    fn json_line(message: GeneratedMessage) -> serde_json::Result<Value> {
        Ok(match message.content {
            Content::Transaction { tx, is_fraud } => {
                let mut v = serde_json::to_value(&tx)?;
                v["type"] = json!("transaction");
                v["is_fraud"] = json!(is_fraud);
                v
            }
            Content::Label(label) => {
                let mut v = serde_json::to_value(&label)?;
                v["type"] = json!("label");
                v
            }
            Content::Poison(kind) => json!({"type": "poison", "kind": format!("{kind:?}")}),
        })
    }
    fn progress(r: &ProduceReport, _: &TopicsConfig) -> String {
        format!("produced {} transactions, {} labels, {} poison", r.transactions, r.labels, r.poison)
    }
    fn summary(r: &ProduceReport) -> String {
        format!("{} transactions, {} labels, {} poison", r.transactions, r.labels, r.poison)
    }
}

impl Workload for InteractionsConfig {
    type Message = InteractionMessage;
    type Generator = InteractionsGenerator;
    const SUBJECT: &'static str = subjects::INTERACTION;
    const BROKERS_INPUT_TOPIC: Option<&'static str> = Some("interactions");
    fn problems(&self) -> Vec<String> {
        InteractionsConfig::problems(self)
    }
    fn generator(self, events: Encoder, labels: Encoder) -> InteractionsGenerator {
        InteractionsGenerator::new(self, events, labels)
    }
    /// `type` `interaction` or `label`; `user` and `item` nested as in the schema, `action`
    /// its symbol, `dwell_ms` null when missing; `purchased` on interactions.
    fn json_line(message: InteractionMessage) -> serde_json::Result<Value> {
        Ok(match message.content {
            InteractionContent::Interaction { interaction, purchased } => {
                let mut v = serde_json::to_value(&interaction)?;
                v["type"] = json!("interaction");
                v["purchased"] = json!(purchased);
                v
            }
            InteractionContent::Label(label) => {
                let mut v = serde_json::to_value(&label)?;
                v["type"] = json!("label");
                v
            }
        })
    }
    fn progress(r: &ProduceReport, topics: &TopicsConfig) -> String {
        format!("produced {} interactions to {}, {} labels", r.transactions, topics.input, r.labels)
    }
    fn summary(r: &ProduceReport) -> String {
        format!("{} interactions, {} labels", r.transactions, r.labels)
    }
}

/// The generator of `workload`, its settings checked, encoding with weir's own schemas.
pub fn build_generator<W: Workload>(workload: W) -> anyhow::Result<W::Generator> {
    build_generator_with(workload, None)
}

/// [`build_generator`] with the encoders of input events and labels given (`None`: weir's
/// compiled-in ids).
pub fn build_generator_with<W: Workload>(workload: W, encoders: Option<(Encoder, Encoder)>) -> anyhow::Result<W::Generator> {
    let problems = workload.problems();
    if !problems.is_empty() {
        anyhow::bail!("invalid generator settings:\n  - {}", problems.join("\n  - "));
    }
    let (events, labels) = match encoders {
        Some(e) => e,
        None => {
            let registry = LocalSchemaRegistry::embedded()?;
            (Encoder::new(&registry, W::SUBJECT)?, Encoder::for_schema(registry.latest(subjects::LABEL)?))
        }
    };
    Ok(workload.generator(events, labels))
}

/// With `schemas.registry_url`: the encoders of `weir produce`, framing with the
/// registry's ids. weir's own schema of the workload's events is registered under the
/// input subject (as a producer would register its own), and the label schema under the
/// labels subject, as `weir run` registers it. Blocking (registry calls with retries).
pub fn registry_encoders<W: Workload>(config: &WeirConfig) -> anyhow::Result<(Encoder, Encoder)> {
    let own = LocalSchemaRegistry::embedded()?;
    let mut plan = crate::wiring::subject_plan(config)?;
    let inputs = std::mem::take(&mut plan.inputs);
    plan.outputs.retain(|o| o.subject == subjects::LABEL);
    for input in inputs {
        plan.outputs.push(weir_schema_registry::Output {
            subject: W::SUBJECT.to_string(),
            registry_subjects: vec![input.registry_subject],
            schema: own.latest(W::SUBJECT)?,
        });
    }
    let url = config.schemas.registry_url.clone().unwrap_or_default();
    let registry = weir_schema_registry::ConfluentRegistry::connect(crate::wiring::client_settings(config)?, &plan)
        .with_context(|| format!("registering weir produce's schemas with {url}"))?;
    Ok((Encoder::new(&registry, W::SUBJECT)?, Encoder::new(&registry, subjects::LABEL)?))
}

/// The transactions generator.
pub fn generator(config: GeneratorConfig) -> anyhow::Result<Generator> {
    build_generator(config)
}

/// The interactions generator.
pub fn interactions_generator(config: InteractionsConfig) -> anyhow::Result<InteractionsGenerator> {
    build_generator(config)
}

/// Sends the generator's output to Kafka: input events to `topics.input`, labels
/// to `topics.labels`; framed by `encoders` (from [`registry_encoders`]) or weir's
/// compiled-in ids.
pub async fn to_kafka<W: Workload>(
    kafka: &KafkaConfig,
    topics: &TopicsConfig,
    workload: W,
    rate: Option<f64>,
    encoders: Option<(Encoder, Encoder)>,
) -> anyhow::Result<ProduceReport> {
    let producer = EventProducer::new(kafka)?;
    let generator = build_generator_with(workload, encoders)?;
    let report = produce_all(&producer, topics, generator, rate, |r| eprint!("\r{}", W::progress(r, topics))).await?;
    eprintln!();
    Ok(report)
}

/// Writes the generator's output as JSON lines ([`Workload::json_line`]).
pub fn to_jsonl<W: Workload>(path: &Path, workload: W) -> anyhow::Result<ProduceReport> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut report = ProduceReport::default();
    for message in build_generator(workload)? {
        let message = message?;
        message.count(&mut report);
        serde_json::to_writer(&mut out, &W::json_line(message)?)?;
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
    /// the config's input topic (`kafka.topics.input`; `interactions` with
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

/// `weir produce`.
pub async fn execute(args: ProduceArgs) -> anyhow::Result<()> {
    let start_ms = args.start_ms.unwrap_or_else(|| weir_schemas::now_ms() - 3_600_000);
    match args.kind {
        ProduceKind::Transactions => {
            let mut g = GeneratorConfig::new(args.seed, start_ms, args.transactions);
            g.cards = args.cards;
            g.merchants = args.merchants;
            g.event_rate = args.event_rate.unwrap_or(g.event_rate);
            g.label_delay_secs_mean = args.label_delay_secs.unwrap_or(g.label_delay_secs_mean);
            g.poison_rate = args.poison_rate;
            g.drift_at = args.drift_at;
            g.concept_change_at = args.concept_change_at;
            eprintln!("generator: seed {} start_ms {start_ms}", args.seed);
            send(args, g).await
        }
        ProduceKind::Interactions => {
            let mut g = InteractionsConfig::new(args.seed, start_ms, args.transactions);
            g.users = args.users;
            g.items = args.items;
            g.event_rate = args.event_rate.unwrap_or(g.event_rate);
            g.label_delay_secs_mean = args.label_delay_secs.unwrap_or(g.label_delay_secs_mean);
            eprintln!("interactions generator: seed {} start_ms {start_ms}", args.seed);
            send(args, g).await
        }
    }
}

/// Writes `workload` to `--jsonl`, or sends it to the brokers of `--config` or
/// `--brokers`, and prints the counts.
async fn send<W: Workload>(args: ProduceArgs, workload: W) -> anyhow::Result<()> {
    let report = if let Some(path) = args.jsonl {
        to_jsonl(&path, workload)?
    } else {
        let mut encoders = None;
        let (kafka, topics) = match (args.config, args.brokers) {
            (Some(path), _) => {
                let config = WeirConfig::load(&path)?;
                if config.schemas.registry_url.is_some() {
                    let owned = config.clone();
                    encoders = Some(tokio::task::spawn_blocking(move || registry_encoders::<W>(&owned)).await??);
                }
                let kafka = config.kafka;
                let topics = kafka.topics.clone();
                (kafka, topics)
            }
            (None, Some(brokers)) => {
                let kafka = KafkaConfig::new(brokers);
                let mut topics = kafka.topics.clone();
                if let Some(input) = W::BROKERS_INPUT_TOPIC {
                    topics.input = input.into();
                }
                (kafka, topics)
            }
            (None, None) => anyhow::bail!("give --config, --brokers or --jsonl"),
        };
        to_kafka(&kafka, &topics, workload, (args.rate > 0.0).then_some(args.rate), encoders).await?
    };
    println!("{}", W::summary(&report));
    Ok(())
}
