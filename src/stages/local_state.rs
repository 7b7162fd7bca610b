//! The scoring stage's state in process (`state.mode = "local"`): entity kinds keyed like
//! the input live in this process ([`LocalState`]), restored from the changelog before a
//! partition's first event, written to the changelog with each batch, and copied to Redis
//! for serving once the batch is committed; other kinds go through the Redis store's
//! compare-and-set as in `state.mode = "redis"`.
//!
//! Why kinds not keyed like the input stay on Redis: a merchant's events come from every
//! input partition, so from every process; in-process state would split it. Kafka Streams
//! would repartition them (a topic keyed by merchant, read by a second stage); that costs
//! a second produce and consume of every event and a second transaction per batch, and
//! makes the merchant's features of an event arrive after its score is due. The
//! compare-and-set keeps them exact and shared at one Redis round trip per batch, and
//! replays stay fenced; what they do not get is exactly-once *vectors* across a crash
//! (a replayed event reads the merchant's current state). docs/architecture.md has the
//! whole argument.

use std::sync::Arc;
use std::time::Duration;

use weir_features::changelog::EntityChange;
use weir_features::local_state::LocalState;
use weir_features::serving_copy::ServingCopy;
use tokio_util::sync::CancellationToken;
use weir_features::redis_store::RedisStore;
use weir_features::serving_copy::{spawn_serving_copy, ServingStats};
use weir_ingest::changelog::{ensure_changelog_topic, read_changelog_partition};
use weir_monitor::metrics as m;
use weir_ingest::config::KafkaConfig;
use weir_ingest::consumer::{RebalanceEvent, RebalanceLog};
use weir_ingest::producer::OutgoingMessage;
use weir_ingest::Error as IngestError;
use weir_schemas::store::{FeatureStore, Observation, ObserveOutcome};

use crate::config::WeirConfig;
use crate::wiring::{feature_definitions, local_kinds};

/// The local half of a batch's feature work, and what it leaves to deliver.
pub struct LocalStage {
    local: Arc<LocalState>,
    /// Per entity kind, in the definitions' order: kept here (keyed like the input)?
    local_kinds: Vec<bool>,
    kafka: KafkaConfig,
    changelog: String,
    restore_wait: Duration,
    rebalances: RebalanceLog,
    serving: Option<ServingCopy>,
    /// The serving copy's writer, awaited by [`LocalStage::finish`].
    serving_task: Option<tokio::task::JoinHandle<()>>,
    /// Changes of the batch not yet committed: the serving copy gets them once it is.
    uncommitted: Vec<EntityChange>,
    /// An entity quiet for longer than this (event time) is evicted: the Redis keys' TTL.
    expiry_ms: i64,
    /// When quiet entities were last swept out.
    last_eviction: std::time::Instant,
    stats: Arc<LocalStats>,
}

/// Counts for metrics and tests.
#[derive(Debug, Default)]
pub struct LocalStats {
    pub restores: std::sync::atomic::AtomicU64,
    pub restored_records: std::sync::atomic::AtomicU64,
    pub restore_corrupt: std::sync::atomic::AtomicU64,
    pub releases: std::sync::atomic::AtomicU64,
}

/// How often quiet entities are swept out of memory.
const EVICT_EVERY: Duration = Duration::from_secs(60);

/// The changelog records of a batch, per changelog partition.
///
/// The watermarks go out only once every state record of the batch (and of every batch
/// before it) is acknowledged, and the batch's offsets are stored only once they are: so
/// a restored watermark never covers an event whose entity's state did not land. A
/// replayed event that is not fenced is then after everything the watermark covers, and
/// its lateness is decided as the first pass decided it. (Written together, a batch cut
/// short by a crash could leave its watermark without some of its states, and the replay
/// would find those events late: an undercount the two-process takeover test caught.)
#[derive(Debug, Default)]
pub struct ChangelogBatch {
    pub states: Vec<(i32, Vec<OutgoingMessage>)>,
    pub watermarks: Vec<(i32, Vec<OutgoingMessage>)>,
}

