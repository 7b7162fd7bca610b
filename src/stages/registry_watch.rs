//! The registry watcher: the task that `weir run` and `weir serve` start when
//! `scorer.registry` is set, which follows the champion (or challenger) pointer and swaps
//! each new version in after validating it. A refused version never replaces the one
//! serving. The pointers are moved by the learner's promotions and by `weir models`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weir_monitor::metrics as m;
use weir_scorer::live::{PollOutcome, Target};

use crate::config::WeirConfig;
use crate::wiring::registry_watcher;

use weir_monitor::metrics::{MODEL_REFUSED, MODEL_SWAPS};

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
    spawn_registry_watcher_after(config, target, &[], stats, shutdown)
}

/// [`spawn_registry_watcher`] for a process that already refused `refused` at start-up
/// (`wiring::load_model_at_start`): those are counted and remembered, not loaded again
/// while the pointer stays on them.
pub fn spawn_registry_watcher_after(
    config: &WeirConfig,
    target: Target,
    refused: &[(String, weir_scorer::Error)],
    stats: Arc<WatcherStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let pointer = target.pointer();
    let mut watcher = registry_watcher(config, target).context("scorer.registry is not set")?;
    let which = pointer.file_name();
    watcher.remember_start(refused);
    for (_, error) in refused {
        metrics::counter!(MODEL_REFUSED, "pointer" => which, "reason" => error.kind()).increment(1);
        stats.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut last) = stats.last_refusal.lock() {
            *last = Some(error.to_string());
        }
    }
    let period = Duration::from_millis(config.scorer.registry_poll_ms);
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
                PollOutcome::StillRefused { version, reason, message } => {
                    let serving = w.target().version().unwrap_or_else(|| "(none)".into());
                    warn!(pointer = which, %version, reason, %serving, "model version refused earlier, files unchanged, not loaded again: {message}");
                }
                PollOutcome::Cleared { from } => info!(pointer = which, %from, "challenger removed"),
                PollOutcome::Unchanged | PollOutcome::NoPointer => {}
            }
            watcher = Some(w);
        }
    }))
}

