//! `weir monitor`: only the monitor stage, scores and labels in, drift alerts out.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tracing::info;

use crate::commands::startup::{connect_schema_registry, serve_metrics, shutdown_on_signal};
use crate::config::WeirConfig;
use crate::stages::lag_watch::spawn_lag_watch;
use crate::stages::monitor::{run_monitor, MonitorStats};

pub async fn execute(config: WeirConfig) -> anyhow::Result<()> {
    connect_schema_registry(&config).await?;
    serve_metrics(&config)?;
    let shutdown = shutdown_on_signal();
    let lag = spawn_lag_watch(&config, shutdown.clone());
    let stats = Arc::new(MonitorStats::default());
    let result = run_monitor(&config, stats.clone(), shutdown.clone()).await;
    shutdown.cancel();
    let _ = lag.await;
    let loop_stats = result?;
    info!(batches = loop_stats.batches, records = loop_stats.records, alerts = stats.alerts_sent.load(Ordering::Relaxed), "monitor stopped");
    Ok(())
}
