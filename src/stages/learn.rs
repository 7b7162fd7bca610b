//! The learner stage: `weir learn`, and a task of `weir run` when `[learner]` is set.
//!
//! Its own consumer (group `learner.group_id`) of the scores and labels topics, through
//! `weir-ingest`'s at-least-once loop. Per micro-batch: decode (poison → dead-letter topic),
//! [`Learner::apply`] (fenced join, test-then-train), one Redis transaction with the
//! whole checkpoint and the batch's offsets, promotion decisions — and only then does
//! the loop store the Kafka offsets. Why that neither relearns nor skips a label across a
//! crash: `weir_online_learner`'s crate docs.

use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weir_ingest::consumer::{BatchHandler, ConsumerLoop, Disposition, InputRecord, LoopStats};
use weir_ingest::producer::EventProducer;
use weir_ingest::Error as IngestError;
use weir_online_learner::checkpoint::{Acquire, RedisCheckpoint};
use weir_online_learner::eval::WindowReport;
use weir_online_learner::learner::{Counters, Input, Learner, Position};
use weir_schemas::events::Label;
use weir_schemas::score_versions::ScoreDecoder;
use weir_schemas::wire::{subjects, Decoder};
use weir_schemas::EventError;

use crate::config::{learner_config, WeirConfig};
use crate::wiring::schema_registry;

pub struct LearnHandler {
    learner: Learner,
    checkpoint: RedisCheckpoint,
    scores_topic: String,
    labels_topic: String,
    scores: ScoreDecoder,
    labels: Decoder<Label>,
    /// Batches between status lines in the log.
    status_every: u64,
    batches: u64,
    promoter: Option<crate::stages::promote::Promoter>,
}

/// Connects to the learner's checkpoint (without taking its lease).
pub async fn connect(config: &WeirConfig) -> anyhow::Result<RedisCheckpoint> {
    let lc = learner_config(config);
    let redis = config.redis.as_ref().context("the learner keeps its checkpoint in Redis: a [redis] section is needed")?;
    Ok(RedisCheckpoint::connect(&redis.url, &lc.key_prefix, &lc.name).await?)
}

/// Connects to the checkpoint and restores the learner from it.
pub async fn restore(config: &WeirConfig) -> anyhow::Result<(Learner, RedisCheckpoint)> {
    let checkpoint = connect(config).await?;
    restore_from(config, checkpoint).await
}

/// Restores the learner from `checkpoint` (after taking the lease, so the last holder's
/// final write is in what is read).
pub async fn restore_from(config: &WeirConfig, checkpoint: RedisCheckpoint) -> anyhow::Result<(Learner, RedisCheckpoint)> {
    let lc = learner_config(config);
    let r = checkpoint.load().await?;
    let resumed = r.state.is_some();
    let mut learner = Learner::restore(lc, r.state, r.scores, r.labels, r.joined, r.eval)?;
    learner.restore_compare(r.compare);
    if resumed {
        let c = learner.counters();
        info!(learned = c.learned, offsets = ?learner.state().offsets, "learner resumed from its checkpoint");
    }
    Ok((learner, checkpoint))
}

impl LearnHandler {
    /// A handler writing through `checkpoint`, whose lease this process holds.
    pub async fn new(config: &WeirConfig, checkpoint: RedisCheckpoint) -> anyhow::Result<Self> {
        let (learner, checkpoint) = restore_from(config, checkpoint).await?;
        let registry = schema_registry(config)?;
        let scores = ScoreDecoder::new(registry.clone())?;
        let labels = Decoder::new(registry.clone(), subjects::LABEL, &*registry.latest(subjects::LABEL)?);
        let promoter = crate::stages::promote::Promoter::new(learner.config())?;
        Ok(LearnHandler {
            learner,
            checkpoint,
            scores_topic: config.kafka.topics.scores.clone(),
            labels_topic: config.kafka.topics.labels.clone(),
            scores,
            labels,
            status_every: 50,
            batches: 0,
            promoter,
        })
    }

    pub fn learner(&self) -> &Learner {
        &self.learner
    }

    fn decode(&self, r: &InputRecord<'_>) -> Result<Input, EventError> {
        let payload = r.payload.ok_or_else(|| EventError::malformed("message has no value"))?;
        if r.topic == self.scores_topic {
            Ok(Input::Score(self.scores.decode(payload)?))
        } else if r.topic == self.labels_topic {
            Ok(Input::Label(self.labels.decode(payload)?))
        } else {
            Err(EventError::malformed(format!("learner got a record from topic {:?}", r.topic)))
        }
    }

