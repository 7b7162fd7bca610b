//! The scoring pipeline: what runs behind the consumer loop for each micro-batch.
//!
//! decode + validate → feature store (windows, one round trip) → feature vectors →
//! tract (one run per plan-sized chunk, on a blocking thread) → `Score` events produced
//! and acknowledged. Only when all of that is done does the batch report its
//! dispositions, and `weir-ingest` store its offsets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use weir_features::definitions::FeatureDefinitions;
use weir_features::embedded::EmbeddedStore;
use weir_features::redis_store::RedisStore;
use weir_ingest::consumer::{BatchHandler, ConsumerLoop, Disposition, InputRecord, LoopStats};
use weir_ingest::dead_letter::DeadLetterReport;
use weir_ingest::producer::{Acks, EventProducer, OutgoingMessage};
use weir_ingest::Error as IngestError;
use weir_monitor::metrics as m;
use weir_monitor::LatencyHistogram;
use weir_schemas::events::{FeatureValue, ModelOutput, Score};
use weir_schemas::record::EventRecord;
use weir_schemas::store::{Applied, FeatureStore, Observation, SourcePosition};
use weir_schemas::paths::RecordDecoder;
use weir_schemas::wire::{subjects, Encoder};
use weir_schemas::EventError;
use weir_scorer::config::ScorerConfig;
use weir_scorer::live::{LiveModel, LiveSlot, Target};
use weir_scorer::model::LoadedModel;

use crate::config::state::StateMode;
use crate::config::WeirConfig;
use crate::stages::local_state::{ChangelogBatch, LocalStage};
use crate::wiring::{feature_definitions, feature_names, input_plan, schema_registry, InputPlan};

/// Counters shared with whoever watches the pipeline (the demo's progress line, tests).
#[derive(Default)]
pub struct PipelineStats {
    pub received: AtomicU64,
    pub scored: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub late: AtomicU64,
    pub replayed: AtomicU64,
    pub batches: AtomicU64,
    /// From receipt of an event to acknowledgement of its score, per event.
    pub latency: LatencyHistogram,
    /// Time spent in the model per batch.
    pub model_latency: LatencyHistogram,
    /// When the first event was received and the last batch finished: the span that
    /// throughput is measured over (not the consumer group join before it).
    pub first_received: std::sync::OnceLock<std::time::Instant>,
    pub last_finished: std::sync::Mutex<Option<std::time::Instant>>,
    /// The challenger's shadow scoring.
    pub shadow: Arc<crate::stages::shadow::ShadowStats>,
}

impl PipelineStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// From the first event received to the end of the last batch.
    pub fn active_span(&self) -> Option<std::time::Duration> {
        let first = *self.first_received.get()?;
        let last = (*self.last_finished.lock().ok()?)?;
        Some(last.saturating_duration_since(first))
    }
}

pub struct ScoringHandler<S> {
    store: Arc<S>,
    /// The champion; each batch takes it once, so all its scores carry one version.
    model: Arc<LiveModel>,
    /// Where each batch's rows are offered to the challenger, if one is configured.
    shadow: Option<crate::stages::shadow::ShadowSender>,
    definitions: FeatureDefinitions,
    /// Reads the input subject's records through each message's writer schema, only the
    /// paths the plan names.
    decoder: RecordDecoder,
    plan: InputPlan,
    score_encoder: Encoder,
    scorer: ScorerConfig,
    producer: EventProducer,
    scores_topic: String,
    stats: Arc<PipelineStats>,
    /// With `state.mode = "local"`: the entity kinds kept in process, and their changelog.
    local: Option<LocalStage>,
}

/// What the pipeline scores with: a fixed model, or a [`LiveModel`] that a registry
/// watcher (or anyone) swaps under load.
pub trait IntoLiveModel {
    fn into_live(self) -> Arc<LiveModel>;
}

impl IntoLiveModel for Arc<LoadedModel> {
    fn into_live(self) -> Arc<LiveModel> {
        Arc::new(LiveModel::new(self))
    }
}

impl IntoLiveModel for Arc<LiveModel> {
    fn into_live(self) -> Arc<LiveModel> {
        self
    }
}

