//! What the learner's tests share: a world with scored events on Tansu and Redis, the
//! learner's checkpoint read back, and the expected join computed from the generator's
//! own output (independently of the learner).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir::config::WeirConfig;
use weir::stages::score::{spawn_pipeline, PipelineStats};
use weir::wiring::{connect_redis_store, load_model};
use weir_ingest::generator::{Content, GeneratedMessage};
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_online_learner::checkpoint::RedisCheckpoint;
use weir_online_learner::learner::LearnerState;
use weir_schemas::events::Label;

use crate::setup::one_record_per_batch;

/// 64-bit FNV-1a, written out here again so the expected fingerprint does not come from
/// the code under test.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The labels among generated messages.
pub fn labels(messages: &[GeneratedMessage]) -> Vec<Label> {
    messages
        .iter()
        .filter_map(|m| match &m.content {
            Content::Label(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

/// Count and fingerprint (wrapping sum of FNV-1a of the event ids) of a set of labels.
pub fn expected_learned(labels: &[Label]) -> (u64, u64) {
    (labels.len() as u64, labels.iter().fold(0u64, |acc, l| acc.wrapping_add(fnv1a(l.event_id.as_bytes()))))
}

/// Produces `messages`, then runs the scoring pipeline in process until `transactions`
/// scores are on the scores topic, and stops it.
///
/// The labels and the scores are written one record per batch: the learner's tests resume
/// a learner from committed offsets inside these topics ([`one_record_per_batch`]).
pub async fn produce_and_score(config: &WeirConfig, messages: Vec<GeneratedMessage>, transactions: u64) -> anyhow::Result<()> {
    let config = &WeirConfig { kafka: one_record_per_batch(&config.kafka), ..config.clone() };
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, &config.kafka.topics, messages.into_iter().map(Ok), None, |_| {}).await?;
    let store = Arc::new(connect_redis_store(config).await?);
    let model = Arc::new(load_model(config)?);
    let stats = Arc::new(PipelineStats::default());
    let shutdown = CancellationToken::new();
    let pipeline = spawn_pipeline(config.clone(), store, model, stats.clone(), shutdown.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    while PipelineStats::get(&stats.scored) < transactions {
        anyhow::ensure!(std::time::Instant::now() < deadline, "only {} of {transactions} scored", PipelineStats::get(&stats.scored));
        anyhow::ensure!(!pipeline.is_finished(), "the pipeline stopped early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    pipeline.await??;
    Ok(())
}

/// The learner's checkpointed state, if any.
pub async fn checkpoint_state(config: &WeirConfig) -> anyhow::Result<Option<LearnerState>> {
    let lc = weir::config::learner_config(config);
    let redis = config.redis.as_ref().ok_or_else(|| anyhow::anyhow!("no redis"))?;
    let cp = RedisCheckpoint::connect(&redis.url, &lc.key_prefix, &lc.name).await?;
    Ok(cp.load().await?.state)
}

/// The set-up of the whole-loop tests (`weir run` serving a registry while its learner
/// promotes): a registry under `dir` whose `fraud` champion is the shipped baseline as
/// `v1`, and a pipeline configuration tagged `tag` that serves it (polling every 200 ms)
/// with a learner that may promote once an hour after 2 000 labels beat the champion by
/// 0.05. Returns the configuration, unchecked, for the test to adjust.
pub fn promoting_loop_config(
    services: &crate::Services,
    dir: &std::path::Path,
    tag: &str,
) -> anyhow::Result<WeirConfig> {
    use weir_online_learner::config::LearnerConfig;
    let registry_dir = dir.join("registry");
    crate::models::publish_as(&registry_dir, "fraud", "v1", &crate::models::shipped("baseline"), |_, _| {})?;
    weir_schemas::registry::ModelRegistry::open(&registry_dir)?.promote("fraud", "v1", "baseline", "test")?;

    let mut config = crate::setup::pipeline_config(services, tag);
    config.scorer.registry = Some(registry_dir);
    config.scorer.registry_poll_ms = 200;
    // Not these tests' subject (and its alerts topic is not created here).
    config.monitor.enabled = false;
    let mut lc =
        LearnerConfig { group_id: crate::unique("learner"), key_prefix: crate::unique(tag), ..LearnerConfig::default() };
    lc.join.max_score_wait_secs = 86_400;
    lc.evaluation.windows = vec![2_000];
    lc.promotion.enabled = true;
    lc.promotion.min_labels = 2_000;
    lc.promotion.compare_labels = 2_000;
    lc.promotion.margin = 0.05;
    // One promotion in the hour: the later traffic must all be scored by that one.
    lc.promotion.max_per_hour = 1;
    config.learner = Some(lc);
    Ok(config)
}

/// Gives `config` a learner for the process tests (`weir learn` killed, paused, raced):
/// its own group and key prefix from `tag`, the given lease, joins bounded by a day so no
/// label of a minutes-long stream can be dropped, batches of 50 so faults land
/// mid-stream, and the given consumer session timeout. Checks it and writes it to `path`.
pub fn write_learner_config(
    config: &mut WeirConfig,
    tag: &str,
    lease: Duration,
    session_timeout: Duration,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let mut learner = weir_online_learner::config::LearnerConfig {
        group_id: crate::unique("learner"),
        key_prefix: crate::unique(tag),
        lease_ms: lease.as_millis() as u64,
        ..Default::default()
    };
    learner.join.max_score_wait_secs = 86_400;
    config.learner = Some(learner);
    config.kafka.batch.max_events = 50;
    config.kafka.consumer_properties.insert("session.timeout.ms".into(), session_timeout.as_millis().to_string());
    config.check()?;
    std::fs::write(path, toml::to_string(config)?)?;
    Ok(())
}
