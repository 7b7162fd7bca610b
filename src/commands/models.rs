//! `weir models list | promote | rollback | history`: the model registry by hand.
//!
//! Rollback procedure (also in the README): `weir models rollback --config weir.toml`
//! points `champion` back at the version that served before the last promotion; every
//! running `weir` picks it up within `scorer.registry_poll_ms` (it is validated again
//! first, like any version), and the history log records who moved it and when.

use std::path::PathBuf;

use anyhow::Context;
use weir_schemas::registry::ModelRegistry;
use weir_scorer::live::load_version;

use crate::config::WeirConfig;
use crate::wiring::feature_names;

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