impl<S: FeatureStore> ScoringHandler<S> {
    pub fn new(
        config: &WeirConfig,
        store: Arc<S>,
        model: impl IntoLiveModel,
        producer: EventProducer,
        stats: Arc<PipelineStats>,
    ) -> anyhow::Result<Self> {
        let registry = schema_registry(config)?;
        let score_encoder = Encoder::new(registry.as_ref(), subjects::SCORE)?;
        let definitions = feature_definitions(config)?;
        let plan = input_plan(config, &definitions);
        let decoder = RecordDecoder::new(registry.clone(), &config.input.subject, plan.paths())
            .with_context(|| format!("reading {} records by path", config.input.subject))?;
        Ok(ScoringHandler {
            store,
            definitions,
            decoder,
            plan,
            score_encoder,
            scorer: config.scorer.clone(),
            producer,
            scores_topic: config.kafka.topics.scores.clone(),
            stats,
            model: model.into_live(),
            shadow: None,
            local: None,
        })
    }

    fn decode(&self, record: &InputRecord<'_>, now_ms: i64) -> Result<EventRecord, EventError> {
        let payload = record.payload.ok_or_else(|| EventError::malformed("message has no value"))?;
        let fields = self.decoder.decode(payload)?;
        self.definitions.check(&fields)?;
        self.plan.check(&fields, now_ms)?;
        Ok(fields)
    }

    /// Keeps the entity kinds keyed like the input in process (`state.mode = "local"`).
    pub fn with_local_state(mut self, local: LocalStage) -> Self {
        self.local = Some(local);
        self
    }

