//! The `weir` command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weir::config::WeirConfig;
use weir::demo::{run_demo, DemoOptions};
use weir::monitor_stage::{run_monitor, spawn_lag_watch, spawn_monitor, MonitorStats};
use weir::pipeline::{connect_redis_store, load_model, run_pipeline, PipelineStats};
use weir_ingest::config::KafkaConfig;
use weir_ingest::generator::GeneratorConfig;
use weir_scorer::live::{LiveModel, Target};

/// mimalloc (v2: see the workspace manifest), not the system allocator: every event
/// allocates small short-lived buffers (decoded records, feature answers, encoded scores).
/// On the feature bench, which uses it too, glibc's malloc took 5 670 instructions per
/// event in the window update, mimalloc v3 5 540 and v2 5 390, and mimalloc cut its wall
/// time by about a third.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "weir", version, about = "Real-time machine learning on event streams")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline on the embedded default (in-process Kafka mock cluster and
    /// feature store) with synthetic traffic, and print a report.
    Demo {
        /// Valid transactions to generate.
        #[arg(long, default_value_t = 20_000)]
        transactions: u64,
        /// Transactions per second to send; 0 for as fast as possible.
        #[arg(long, default_value_t = 10_000.0)]
        rate: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Fraction of poison messages mixed in.
        #[arg(long, default_value_t = 0.01)]
        poison_rate: f64,
        /// Inject drift from this transaction on (default: half way; 0: none).
        #[arg(long)]
        drift_at: Option<u64>,
    },
    /// Run the production pipeline against Kafka and Redis.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run only the monitor stage: scores and labels in, drift alerts out.
    Monitor {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run the online learner: join labels to the scores they judge, learn, evaluate
    /// champion and challenger, promote (see `[learner]`).
    Learn {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the learner's status from its checkpoint and exit.
        #[arg(long)]
        status: bool,
    },
    /// Check a configuration file and report every problem.
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Generate seeded synthetic transactions (or interactions) and delayed labels.
    Produce(ProduceArgs),
    /// Request-time scoring over HTTP: POST /score (a transaction as JSON), GET /health,
    /// GET /model. Features from Redis; the registry's champion when configured.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
        /// host:port to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// The model registry: list versions, promote one to champion, roll back.
    #[command(subcommand)]
    Models(weir::models_cmd::ModelsCommand),
    /// End-to-end throughput and latency on the embedded default, one run per batch size;
    /// a table on stdout and JSON in a file.
    Bench {
        #[arg(long, default_value_t = 50_000)]
        transactions: u64,
        /// Micro-batch sizes to compare, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "50,200,500,2000")]
        batch_sizes: Vec<usize>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Where to write the JSON.
        #[arg(long, default_value = "weir-bench.json")]
        json: PathBuf,
    },
}

#[derive(Args)]
struct ProduceArgs {
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
    kind: weir::produce::ProduceKind,
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

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| "warn,weir=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo { transactions, rate, seed, poison_rate, drift_at } => {
                let options = DemoOptions {
                    transactions,
                    rate: (rate > 0.0).then_some(rate),
                    seed,
                    poison_rate,
                    drift_at: match drift_at {
                        Some(0) => None,
                        Some(i) => Some(i),
                        None => Some(transactions / 2),
                    },
                    ..DemoOptions::default()
                };
                let report = run_demo(options).await?;
                print!("{}", report.render());
                Ok(())
            }
            Command::CheckConfig { config } => {
                WeirConfig::load(&config)?;
                println!("{}: ok", config.display());
                Ok(())
            }
            Command::Run { config } => run(WeirConfig::load(&config)?).await,
            Command::Monitor { config } => monitor(WeirConfig::load(&config)?).await,
            Command::Learn { config, status } => learn(WeirConfig::load(&config)?, status).await,
            Command::Produce(args) => produce(args).await,
            Command::Serve { config, listen } => serve(WeirConfig::load(&config)?, listen).await,
            Command::Models(command) => weir::models_cmd::run_command(command),
            Command::Bench { transactions, batch_sizes, seed, json } => {
                let rows = weir::bench::run_bench(transactions, &batch_sizes, seed).await?;
                print!("{}", weir::bench::render(&rows));
                std::fs::write(&json, serde_json::to_string_pretty(&rows)?)
                    .with_context(|| format!("writing {}", json.display()))?;
                eprintln!("wrote {}", json.display());
                Ok(())
            }
        }
    })
}

fn serve_metrics(config: &WeirConfig) -> anyhow::Result<()> {
    if let Some(listen) = &config.metrics.listen {
        // Checked by WeirConfig::problems.
        let addr: std::net::SocketAddr = listen.parse().context("metrics.listen")?;
        weir_monitor::metrics::install_prometheus(addr)?;
        info!(%addr, "serving prometheus metrics at /metrics");
    }
    Ok(())
}

fn shutdown_on_ctrl_c() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        info!("shutting down: finishing the batch in flight, then committing offsets");
        token.cancel();
    });
    shutdown
}

async fn monitor(config: WeirConfig) -> anyhow::Result<()> {
    serve_metrics(&config)?;
    let shutdown = shutdown_on_ctrl_c();
    let lag = spawn_lag_watch(&config, shutdown.clone());
    let stats = Arc::new(MonitorStats::default());
    let result = run_monitor(&config, stats.clone(), shutdown.clone()).await;
    shutdown.cancel();
    let _ = lag.await;
    let loop_stats = result?;
    info!(batches = loop_stats.batches, records = loop_stats.records, alerts = PipelineStats::get(&stats.alerts_sent), "monitor stopped");
    Ok(())
}