impl LocalStage {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        local: Arc<LocalState>,
        local_kinds: Vec<bool>,
        kafka: KafkaConfig,
        restore_wait: Duration,
        rebalances: RebalanceLog,
        serving: Option<ServingCopy>,
        stats: Arc<LocalStats>,
    ) -> Self {
        let changelog = kafka.changelog_topic();
        LocalStage {
            local,
            local_kinds,
            kafka,
            changelog,
            restore_wait,
            rebalances,
            serving,
            serving_task: None,
            uncommitted: Vec::new(),
            expiry_ms: i64::MAX,
            last_eviction: std::time::Instant::now(),
            stats,
        }
    }

    /// Builds the stage for `config`: the changelog topic made sure of (created compacted
    /// with the input's partition count when missing), and, with a `serving` store, the
    /// serving copy's writer started (its metrics published every second).
    pub async fn start(
        config: &WeirConfig,
        serving: Option<Arc<RedisStore>>,
        rebalances: RebalanceLog,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let definitions = feature_definitions(config)?;
        let local_kinds = local_kinds(config, &definitions);
        if serving.is_none() && local_kinds.iter().any(|local| !local) {
            tracing::info!("entity kinds not keyed like the input are kept by the embedded store");
        }
        let kafka = config.kafka.clone();
        let (changelog, input) = (kafka.changelog_topic(), kafka.topics.input.clone());
        let partitions = tokio::task::spawn_blocking({
            let kafka = kafka.clone();
            let changelog = changelog.clone();
            move || ensure_changelog_topic(&kafka, &changelog, &input)
        })
        .await??;
        let kinds: Vec<String> = definitions
            .entity_kinds()
            .iter()
            .zip(&local_kinds)
            .map(|(k, local)| format!("{k} ({})", if *local { "in process" } else { "redis compare-and-set" }))
            .collect();
        tracing::info!(%changelog, partitions, kinds = %kinds.join(", "), "state kept in process, changes to the changelog");
        let local = Arc::new(LocalState::new(definitions.engine_spec().clone()));
        let stats = Arc::new(LocalStats::default());
        let (serving, task) = match serving {
            Some(store) => {
                let lag = metrics::histogram!(m::SERVING_LAG);
                let (copy, task) =
                    spawn_serving_copy(store, local.clone(), Box::new(move |d| lag.record(d.as_secs_f64())), shutdown.clone());
                (Some(copy), Some(task))
            }
            None => (None, None),
        };
        spawn_metrics(local.clone(), stats.clone(), serving.as_ref().map(|s| s.stats().clone()), shutdown);
        let wait = Duration::from_millis(config.state.restore_wait_ms);
        let mut stage = LocalStage::new(local, local_kinds, kafka, wait, rebalances, serving, stats);
        stage.serving_task = task;
        stage.expiry_ms = config.features.ttl_ms();
        Ok(stage)
    }

    /// Stops: the serving copy's writer writes what it holds (for a bounded time), then
    /// this returns.
    pub async fn finish(mut self) {
        self.serving = None;
        if let Some(task) = self.serving_task.take() {
            let _ = task.await;
        }
    }

    pub fn changelog_topic(&self) -> &str {
        &self.changelog
    }

    /// Applies a batch's observations (one per entity kind per event, kinds in order): the
    /// local kinds here, the others through `shared`. Returns the answers in batch order
    /// and the changelog records to deliver with the batch.
    pub async fn observe<S: FeatureStore>(
        &mut self,
        shared: &S,
        observations: &[Observation],
    ) -> Result<(ObserveOutcome, ChangelogBatch), IngestError> {
        self.follow_rebalances();
        self.restore_missing(observations).await?;
        let kinds = self.local_kinds.len().max(1);
        let is_local = |i: usize| self.local_kinds.get(i % kinds).copied().unwrap_or(false);
        let all_local = self.local_kinds.iter().all(|&l| l);
        let (local_done, shared_outcome) = if all_local {
            (self.local.observe(observations), None)
        } else {
            let (mine, theirs): (Vec<_>, Vec<_>) = (0..observations.len()).partition(|&i| is_local(i));
            let mine_obs: Vec<Observation> = mine.iter().map(|&i| observations[i].clone()).collect();
            let theirs_obs: Vec<Observation> = theirs.iter().map(|&i| observations[i].clone()).collect();
            let local_done = self.local.observe(&mine_obs);
            let shared_outcome = shared
                .observe(&theirs_obs)
                .await
                .map_err(|e| IngestError::handler(e.is_retryable(), "updating the shared entities in redis", e))?;
            (local_done, Some((mine, theirs, shared_outcome)))
        };
        let local_done = local_done.map_err(|e| IngestError::handler(false, "updating the state kept in process", e))?;
        let outcome = match shared_outcome {
            None => local_done.outcome.clone(),
            Some((mine, theirs, shared)) => {
                let mut results = vec![None; observations.len()];
                for (i, r) in mine.iter().zip(local_done.outcome.results.iter().cloned()) {
                    results[*i] = Some(r);
                }
                for (i, r) in theirs.iter().zip(shared.results) {
                    results[*i] = Some(r);
                }
                let results = results
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| IngestError::handler(false, "merging feature answers", "an observation got no answer"))?;
                let mut outcome = weir_schemas::store::ObserveOutcome::from_results(observations, results);
                outcome.corrupt_states = shared.corrupt_states;
                outcome
            }
        };
        let mut by_partition: Vec<(i32, Vec<OutgoingMessage>)> = Vec::new();
        let mut push = |partition: i32, key: Vec<u8>, value: Vec<u8>| match by_partition.iter_mut().find(|(p, _)| *p == partition) {
            Some((_, m)) => m.push(OutgoingMessage::new(key, value)),
            None => by_partition.push((partition, vec![OutgoingMessage::new(key, value)])),
        };
        for change in &local_done.changes {
            push(change.partition, change.key(), change.blob.clone());
        }
        let watermarks: Vec<(i32, Vec<OutgoingMessage>)> = local_done
            .watermarks
            .iter()
            .map(|(partition, watermark)| {
                let record = OutgoingMessage::new(
                    weir_features::changelog::watermark_key(),
                    weir_features::changelog::watermark_value(*watermark),
                );
                (*partition, vec![record])
            })
            .collect();
        // Now and then, the entities quiet for longer than the TTL leave memory, and a
        // tombstone goes with the batch so that a restore leaves them out too.
        if self.last_eviction.elapsed() >= EVICT_EVERY {
            self.last_eviction = std::time::Instant::now();
            let evicted = self.local.evict(self.expiry_ms).map_err(|e| IngestError::handler(false, "evicting quiet entities", e))?;
            if !evicted.is_empty() {
                tracing::debug!(entities = evicted.len(), "quiet entities evicted from memory");
            }
            for (partition, kind, id) in evicted {
                let tombstone = OutgoingMessage::tombstone(weir_features::changelog::state_key(&kind, &id));
                match by_partition.iter_mut().find(|(p, _)| *p == partition) {
                    Some((_, m)) => m.push(tombstone),
                    None => by_partition.push((partition, vec![tombstone])),
                }
            }
        }
        self.uncommitted.extend(local_done.changes);
        Ok((outcome, ChangelogBatch { states: by_partition, watermarks }))
    }

    /// The batch is committed: the serving copy may show it.
    pub fn committed(&mut self) {
        let changes = std::mem::take(&mut self.uncommitted);
        if let Some(serving) = &self.serving {
            serving.send(changes);
        }
    }

    /// The batch was rolled back: forget what it applied (restored again from the
    /// changelog at the partitions' next events).
    pub fn rewind(&mut self, partitions: &[(String, i32)]) {
        self.uncommitted.clear();
        for (topic, partition) in partitions {
            self.local.release(topic, *partition);
            self.stats.releases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Forgets the partitions revoked since the last batch: their next owner restores them.
    fn follow_rebalances(&mut self) {
        let events = match self.rebalances.lock() {
            Ok(mut log) => std::mem::take(&mut *log),
            Err(_) => return,
        };
        for event in events {
            if let RebalanceEvent::Revoked(partitions) = event {
                for (topic, partition) in partitions {
                    self.local.release(&topic, partition);
                    self.stats.releases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    /// Restores each partition of the batch this process does not hold yet.
    async fn restore_missing(&mut self, observations: &[Observation]) -> Result<(), IngestError> {
        let mut missing: Vec<(String, i32)> = Vec::new();
        for obs in observations {
            let p = &obs.position;
            if !missing.iter().any(|(t, q)| *q == p.partition && *t == p.topic) && !self.local.owns(&p.topic, p.partition) {
                missing.push((p.topic.clone(), p.partition));
            }
        }
        // Each partition's changelog is read on its own blocking thread, all at once: a
        // process taking over several partitions waits for the longest, not the sum.
        let started = std::time::Instant::now();
        let reads = missing.into_iter().map(|(topic, partition)| {
            let (kafka, changelog, wait) = (self.kafka.clone(), self.changelog.clone(), self.restore_wait);
            async move {
                let records = tokio::task::spawn_blocking(move || read_changelog_partition(&kafka, &changelog, partition, wait))
                    .await
                    .map_err(|e| IngestError::handler(false, "restoring a partition", e))??;
                Ok::<_, IngestError>((topic, partition, records))
            }
        });
        for (topic, partition, records) in futures::future::try_join_all(reads).await? {
            let n = records.len();
            let report = self
                .local
                .restore(&topic, partition, records)
                .map_err(|e| IngestError::handler(false, format!("restoring {topic}[{partition}] from the changelog"), e))?;
            self.stats.restores.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.stats.restored_records.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            self.stats.restore_corrupt.fetch_add(report.corrupt, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                topic, partition, changelog = %self.changelog, records = n, entities = report.entities,
                corrupt = report.corrupt, ms = started.elapsed().as_millis() as u64,
                "partition state restored from the changelog"
            );
            // The previous owner's serving copy may not have caught up before it stopped:
            // the versions make rewriting what Redis already holds a no-op.
            if let Some(serving) = &self.serving {
                serving.send(self.local.snapshot_partition(&topic, partition).unwrap_or_default());
            }
        }
        Ok(())
    }
}

/// Publishes the state's and the serving copy's counts every second until `shutdown`.
fn spawn_metrics(local: Arc<LocalState>, stats: Arc<LocalStats>, serving: Option<Arc<ServingStats>>, shutdown: CancellationToken) {
    use std::sync::atomic::Ordering::Relaxed;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let (mut restores, mut records, mut written, mut resyncs) = (0, 0, 0, 0);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            let now = stats.restores.load(Relaxed);
            metrics::counter!(m::STATE_RESTORES).increment(now - restores);
            restores = now;
            let now = stats.restored_records.load(Relaxed);
            metrics::counter!(m::STATE_RESTORED_RECORDS).increment(now - records);
            records = now;
            metrics::gauge!(m::STATE_ENTITIES).set(local.entity_count() as f64);
            if let Some(s) = &serving {
                let now = s.written.load(Relaxed);
                metrics::counter!(m::SERVING_WRITTEN).increment(now - written);
                written = now;
                let now = s.resyncs.load(Relaxed);
                metrics::counter!(m::SERVING_RESYNCS).increment(now - resyncs);
                resyncs = now;
                metrics::gauge!(m::SERVING_PENDING).set(s.pending.load(Relaxed) as f64);
                metrics::gauge!(m::SERVING_UP).set(if s.up.load(Relaxed) { 1.0 } else { 0.0 });
            }
        }
    });
}
