//! What the long-running commands start with: the Prometheus endpoint, the SIGINT/SIGTERM
//! shutdown token, and — for `weir run` and `weir serve` alike — the online store, the
//! champion and its registry watcher.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::info;
use weir_features::redis_store::RedisStore;
use weir_scorer::live::{LiveModel, Target};

use crate::config::WeirConfig;
use crate::stages::registry_watch::{spawn_registry_watcher_after, WatcherStats};
use crate::wiring::{connect_redis_store, load_model_at_start};

/// Serves Prometheus metrics at `/metrics` when `metrics.listen` is set.
pub fn serve_metrics(config: &WeirConfig) -> anyhow::Result<()> {
    if let Some(listen) = &config.metrics.listen {
        // Checked by WeirConfig::problems.
        let addr: std::net::SocketAddr = listen.parse().context("metrics.listen")?;
        weir_monitor::metrics::install_prometheus(addr)?;
        info!(%addr, "serving prometheus metrics at /metrics");
    }
    Ok(())
}

/// A token cancelled at the first SIGINT (ctrl-c) or SIGTERM (what systemd and
/// Kubernetes send to stop a service): both drain the same way.
pub fn shutdown_on_signal() -> CancellationToken {
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let which = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            },
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); only SIGINT stops weir cleanly");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        };
        info!(signal = which, "shutting down: finishing the batch in flight, then committing offsets");
        token.cancel();
    });
    shutdown
}

/// With `schemas.registry_url`: registers weir's schemas and fetches the input's before
/// anything else connects, so that an unreachable registry, refused credentials or a
/// missing input subject stop weir first, by name. On a blocking thread: the client
/// retries with backoff for up to `schemas.startup_timeout_ms`. The stages then share
/// this client (`crate::wiring::schema_registry`).
pub async fn connect_schema_registry(config: &WeirConfig) -> anyhow::Result<()> {
    if config.schemas.registry_url.is_none() {
        return Ok(());
    }
    let owned = config.clone();
    let registry = tokio::task::spawn_blocking(move || crate::wiring::confluent_registry(&owned))
        .await
        .context("schema registry start-up task")??;
    info!(url = %registry.url(), "schema registry connected");
    Ok(())
}

/// What a scoring process runs with.
pub struct Scoring {
    pub store: Arc<RedisStore>,
    /// The champion, swapped by the registry watcher when `scorer.registry` is set.
    pub model: Arc<LiveModel>,
    pub shutdown: CancellationToken,
}

/// The start-up shared by `weir run` and `weir serve`: connects the store, loads the
/// champion, serves metrics, arms SIGINT/SIGTERM, and watches the registry's champion.
pub async fn start_scoring(config: &WeirConfig) -> anyhow::Result<Scoring> {
    connect_schema_registry(config).await?;
    let store = connect_redis_store(config).await?;
    // Metrics first, so a champion refused at start-up is counted.
    serve_metrics(config)?;
    let start = load_model_at_start(config)?;
    let model = Arc::new(LiveModel::new(Arc::new(start.model)));
    info!(model = %model.current().version(), "model loaded");
    let shutdown = shutdown_on_signal();
    if config.scorer.registry.is_some() {
        let watcher_stats = Arc::new(WatcherStats::default());
        let target = Target::Champion(model.clone());
        spawn_registry_watcher_after(config, target, &start.refused, watcher_stats, shutdown.clone())?;
        info!(every_ms = config.scorer.registry_poll_ms, "watching the registry's champion");
    }
    Ok(Scoring { store: Arc::new(store), model, shutdown })
}