async fn run(config: WeirConfig) -> anyhow::Result<()> {
    let store = connect_redis_store(&config).await?;
    let model = Arc::new(LiveModel::new(Arc::new(load_model(&config)?)));
    info!(model = %model.current().version(), "model loaded");
    serve_metrics(&config)?;
    let shutdown = shutdown_on_ctrl_c();
    if config.scorer.registry.is_some() {
        let watcher_stats = Arc::new(weir::models_cmd::WatcherStats::default());
        weir::models_cmd::spawn_registry_watcher(&config, Target::Champion(model.clone()), watcher_stats, shutdown.clone())?;
        info!(every_ms = config.scorer.registry_poll_ms, "watching the registry's champion");
    }
    // The monitor reads the scores with its own group; if it fails, scoring goes on.
    let monitor = config
        .monitor
        .enabled
        .then(|| spawn_monitor(config.clone(), Arc::new(MonitorStats::default()), shutdown.clone()));
    // With a [learner] section the learner runs next to the pipeline, in its own consumer
    // group; if it fails, scoring goes on.
    let learner = config.learner.is_some().then(|| weir::learn::spawn_learner(config.clone(), shutdown.clone()));
    let lag = spawn_lag_watch(&config, shutdown.clone());
    let stats = Arc::new(PipelineStats::default());
    let result = run_pipeline(&config, Arc::new(store), model, stats.clone(), shutdown.clone()).await;
    shutdown.cancel();
    let _ = lag.await;
    if let Some(task) = monitor {
        match task.await {
            Ok(Ok(s)) => info!(records = s.records, "monitor stopped"),
            Ok(Err(e)) => warn!(error = %format!("{e:#}"), "monitor failed (scoring was not affected)"),
            Err(e) => warn!(error = %e, "monitor task"),
        }
    }
    if let Some(task) = learner {
        match task.await {
            Ok(Ok((s, _))) => info!(records = s.records, "learner stopped"),
            Ok(Err(e)) => warn!(error = %format!("{e:#}"), "learner failed (scoring was not affected)"),
            Err(e) => warn!(error = %e, "learner task"),
        }
    }
    let loop_stats = result?;
    let p = stats.latency.percentiles();
    info!(
        batches = loop_stats.batches,
        records = loop_stats.records,
        dead_lettered = loop_stats.dead_lettered,
        p50_us = p.p50_us,
        p99_us = p.p99_us,
        "stopped"
    );
    Ok(())
}

async fn serve(config: WeirConfig, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let store = connect_redis_store(&config).await?;
    let model = Arc::new(LiveModel::new(Arc::new(load_model(&config)?)));
    serve_metrics(&config)?;
    let shutdown = shutdown_on_ctrl_c();
    if config.scorer.registry.is_some() {
        let watcher_stats = Arc::new(weir::models_cmd::WatcherStats::default());
        weir::models_cmd::spawn_registry_watcher(&config, Target::Champion(model.clone()), watcher_stats, shutdown.clone())?;
    }
    weir::serve::bind_and_serve(&config, listen, Arc::new(store), model, shutdown).await
}

async fn learn(config: WeirConfig, status: bool) -> anyhow::Result<()> {
    if status {
        print!("{}", weir::learn::status(&config).await?);
        return Ok(());
    }
    serve_metrics(&config)?;
    let shutdown = shutdown_on_ctrl_c();
    let (stats, _) = weir::learn::run_learner(&config, shutdown).await?;
    info!(batches = stats.batches, records = stats.records, dead_lettered = stats.dead_lettered, "learner stopped");
    Ok(())
}

async fn produce_interactions(args: ProduceArgs, start_ms: i64) -> anyhow::Result<()> {
    let mut g = weir_ingest::generator::interactions::InteractionsConfig::new(args.seed, start_ms, args.transactions);
    g.users = args.users;
    g.items = args.items;
    g.event_rate = args.event_rate.unwrap_or(g.event_rate);
    g.label_delay_secs_mean = args.label_delay_secs.unwrap_or(g.label_delay_secs_mean);
    eprintln!("interactions generator: seed {} start_ms {start_ms}", args.seed);
    let report = if let Some(path) = args.jsonl {
        weir::produce::interactions_to_jsonl(&path, g)?
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
        weir::produce::interactions_to_kafka(&kafka, &topics, g, (args.rate > 0.0).then_some(args.rate)).await?
    };
    println!("{} interactions, {} labels", report.transactions, report.labels);
    Ok(())
}

async fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let start_ms = args.start_ms.unwrap_or_else(|| weir_schemas::now_ms() - 3_600_000);
    if args.kind == weir::produce::ProduceKind::Interactions {
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
        weir::produce::to_jsonl(&path, g)?
    } else {
        let kafka = match (args.config, args.brokers) {
            (Some(path), _) => WeirConfig::load(&path)?.kafka,
            (None, Some(brokers)) => KafkaConfig::new(brokers),
            (None, None) => anyhow::bail!("give --config, --brokers or --jsonl"),
        };
        weir::produce::to_kafka(&kafka, &kafka.topics, g, (args.rate > 0.0).then_some(args.rate)).await?
    };
    println!(
        "{} transactions, {} labels, {} poison",
        report.transactions, report.labels, report.poison
    );
    Ok(())
}
