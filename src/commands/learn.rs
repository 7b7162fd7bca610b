//! `weir learn`: the online learner on its own, or its status from the checkpoint.

use tracing::info;

use crate::commands::startup::{connect_schema_registry, serve_metrics, shutdown_on_signal};
use crate::config::WeirConfig;
use crate::stages::learn::{run_learner, status};

pub async fn execute(config: WeirConfig, print_status: bool) -> anyhow::Result<()> {
    if print_status {
        print!("{}", status(&config).await?);
        return Ok(());
    }
    connect_schema_registry(&config).await?;
    serve_metrics(&config)?;
    let shutdown = shutdown_on_signal();
    let (stats, _) = run_learner(&config, shutdown).await?;
    info!(batches = stats.batches, records = stats.records, dead_lettered = stats.dead_lettered, "learner stopped");
    Ok(())
}