    async fn commit(&mut self, commit: &weir_online_learner::learner::Commit) -> weir_ingest::Result<()> {
        // The learner's memory is already ahead of Redis: retry the write here rather than
        // let the loop re-run the batch (the fence would skip it). If Redis stays down,
        // stop: a restart resumes from the last transaction that did land.
        let mut attempt = 0u32;
        loop {
            match self.checkpoint.commit(commit).await {
                Ok(()) => return Ok(()),
                Err(e @ weir_online_learner::Error::LeaseLost { .. }) => {
                    tracing::error!(error = %e, "checkpoint write refused: this learner was replaced; stopping without writing");
                    return Err(IngestError::handler(false, "writing the learner checkpoint", e));
                }
                Err(e) if e.is_retryable() && attempt < 8 => {
                    attempt += 1;
                    warn!(attempt, error = %e, "learner checkpoint write failed, retrying");
                    tokio::time::sleep(Duration::from_millis(100 * 2u64.pow(attempt.min(6)))).await;
                }
                Err(e) => return Err(IngestError::handler(false, "writing the learner checkpoint", e)),
            }
        }
    }
}

impl BatchHandler for LearnHandler {
    async fn handle(&mut self, batch: &[InputRecord<'_>]) -> weir_ingest::Result<Vec<Disposition>> {
        let mut inputs = Vec::with_capacity(batch.len());
        let mut dispositions = Vec::with_capacity(batch.len());
        for r in batch {
            match self.decode(r) {
                Ok(input) => {
                    inputs.push((Position { topic: r.topic.to_string(), partition: r.partition, offset: r.offset }, input));
                    dispositions.push(Disposition::Done);
                }
                Err(e) => dispositions.push(Disposition::DeadLetter(e)),
            }
        }
        let mut commit =
            self.learner.apply(inputs).map_err(|e| IngestError::handler(false, "learning from the batch", e))?;
        let promoted = match &mut self.promoter {
            Some(p) => p.step(&mut self.learner).map_err(|e| IngestError::handler(false, "promotion step", e))?,
            None => false,
        };
        if promoted {
            // The promotion state changed: it goes into this batch's transaction.
            commit.then(self.learner.commit(0));
        }
        self.commit(&commit).await?;
        let l = &self.learner;
        publish_metrics(&l.counters(), l.pending(), &l.report());
        self.batches += 1;
        if self.batches.is_multiple_of(self.status_every) {
            info!("{}", status_line(l));
        }
        Ok(dispositions)
    }
}

/// One line: learned, pending, evictions, and the smallest window's AUCs.
pub fn status_line(l: &Learner) -> String {
    let c = l.counters();
    let (ps, pl) = l.pending();
    let r = l.report();
    let auc = |v: Option<f64>| v.map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into());
    let first = r.first();
    format!(
        "learned {} | pending scores {ps} labels {pl} | expired {} evicted {} unmatched {} | window {}: champion AUC {} accuracy {} | challenger AUC {} accuracy {}",
        c.learned,
        c.join.scores_expired,
        c.join.scores_evicted,
        c.join.labels_unmatched + c.join.labels_evicted + c.join.labels_too_late,
        first.map(|w| w.labels).unwrap_or(0),
        auc(first.and_then(|w| w.champion.auc)),
        auc(first.and_then(|w| w.champion.accuracy)),
        auc(first.and_then(|w| w.challenger.auc)),
        auc(first.and_then(|w| w.challenger.accuracy)),
    )
}

