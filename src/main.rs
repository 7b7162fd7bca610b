//! The `weir` command line: parsing and dispatch only; each command's body is in
//! `weir::commands`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use weir::commands;
use weir::config::WeirConfig;

/// mimalloc (v2: see the workspace manifest), not the system allocator: every event
/// allocates small short-lived buffers (decoded records, feature answers, encoded scores).
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
    Produce(commands::produce::ProduceArgs),
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
    Models(commands::models::ModelsCommand),
    /// End-to-end throughput and latency: on the embedded default, one run per batch size;
    /// with `--brokers` and `--redis`, the production path next to a raw consume of the same
    /// topic (and the Python peer with `--python`). A table on stdout and JSON in a file.
    Bench(commands::bench::BenchArgs),
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
                commands::demo::execute(transactions, rate, seed, poison_rate, drift_at).await
            }
            Command::CheckConfig { config } => commands::check_config::execute(&config),
            Command::Run { config } => commands::run::execute(WeirConfig::load(&config)?).await,
            Command::Monitor { config } => commands::monitor::execute(WeirConfig::load(&config)?).await,
            Command::Learn { config, status } => commands::learn::execute(WeirConfig::load(&config)?, status).await,
            Command::Produce(args) => commands::produce::execute(args).await,
            Command::Serve { config, listen } => commands::serve::execute(WeirConfig::load(&config)?, listen).await,
            Command::Models(command) => commands::models::run_command(command),
            Command::Bench(args) => commands::bench::execute(args).await,
        }
    })
}
