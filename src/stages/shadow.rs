//! Shadow scoring: a challenger model scores the same events as the champion, into its
//! own topic (`scorer.shadow_topic`, default `scores.shadow`), where nothing acts on it.
//!
//! The champion's path never waits for the challenger: after a batch's champion scores
//! are built, its feature rows are *offered* to a bounded queue
//! (`scorer.shadow_queue_batches`) with `try_send`. A thread of its own, at the lowest
//! CPU priority (nice 19), drains the queue, scores with the challenger and produces the
//! shadow scores. When
//! the challenger is slow the queue fills and further batches are dropped — counted in
//! [`ShadowStats::dropped`] and `weir_shadow_dropped_total` — never delayed; when it
//! fails (a run error, a delivery error) that batch is counted in `failed` and skipped.
//! Shadow scores are not part of the at-least-once contract: offsets are stored when the
//! champion's scores are acknowledged.
//!
//! The challenger is the version the registry's `challenger` pointer names, validated
//! like a champion before it scores ([`weir_scorer::live`]); with no pointer, nothing is
//! shadow-scored (`skipped`): the champion's path sees that before it builds or queues a
//! batch, so an absent challenger costs nothing and never shows up as `dropped`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;
use weir_ingest::producer::{EventProducer, OutgoingMessage};
use weir_schemas::events::{FeatureValue, ModelOutput, Score};
use weir_schemas::wire::Encoder;
use weir_scorer::config::ScorerConfig;
use weir_scorer::live::LiveSlot;

use weir_monitor::metrics::{SHADOW_DROPPED, SHADOW_FAILED, SHADOW_SCORED};

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
    pub key: String,
    pub event_time: i64,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// The champion's end of the queue.
#[derive(Clone)]
pub struct ShadowSender {
    tx: mpsc::Sender<ShadowBatch>,
    challenger: Arc<LiveSlot>,
    stats: Arc<ShadowStats>,
}

impl ShadowSender {
    /// Whether a challenger is in service: with none, the caller counts its batch as
    /// skipped ([`ShadowSender::skip`]) instead of building and offering it.
    pub fn has_challenger(&self) -> bool {
        self.challenger.current().is_some()
    }

    /// Counts `n` events not shadow-scored because no challenger is in service.
    pub fn skip(&self, n: u64) {
        self.stats.skipped.fetch_add(n, Ordering::Relaxed);
    }

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
    let sender = ShadowSender { tx, challenger: challenger.clone(), stats: stats.clone() };
    let runtime = tokio::runtime::Handle::current();
    // The challenger gets a thread of its own at the lowest CPU priority: on a busy
    // machine the kernel runs the champion's scoring first, and the challenger has what
    // is left (its queue fills and batches are dropped, counted).
    let thread = std::thread::Builder::new().name("weir-shadow".into()).spawn(move || {
        lower_priority();
        loop {
            let batch = runtime.block_on(async {
                tokio::select! {
                    _ = shutdown.cancelled() => None,
                    b = rx.recv() => b,
                }
            });
            let Some(batch) = batch else { return };
            shadow_one(&runtime, &scorer, &challenger, &feature_names, &producer, &encoder, &stats, batch);
        }
    });
    let task = tokio::spawn(async move {
        match thread {
            Ok(handle) => {
                let _ = tokio::task::spawn_blocking(move || handle.join()).await;
            }
            Err(e) => warn!("cannot start the shadow thread: {e}; no shadow scoring"),
        }
    });
    (sender, task)
}

/// Nice 19 for the calling thread (Linux gives each thread its own nice value).
fn lower_priority() {
    // SAFETY: setpriority(2) on the calling thread (who = 0); no memory is involved.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    if rc != 0 {
        warn!("cannot lower the shadow thread's priority: {}", std::io::Error::last_os_error());
    }
}

#[allow(clippy::too_many_arguments)]
fn shadow_one(
    runtime: &tokio::runtime::Handle,
    scorer: &ScorerConfig,
    challenger: &LiveSlot,
    feature_names: &[String],
    producer: &EventProducer,
    encoder: &Encoder,
    stats: &ShadowStats,
    batch: ShadowBatch,
) {
    let n = batch.events.len() as u64;
    let Some(model) = challenger.current() else {
        stats.skipped.fetch_add(n, Ordering::Relaxed);
        return;
    };
    let rows = batch.rows;
    let scored = model.score(&rows).and_then(|scores| {
        let reasons = weir_scorer::reasons::explain(&model, &rows, &scores, scorer.reason_top_k)?;
        Ok((scores, reasons))
    });
    let (scores, mut reasons) = match scored {
        Ok(out) => out,
        Err(e) => {
            warn!(version = %model.version(), "shadow scoring failed: {e}");
            fail(stats, n);
            return;
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
            key: event.key,
            event_time: event.event_time,
            model_name: meta.name.clone(),
            model_version: meta.version.clone(),
            output: ModelOutput::binary(score),
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
            Ok(bytes) => messages.push(OutgoingMessage::new(s.key.as_bytes(), bytes)),
            Err(e) => warn!("shadow score encoding failed: {e}"),
        }
    }
    match runtime.block_on(producer.send_all(&scorer.shadow_topic, &messages)) {
        Ok(_) => {
            stats.scored.fetch_add(messages.len() as u64, Ordering::Relaxed);
            metrics::counter!(SHADOW_SCORED).increment(messages.len() as u64);
        }
        Err(e) => {
            warn!(topic = %scorer.shadow_topic, "shadow delivery failed: {}", weir_ingest::error::Report(&e));
            fail(stats, n);
        }
    }
}

fn fail(stats: &ShadowStats, n: u64) {
    stats.failed.fetch_add(n, Ordering::Relaxed);
    metrics::counter!(SHADOW_FAILED).increment(n);
}