/// A full status report, as `weir learn --status` prints it.
pub fn status_report(l: &Learner) -> String {
    let c = l.counters();
    let (ps, pl) = l.pending();
    let mut s = String::new();
    let model = l.model().map(|m| format!("FTRL over {} features, {} updates", m.nfeatures(), m.updates));
    s.push_str(&format!("learner {}\n", l.config().name));
    s.push_str(&format!("  model              {}\n", model.unwrap_or_else(|| "none yet".into())));
    s.push_str(&format!("  scores seen        {}\n  labels seen        {}\n  labels learned     {}\n", c.scores_seen, c.labels_seen, c.learned));
    s.push_str(&format!("  pending            {ps} scores, {pl} labels\n"));
    let j = &c.join;
    s.push_str(&format!(
        "  dropped            scores expired {} evicted {} duplicate {}; labels unmatched {} evicted {} too late {} duplicate {}; feature mismatch {}\n",
        j.scores_expired, j.scores_evicted, j.scores_duplicate, j.labels_unmatched, j.labels_evicted, j.labels_too_late, j.labels_duplicate, c.feature_mismatch
    ));
    s.push_str(&format!("  not binary         {} scores of a multi-class or regression model (not joined)\n", c.not_binary));
    s.push_str(&format!("  replays skipped    {}\n", c.replayed_skipped));
    let f = |v: Option<f64>| v.map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into());
    s.push_str("  prequential        window  labels  pos |    model     AUC  logloss  prec  recall    ECE     acc\n");
    for w in l.report() {
        for (name, m) in [("champion", &w.champion), ("challenger", &w.challenger)] {
            s.push_str(&format!(
                "                     {:>6} {:>7} {:>4} | {:>10} {:>7} {:>8} {:>5} {:>7} {:>6} {:>7}\n",
                w.window,
                w.labels,
                w.positives,
                name,
                f(m.auc),
                f(m.log_loss),
                f(m.precision),
                f(m.recall),
                f(m.calibration_error),
                f(m.accuracy)
            ));
        }
    }
    let p = &l.state().promotion;
    s.push_str(&format!(
        "  champion           {} | published {} | rollbacks {}\n",
        p.champion_version.as_deref().unwrap_or("-"),
        p.published,
        p.rollbacks
    ));
    s
}

/// Who this process is, in the lease value and the logs of a waiting learner.
fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    format!("{}:{}", if host.is_empty() { "localhost" } else { &host }, std::process::id())
}

/// Takes the learner's lease, waiting while another process holds it. `None` if
/// `shutdown` came first.
pub async fn acquire_lease(checkpoint: &mut RedisCheckpoint, lease_ms: u64, shutdown: &CancellationToken) -> anyhow::Result<Option<u64>> {
    let holder = holder_id();
    let mut last_holder = String::new();
    loop {
        match checkpoint.acquire(&holder, lease_ms).await? {
            Acquire::Acquired(token) => {
                info!(token, %holder, lease_ms, "acquired the learner lease");
                return Ok(Some(token));
            }
            Acquire::Held { by, ttl_ms } => {
                if by != last_holder {
                    warn!(held_by = %by, expires_in_ms = ttl_ms, "another learner with this name holds the lease; waiting for it");
                    last_holder = by;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(Duration::from_millis((lease_ms / 10).clamp(100, 1000))) => {}
        }
    }
}

/// Renews the lease every third of its life until `stop`; if it is lost (another
/// process acquired), cancels `lost` and returns the error.
fn spawn_renewal(checkpoint: RedisCheckpoint, lease_ms: u64, stop: CancellationToken, lost: CancellationToken) -> tokio::task::JoinHandle<Option<weir_online_learner::Error>> {
    tokio::spawn(async move {
        let every = Duration::from_millis(lease_ms / 3);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(every) => {}
            }
            match checkpoint.renew().await {
                Ok(()) => {}
                Err(e @ weir_online_learner::Error::LeaseLost { .. }) => {
                    tracing::error!(error = %e, "learner lease lost; stopping");
                    lost.cancel();
                    return Some(e);
                }
                // Redis briefly away: the next renewal (or the next checkpoint write,
                // which renews too) tries again; the fence keeps writes safe meanwhile.
                Err(e) => warn!(error = %e, "renewing the learner lease failed; retrying"),
            }
        }
    })
}