    /// Decodes, computes and scores a batch and enqueues its messages; returns the
    /// dispositions and the future of the messages' acknowledgement.
    async fn score_batch(&mut self, batch: &[InputRecord<'_>]) -> weir_ingest::Result<(Vec<Disposition>, Acks)> {
        let now = weir_schemas::now_ms();
        let mut dispositions = Vec::with_capacity(batch.len());
        let mut valid: Vec<usize> = Vec::with_capacity(batch.len());
        let mut fields: Vec<EventRecord> = Vec::with_capacity(batch.len());
        for (i, record) in batch.iter().enumerate() {
            match self.decode(record, now) {
                Ok(f) => {
                    valid.push(i);
                    fields.push(f);
                    dispositions.push(Disposition::Done);
                }
                Err(e) => dispositions.push(Disposition::DeadLetter(e)),
            }
        }
        if valid.is_empty() {
            return Ok((dispositions, Box::pin(async { Ok(()) })));
        }

        // One observation per entity kind per event, events in batch order.
        let kinds = self.definitions.entity_kinds().len();
        let observations: Vec<Observation> = valid
            .iter()
            .zip(&fields)
            .flat_map(|(i, f)| {
                let position =
                    SourcePosition { topic: batch[*i].topic.to_string(), partition: batch[*i].partition, offset: batch[*i].offset };
                self.definitions.observations(f, position)
            })
            .collect();
        let (outcome, changelog) = match &mut self.local {
            None => {
                let outcome = self
                    .store
                    .observe(&observations)
                    .await
                    .map_err(|e| IngestError::handler(e.is_retryable(), "updating the feature store", e))?;
                (outcome, ChangelogBatch::default())
            }
            Some(local) => local.observe(&*self.store, &observations).await?,
        };
        let windows = &outcome.results;
        // Per event: late when any of its entities refused it, replayed when all did.
        let (mut late, mut replayed) = (0u64, 0u64);
        for event in windows.chunks(kinds.max(1)) {
            if event.iter().any(|w| w.applied == Applied::Late) {
                late += 1;
            } else if event.iter().all(|w| w.applied == Applied::Replayed) {
                replayed += 1;
            }
        }
        self.stats.late.fetch_add(late, Ordering::Relaxed);
        self.stats.replayed.fetch_add(replayed, Ordering::Relaxed);
        metrics::counter!(m::EVENTS_LATE).increment(late);
        metrics::counter!(m::EVENTS_REPLAYED).increment(replayed);
        metrics::counter!(m::STORE_STATE_CORRUPT).increment(outcome.corrupt_states);
        for (kind, n) in &outcome.late {
            metrics::counter!(m::FEATURE_LATE, "entity" => kind.clone()).increment(*n);
        }

        let k = self.definitions.len();
        let mut rows = Vec::with_capacity(valid.len() * k);
        for (f, w) in fields.iter().zip(windows.chunks(kinds.max(1))) {
            self.definitions.assemble(f, w, &mut rows);
        }
        // tract is CPU-bound: run it on the blocking pool, not on the async workers that
        // keep the consumer polling and the producer flushing. The model is taken once:
        // a swap during this batch takes effect from the next one.
        let model = self.model.current();
        let started = std::time::Instant::now();
        let Scored { model, rows, outcome } = score_and_explain(model, rows, self.scorer.reason_top_k)
            .await
            .map_err(|e| IngestError::handler(false, "scoring task failed", e))?;
        let (probabilities, mut reasons) =
            outcome.map_err(|e| IngestError::handler(false, "scoring", e))?;
        self.stats.model_latency.record_us(started.elapsed().as_micros() as u64);
        metrics::histogram!(m::MODEL_LATENCY).record(started.elapsed().as_secs_f64());

        let meta = model.metadata();
        let scored_at = weir_schemas::now_ms();
        let mut messages = Vec::with_capacity(valid.len());
        for (n, (fields, p)) in fields.iter().zip(&probabilities).enumerate() {
            let score = f64::from(*p);
            let features = self
                .definitions
                .names()
                .iter()
                .zip(&rows[n * k..(n + 1) * k])
                .map(|(name, v)| FeatureValue { name: name.clone(), value: f64::from(*v) })
                .collect();
            let event = Score {
                event_id: self.plan.event_id(fields),
                key: self.plan.primary_key(fields),
                event_time: self.definitions.event_time(fields).unwrap_or_default(),
                model_name: meta.name.clone(),
                model_version: meta.version.clone(),
                output: ModelOutput::binary(score),
                decision: self.scorer.decide(score).as_str().to_string(),
                features,
                reasons: std::mem::take(&mut reasons[n]),
                scored_at,
                attributes: self.plan.attributes(fields),
            };
            messages.push(OutgoingMessage::new(event.key.as_bytes(), self.score_encoder.encode(&event)?));
        }
        // A delivery failure fails the batch; the loop retries it, and the replay is
        // fenced in the store, so the worst case is a duplicate score, never a lost one
        // (with exactly-once, the batch's transaction is aborted and none of it shows).
        // The changelog records go out with the scores, acknowledged together.
        let mut acks: Vec<Acks> = Vec::with_capacity(1 + changelog.states.len());
        acks.push(
            self.producer
                .enqueue_all(&self.scores_topic, None, &messages)
                .await
                .map_err(|e| IngestError::handler(true, "producing scores", e))?,
        );
        if let Some(local) = &self.local {
            for (partition, records) in &changelog.states {
                acks.push(
                    self.producer
                        .enqueue_all(local.changelog_topic(), Some(*partition), records)
                        .await
                        .map_err(|e| IngestError::handler(true, "producing changelog records", e))?,
                );
            }
        }
        match &self.shadow {
            Some(shadow) if !shadow.has_challenger() => shadow.skip(fields.len() as u64),
            Some(shadow) => {
                let events = fields
                    .iter()
                    .map(|fields| crate::stages::shadow::ShadowEvent {
                        event_id: self.plan.event_id(fields),
                        key: self.plan.primary_key(fields),
                        event_time: self.definitions.event_time(fields).unwrap_or_default(),
                        attributes: self.plan.attributes(fields),
                    })
                    .collect();
                shadow.offer(crate::stages::shadow::ShadowBatch { rows, events });
            }
            None => {}
        }
        // A delivery failure fails the batch; the loop consumes it again, and the replay
        // is fenced in the state, so the worst case is a duplicate score, never a lost one
        // (with exactly-once, the batch's transaction is aborted and none of it shows).
        // The changelog records go out with the scores, acknowledged together.
        let received: Vec<std::time::Instant> = valid.iter().map(|i| batch[*i].received_at).collect();
        let stats = self.stats.clone();
        // The watermarks only after the states (`ChangelogBatch`). The loop polls a batch's
        // acknowledgement only once every earlier batch's has resolved, so they also come
        // after every earlier batch's states and watermarks.
        let watermarks = match &self.local {
            Some(local) if !changelog.watermarks.is_empty() => {
                Some((self.producer.clone(), local.changelog_topic().to_string(), changelog.watermarks))
            }
            _ => None,
        };
        let acknowledged: Acks = Box::pin(async move {
            futures::future::try_join_all(acks).await?;
            if let Some((producer, topic, watermarks)) = watermarks {
                let mut sent = Vec::with_capacity(watermarks.len());
                for (partition, records) in &watermarks {
                    sent.push(producer.enqueue_all(&topic, Some(*partition), records).await?);
                }
                futures::future::try_join_all(sent).await?;
            }
            // One clock read for the batch: every score in it was acknowledged together.
            let done = std::time::Instant::now();
            let latencies: Vec<std::time::Duration> = received.iter().map(|at| done.saturating_duration_since(*at)).collect();
            stats.latency.record_many_us(latencies.iter().map(|d| d.as_micros() as u64));
            let event_latency = metrics::histogram!(m::EVENT_LATENCY);
            for latency in &latencies {
                event_latency.record(latency.as_secs_f64());
            }
            stats.scored.fetch_add(latencies.len() as u64, Ordering::Relaxed);
            metrics::counter!(m::EVENTS_SCORED).increment(latencies.len() as u64);
            if let Ok(mut last) = stats.last_finished.lock() {
                *last = Some(done);
            }
            Ok(())
        });
        Ok((dispositions, acknowledged))
    }
}

/// What [`score_and_explain`] hands back: the model and rows it was given, and the
/// scores with their reason codes (or why the model failed).
pub struct Scored {
    pub model: Arc<LoadedModel>,
    pub rows: Vec<f32>,
    pub outcome: weir_scorer::Result<(Vec<f32>, Vec<Vec<weir_schemas::events::Reason>>)>,
}

/// Scores `rows` (row-major, the model's feature order) and explains each score, on the
/// blocking pool: tract is CPU-bound and must not hold the async workers that keep the
/// consumer polling, the producer flushing and the HTTP server answering. Shared by the
/// stream and by `weir serve`.
pub async fn score_and_explain(
    model: Arc<LoadedModel>,
    rows: Vec<f32>,
    top_k: usize,
) -> Result<Scored, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || {
        let outcome = model.score(&rows).and_then(|scores| {
            let reasons = weir_scorer::reasons::explain(&model, &rows, &scores, top_k)?;
            Ok((scores, reasons))
        });
        Scored { model, rows, outcome }
    })
    .await
}

