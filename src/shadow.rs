//! Shadow scoring: a challenger model scores the same events as the champion, into its
//! own topic (`scorer.shadow_topic`, default `scores.shadow`), where nothing acts on it.
//!
//! The champion's path never waits for the challenger: after a batch's champion scores
//! are built, its feature rows are *offered* to a bounded queue
//! (`scorer.shadow_queue_batches`) with `try_send`. A separate task drains the queue,
//! scores with the challenger on the blocking pool and produces the shadow scores. When
//! the challenger is slow the queue fills and further batches are dropped — counted in
//! [`ShadowStats::dropped`] and `weir_shadow_dropped_total` — never delayed; when it
//! fails (a run error, a delivery error) that batch is counted in `failed` and skipped.
//! Shadow scores are not part of the at-least-once contract: offsets are stored when the
//! champion's scores are acknowledged.
//!
//! The challenger is the version the registry's `challenger` pointer names, validated
//! like a champion before it scores ([`weir_scorer::live`]); with no pointer, nothing is
//! shadow-scored (`skipped`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use weir_ingest::producer::{EventProducer, OutgoingMessage};
use weir_schemas::events::{FeatureValue, Score};
use weir_schemas::wire::Encoder;
use weir_scorer::config::ScorerConfig;
use weir_scorer::live::LiveSlot;

/// Counter of shadow events dropped because the challenger's queue was full.
pub const SHADOW_DROPPED: &str = "weir_shadow_dropped_total";
/// Counter of shadow events scored and delivered.
pub const SHADOW_SCORED: &str = "weir_shadow_scored_total";
/// Counter of shadow events whose scoring or delivery failed.
pub const SHADOW_FAILED: &str = "weir_shadow_failed_total";

#[derive(Debug, Default)]
pub struct ShadowStats {
    /// Events scored by the challenger and delivered to the shadow topic.
    pub scored: AtomicU64,
    /// Events not shadow-scored because the queue was full.
    pub dropped: AtomicU64,
    /// Events whose shadow scoring or delivery failed.
    pub failed: AtomicU64,
    /// Events not shadow-scored because no challenger was set.
    pub skipped: AtomicU64,
}

/// One champion batch, as the challenger needs it.
pub struct ShadowBatch {
    /// Row-major feature rows, `feature_names.len()` columns.
    pub rows: Vec<f32>,
    pub events: Vec<ShadowEvent>,
}

pub struct ShadowEvent {
    pub event_id: String,
    pub card_id: String,
    pub event_time: i64,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// The champion's end of the queue.
#[derive(Clone)]
pub struct ShadowSender {
    tx: mpsc::Sender<ShadowBatch>,
    stats: Arc<ShadowStats>,
}

impl ShadowSender {
    /// Offers a batch; never waits. A full queue drops it (counted).
    pub fn offer(&self, batch: ShadowBatch) {
        let n = batch.events.len() as u64;
        if self.tx.try_send(batch).is_err() {
            self.stats.dropped.fetch_add(n, Ordering::Relaxed);
            metrics::counter!(SHADOW_DROPPED).increment(n);
        }
    }
}

/// Starts the shadow task; it ends at `shutdown` or when every sender is gone.
#[allow(clippy::too_many_arguments)]
pub fn spawn_shadow(
    scorer: ScorerConfig,
    challenger: Arc<LiveSlot>,
    feature_names: Vec<String>,
    producer: EventProducer,
    encoder: Encoder,
    stats: Arc<ShadowStats>,
    shutdown: CancellationToken,
) -> (ShadowSender, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<ShadowBatch>(scorer.shadow_queue_batches.max(1));
    let sender = ShadowSender { tx, stats: stats.clone() };
    let task = tokio::spawn(async move {
        loop {
            let batch = tokio::select! {
                _ = shutdown.cancelled() => return,
                b = rx.recv() => match b { Some(b) => b, None => return },
            };
            let n = batch.events.len() as u64;
            let Some(model) = challenger.current() else {
                stats.skipped.fetch_add(n, Ordering::Relaxed);
                continue;
            };
            let top_k = scorer.reason_top_k;
            let rows = batch.rows;
            let scored = tokio::task::spawn_blocking(move || {
                let out = model.score(&rows).and_then(|scores| {
                    let reasons = weir_scorer::reasons::explain(&model, &rows, &scores, top_k)?;
                    Ok((scores, reasons))
                });
                (model, rows, out)
            })
            .await;
            let (model, rows, (scores, mut reasons)) = match scored {
                Ok((m, r, Ok(out))) => (m, r, out),
                Ok((m, _, Err(e))) => {
                    warn!(version = %m.version(), "shadow scoring failed: {e}");
                    fail(&stats, n);
                    continue;
                }
                Err(e) => {
                    warn!("shadow scoring task failed: {e}");
                    fail(&stats, n);
                    continue;
                }
            };
            let k = feature_names.len();
            let meta = model.metadata();
            let scored_at = weir_schemas::now_ms();
            let mut messages = Vec::with_capacity(batch.events.len());
            for (i, (event, p)) in batch.events.into_iter().zip(&scores).enumerate() {
                let score = f64::from(*p);
                let s = Score {
                    event_id: event.event_id,
                    card_id: event.card_id,
                    event_time: event.event_time,
                    model_name: meta.name.clone(),
                    model_version: meta.version.clone(),
                    score,
                    decision: scorer.decide(score).as_str().to_string(),
                    features: feature_names
                        .iter()
                        .zip(&rows[i * k..(i + 1) * k])
                        .map(|(name, v)| FeatureValue { name: name.clone(), value: f64::from(*v) })
                        .collect(),
                    reasons: std::mem::take(&mut reasons[i]),
                    scored_at,
                    attributes: event.attributes,
                };
                match encoder.encode(&s) {
                    Ok(bytes) => messages.push(OutgoingMessage::new(s.card_id.as_bytes(), bytes)),
                    Err(e) => warn!("shadow score encoding failed: {e}"),
                }
            }
            match producer.send_all(&scorer.shadow_topic, &messages).await {
                Ok(_) => {
                    stats.scored.fetch_add(messages.len() as u64, Ordering::Relaxed);
                    metrics::counter!(SHADOW_SCORED).increment(messages.len() as u64);
                }
                Err(e) => {
                    warn!(topic = %scorer.shadow_topic, "shadow delivery failed: {e}");
                    fail(&stats, n);
                }
            }
        }
    });
    (sender, task)
}

fn fail(stats: &ShadowStats, n: u64) {
    stats.failed.fetch_add(n, Ordering::Relaxed);
    metrics::counter!(SHADOW_FAILED).increment(n);
}