/// Runs the learner until `shutdown`: takes the learner's lease (one process per learner
/// name; waits while another holds it), restores, consumes, and gives the lease up on a
/// clean stop.
pub async fn run_learner(config: &WeirConfig, shutdown: CancellationToken) -> anyhow::Result<(LoopStats, LearnHandler)> {
    config.check()?;
    let lc = learner_config(config);
    let mut kafka = config.kafka.clone();
    kafka.group_id = lc.group_id.clone();
    let mut checkpoint = connect(config).await?;
    if acquire_lease(&mut checkpoint, lc.lease_ms, &shutdown).await?.is_none() {
        anyhow::bail!("learner {:?} stopped while waiting for its lease", lc.name);
    }
    let stop_renewal = CancellationToken::new();
    let lost = shutdown.child_token();
    let renewal = spawn_renewal(checkpoint.clone(), lc.lease_ms, stop_renewal.clone(), lost.clone());
    let result = async {
        let handler = LearnHandler::new(config, checkpoint.clone()).await?;
        let producer = EventProducer::new(&kafka)?;
        let consumer = weir_ingest::consumer::subscribe(&kafka, &[&kafka.topics.scores, &kafka.topics.labels])?;
        info!(group = %kafka.group_id, name = %lc.name, "learner consuming scores and labels");
        anyhow::Ok(ConsumerLoop::new(&kafka, consumer, producer, handler).run(lost.clone()).await?)
    }
    .await;
    stop_renewal.cancel();
    let lost_lease = renewal.await.ok().flatten();
    if let Some(e) = lost_lease {
        return Err(e.into());
    }
    // Give the lease up unless it was lost (the fence keeps the release from deleting a
    // successor's lease anyway).
    let lease_lost = |e: &anyhow::Error| {
        e.chain().any(|c| matches!(c.downcast_ref::<weir_online_learner::Error>(), Some(weir_online_learner::Error::LeaseLost { .. })))
    };
    if !matches!(&result, Err(e) if lease_lost(e)) {
        match checkpoint.release().await {
            Ok(true) => info!("learner lease released"),
            Ok(false) => warn!("learner lease was no longer ours at release"),
            Err(e) => warn!(error = %e, "releasing the learner lease failed; it expires in {} ms", lc.lease_ms),
        }
    }
    let (stats, handler) = result?;
    info!("{}", status_line(handler.learner()));
    Ok((stats, handler))
}

/// [`run_learner`] on a task of its own.
pub fn spawn_learner(
    config: WeirConfig,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<(LoopStats, LearnHandler)>> {
    tokio::spawn(async move { run_learner(&config, shutdown).await })
}

/// Reads the checkpoint and renders the status report.
pub async fn status(config: &WeirConfig) -> anyhow::Result<String> {
    let (learner, checkpoint) = restore(config).await?;
    Ok(format!("{}  checkpoint key     {}\n", status_report(&learner), checkpoint.state_key()))
}

/// Publishes the learner's counters and window metrics (absolute values: gauges and
/// counters set, so a restored learner reports its checkpointed totals).
fn publish_metrics(c: &Counters, pending: (usize, usize), reports: &[WindowReport]) {
    use weir_monitor::metrics::{LEARNER_JOIN_DROPPED, LEARNER_LABELS_LEARNED, LEARNER_PENDING, LEARNER_PREQUENTIAL};
    metrics::counter!(LEARNER_LABELS_LEARNED).absolute(c.learned);
    let j = &c.join;
    for (reason, v) in [
        ("scores_expired", j.scores_expired),
        ("scores_evicted", j.scores_evicted),
        ("scores_duplicate", j.scores_duplicate),
        ("labels_unmatched", j.labels_unmatched),
        ("labels_evicted", j.labels_evicted),
        ("labels_too_late", j.labels_too_late),
        ("labels_duplicate", j.labels_duplicate),
        ("feature_mismatch", c.feature_mismatch),
        ("not_binary", c.not_binary),
        ("replayed_skipped", c.replayed_skipped),
    ] {
        metrics::counter!(LEARNER_JOIN_DROPPED, "reason" => reason).absolute(v);
    }
    metrics::gauge!(LEARNER_PENDING, "side" => "scores").set(pending.0 as f64);
    metrics::gauge!(LEARNER_PENDING, "side" => "labels").set(pending.1 as f64);
    for r in reports {
        let window = r.window.to_string();
        for (model, m) in [("champion", &r.champion), ("challenger", &r.challenger)] {
            for (metric, v) in [
                ("auc", m.auc),
                ("log_loss", m.log_loss),
                ("precision", m.precision),
                ("recall", m.recall),
                ("calibration_error", m.calibration_error),
                ("accuracy", m.accuracy),
            ] {
                if let Some(v) = v {
                    metrics::gauge!(LEARNER_PREQUENTIAL, "model" => model, "metric" => metric, "window" => window.clone()).set(v);
                }
            }
        }
    }
}