impl<S: FeatureStore + 'static> BatchHandler for ScoringHandler<S> {
    async fn handle(&mut self, batch: &[InputRecord<'_>]) -> weir_ingest::Result<Vec<Disposition>> {
        let (dispositions, acknowledged) = self.handle_pipelined(batch).await?;
        acknowledged.await.map_err(|e| IngestError::handler(true, "delivering the batch's messages", e))?;
        Ok(dispositions)
    }

    async fn handle_pipelined(&mut self, batch: &[InputRecord<'_>]) -> weir_ingest::Result<(Vec<Disposition>, Acks)> {
        if let Some(first) = batch.first() {
            self.stats.first_received.get_or_init(|| first.received_at);
        }
        let result = self.score_batch(batch).await;
        if let Ok((d, _)) = &result {
            for disposition in d {
                if let Disposition::DeadLetter(e) = disposition {
                    metrics::counter!(m::EVENTS_DEAD_LETTERED, "class" => e.class.as_str()).increment(1);
                }
            }
            metrics::counter!(m::EVENTS_RECEIVED).increment(batch.len() as u64);
            metrics::counter!(m::BATCHES).increment(1);
            metrics::histogram!(m::BATCH_SIZE).record(batch.len() as f64);
            let poison = d.iter().filter(|d| matches!(d, Disposition::DeadLetter(_))).count() as u64;
            self.stats.dead_lettered.fetch_add(poison, Ordering::Relaxed);
            self.stats.received.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            if poison as usize == batch.len()
                && let Ok(mut last) = self.stats.last_finished.lock()
            {
                *last = Some(std::time::Instant::now());
            }
        }
        result
    }

    fn committed(&mut self) {
        if let Some(local) = &mut self.local {
            local.committed();
        }
    }

    fn rewind(&mut self, partitions: &[(String, i32)]) {
        if let Some(local) = &mut self.local {
            local.rewind(partitions);
        }
    }

    fn dead_letters_sent(&mut self, report: &DeadLetterReport) {
        metrics::counter!(m::DEAD_LETTERS_TRUNCATED).increment(report.truncated);
        for (reason, _) in &report.failed {
            metrics::counter!(m::DEAD_LETTER_FAILURES, "reason" => reason.as_str()).increment(1);
        }
    }
}

/// What a pipeline keeps its shared state in, as the local-state mode needs it: the Redis
/// store also takes the serving copy of the state kept in process; the embedded store
/// (the demo's, tests') has no copy to keep.
pub trait PipelineStore: FeatureStore + 'static {
    /// Where the serving copy goes, if anywhere.
    fn serving_target(self: &Arc<Self>) -> Option<Arc<RedisStore>> {
        None
    }
}

