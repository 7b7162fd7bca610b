//! `weir run`: the production pipeline against Kafka and Redis, with the monitor and the
//! learner next to it when configured.

use std::sync::Arc;

use tracing::{info, warn};

use crate::commands::startup::{start_scoring, Scoring};
use crate::config::WeirConfig;
use crate::stages::lag_watch::spawn_lag_watch;
use crate::stages::learn::spawn_learner;
use crate::stages::monitor::{spawn_monitor, MonitorStats};
use crate::stages::score::{run_pipeline, PipelineStats};

pub async fn execute(config: WeirConfig) -> anyhow::Result<()> {
    let Scoring { store, model, shutdown } = start_scoring(&config).await?;
    // The monitor reads the scores with its own group; if it fails, scoring goes on.
    let monitor = config
        .monitor
        .enabled
        .then(|| spawn_monitor(config.clone(), Arc::new(MonitorStats::default()), shutdown.clone()));
    // With a [learner] section the learner runs next to the pipeline, in its own consumer
    // group; if it fails, scoring goes on.
    let learner = config.learner.is_some().then(|| spawn_learner(config.clone(), shutdown.clone()));
    let lag = spawn_lag_watch(&config, shutdown.clone());
    let stats = Arc::new(PipelineStats::default());
    let result = run_pipeline(&config, store, model, stats.clone(), shutdown.clone()).await;
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
        dead_letters_truncated = loop_stats.dead_letters_truncated,
        dead_letter_failures = loop_stats.dead_letter_failures,
        p50_us = p.p50_us,
        p99_us = p.p99_us,
        "stopped"
    );
    Ok(())
}
