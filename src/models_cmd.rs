//! The model lifecycle around the stream: the registry watcher that `weir run` starts
//! when `scorer.registry` is set, and the `weir models list | promote | rollback`
//! commands.
//!
//! Rollback procedure (also in the README): `weir models rollback --config weir.toml`
//! points `champion` back at the version that served before the last promotion; every
//! running `weir` picks it up within `scorer.registry_poll_ms` (it is validated again
//! first, like any version), and the history log records who moved it and when.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weir_monitor::metrics as m;
use weir_schemas::registry::ModelRegistry;
use weir_scorer::live::{load_version, PollOutcome, Target, Watcher};

use crate::config::WeirConfig;
use crate::pipeline::feature_names;

/// Counter of versions swapped into service, by pointer.
pub const MODEL_SWAPS: &str = "weir_model_swaps_total";
/// Counter of versions refused at validation, by pointer and reason
/// (`checksum`, `feature_mismatch`, `unsupported_op`, `canary`, `load`, `io`, `metadata`).
pub const MODEL_REFUSED: &str = "weir_model_refused_total";

/// Counts of what a watcher did, for tests and the demo.
#[derive(Debug, Default)]
pub struct WatcherStats {
    pub swaps: std::sync::atomic::AtomicU64,
    pub refused: std::sync::atomic::AtomicU64,
    /// The last refusal's message.
    pub last_refusal: std::sync::Mutex<Option<String>>,
}

/// Polls the registry pointer every `scorer.registry_poll_ms` on the blocking pool (a
/// load plans tract models: never on the async threads) until `shutdown`.
pub fn spawn_registry_watcher(
    config: &WeirConfig,
    target: Target,
    stats: Arc<WatcherStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let root = config.scorer.registry.clone().ok_or_else(|| anyhow::anyhow!("scorer.registry is not set"))?;
    let pointer = target.pointer();
    let watcher = Watcher::new(
        root,
        config.scorer.model_name.clone(),
        feature_names(config),
        config.scorer.plan_batch_sizes.clone(),
        target,
    );
    let period = Duration::from_millis(config.scorer.registry_poll_ms);
    let which = pointer.file_name();
    Ok(tokio::spawn(async move {
        let mut watcher = Some(watcher);
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let Some(mut w) = watcher.take() else { return };
            let Ok((w, outcome)) = tokio::task::spawn_blocking(move || {
                let outcome = w.poll();
                (w, outcome)
            })
            .await
            else {
                warn!(pointer = which, "registry watcher task panicked; the current model keeps serving");
                return;
            };
            match outcome {
                PollOutcome::Swapped { from, to } => {
                    info!(pointer = which, %from, %to, "model version swapped in");
                    metrics::counter!(MODEL_SWAPS, "pointer" => which).increment(1);
                    if let Target::Champion(live) = w.target() {
                        let name = live.current().metadata().name.clone();
                        metrics::gauge!(m::MODEL_INFO, "model" => name.clone(), "version" => from).set(0.0);
                        metrics::gauge!(m::MODEL_INFO, "model" => name, "version" => to).set(1.0);
                    }
                    stats.swaps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                PollOutcome::Refused { version, error } => {
                    let serving = w.target().version().unwrap_or_else(|| "(none)".into());
                    warn!(pointer = which, %version, reason = error.kind(), %serving, "model version refused: {error}");
                    metrics::counter!(MODEL_REFUSED, "pointer" => which, "reason" => error.kind()).increment(1);
                    stats.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Ok(mut last) = stats.last_refusal.lock() {
                        *last = Some(error.to_string());
                    }
                }
                PollOutcome::Cleared { from } => info!(pointer = which, %from, "challenger removed"),
                PollOutcome::Unchanged | PollOutcome::NoPointer => {}
            }
            watcher = Some(w);
        }
    }))
}

/// `weir models …`.
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// The versions in the registry, the champion and challenger marked.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate VERSION against this configuration's features (checksum, feature list,
    /// ops, canary rows) and make it the champion; running scorers swap it in at their
    /// next poll.
    Promote {
        #[arg(long, short)]
        config: PathBuf,
        version: String,
    },
    /// Point the champion back at the version that served before the last promotion.
    Rollback {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The promotion and rollback log, oldest first.
    History {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn registry_of(config: &WeirConfig) -> anyhow::Result<(ModelRegistry, String)> {
    let root = config.scorer.registry.as_ref().context("scorer.registry is not set in the configuration")?;
    Ok((ModelRegistry::open(root)?, config.scorer.model_name.clone()))
}

/// Who is changing the champion, for the history log: `cli:$USER`.
fn actor() -> String {
    format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

/// Runs one `weir models` command, printing to stdout.
pub fn run_command(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::List { config } => {
            let config = WeirConfig::load(&config)?;
            let (registry, model) = registry_of(&config)?;
            let champion = registry.champion(&model)?;
            let challenger = registry.challenger(&model)?;
            println!("{:<2} {:<20} {:<20} {:<26} {:>10}", "", "version", "kind", "created", "auc");
            for meta in registry.versions(&model)?.into_iter().map(|v| v.metadata) {
                let mark = if champion.as_deref() == Some(meta.version.as_str()) {
                    "*"
                } else if challenger.as_deref() == Some(meta.version.as_str()) {
                    "~"
                } else {
                    ""
                };
                let auc = meta.metrics.get("holdout_auc").map(|a| format!("{a:.4}")).unwrap_or_default();
                println!("{mark:<2} {:<20} {:<20} {:<26} {auc:>10}", meta.version, meta.kind, meta.created_at);
            }
            println!("(* champion, ~ challenger)");
            Ok(())
        }
        ModelsCommand::Promote { config, version } => {
            let config = WeirConfig::load(&config)?;
            let (registry, model) = registry_of(&config)?;
            let root = config.scorer.registry.as_deref().context("scorer.registry")?;
            // The same validation the scorers will run: refuse here rather than have
            // every scorer refuse it.
            load_version(root, &model, &version, &feature_names(&config), &config.scorer.plan_batch_sizes)
                .with_context(|| format!("{model}/{version} is not fit to serve; not promoted"))?;
            let before = registry.champion(&model)?;
            registry.promote(&model, &version, "weir models promote", &actor())?;
            println!("{model}: champion {} -> {version}", before.as_deref().unwrap_or("(none)"));
            Ok(())
        }
        ModelsCommand::Rollback { config } => {
            let config = WeirConfig::load(&config)?;
            let (registry, model) = registry_of(&config)?;
            let before = registry.champion(&model)?;
            let entry = registry.rollback(&model, "weir models rollback", &actor())?;
            println!("{model}: champion {} -> {} (rollback)", before.as_deref().unwrap_or("(none)"), entry.to);
            Ok(())
        }
        ModelsCommand::History { config } => {
            let config = WeirConfig::load(&config)?;
            let (registry, model) = registry_of(&config)?;
            for entry in registry.history(&model)? {
                println!("{}", serde_json::to_string(&entry)?);
            }
            Ok(())
        }
    }
}