impl PipelineStore for RedisStore {
    fn serving_target(self: &Arc<Self>) -> Option<Arc<RedisStore>> {
        Some(self.clone())
    }
}

impl PipelineStore for EmbeddedStore {}

/// [`run_pipeline`] on a task of its own.
pub fn spawn_pipeline<S: PipelineStore>(
    config: WeirConfig,
    store: Arc<S>,
    model: impl IntoLiveModel + Send + 'static,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<LoopStats>> {
    tokio::spawn(async move { run_pipeline(&config, store, model, stats, shutdown).await })
}

/// Runs the scoring pipeline on `store` until `shutdown`.
pub async fn run_pipeline<S: PipelineStore>(
    config: &WeirConfig,
    store: Arc<S>,
    model: impl IntoLiveModel,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<LoopStats> {
    config.check()?;
    let producer = if config.kafka.exactly_once {
        let id = config.kafka.transactional_id();
        let timeout = std::time::Duration::from_millis(config.kafka.transaction_timeout_ms);
        let producer = EventProducer::transactional(&config.kafka, &id, timeout)
            .await
            .with_context(|| format!("starting exactly-once (kafka.exactly_once) as transactional id {id:?}"))?;
        tracing::info!(transactional_id = %id, "exactly-once: each batch is one kafka transaction");
        producer
    } else {
        EventProducer::new(&config.kafka)?
    };
    let model = model.into_live();
    let meta = model.current().metadata().clone();
    metrics::gauge!(m::MODEL_INFO, "model" => meta.name, "version" => meta.version).set(1.0);
    let shadow_stats = stats.shadow.clone();
    let serving_target = store.serving_target();
    let mut handler = ScoringHandler::new(config, store, model, producer.clone(), stats)?;
    if config.scorer.registry.is_some() {
        // The challenger, if the registry names one: its own watcher, queue and task.
        let slot = Arc::new(LiveSlot::default());
        let watcher_stats = Arc::new(crate::stages::registry_watch::WatcherStats::default());
        crate::stages::registry_watch::spawn_registry_watcher(config, Target::Challenger(slot.clone()), watcher_stats, shutdown.clone())?;
        let encoder = Encoder::new(schema_registry(config)?.as_ref(), subjects::SCORE)?;
        let (sender, _task) = crate::stages::shadow::spawn_shadow(
            config.scorer.clone(),
            slot,
            feature_names(config),
            producer.clone(),
            encoder,
            shadow_stats,
            shutdown.clone(),
        );
        handler.shadow = Some(sender);
    }
    let rebalances = weir_ingest::consumer::RebalanceLog::default();
    if config.state.mode == StateMode::Local {
        let local = LocalStage::start(config, serving_target, rebalances.clone(), shutdown.clone()).await?;
        handler = handler.with_local_state(local);
    }
    let consumer =
        weir_ingest::consumer::subscribe_with(&config.kafka, &[&config.kafka.topics.input], Some(rebalances), Some(producer.clone()))?;
    let (loop_stats, handler) = ConsumerLoop::new(&config.kafka, consumer, producer, handler).run(shutdown).await?;
    if let Some(local) = handler.local {
        local.finish().await;
    }
    Ok(loop_stats)
}
