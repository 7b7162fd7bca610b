//! What the learner's tests share: a world with scored events on Tansu and Redis, the
//! learner's checkpoint read back, and the expected join computed from the generator's
//! own output (independently of the learner).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir::config::WeirConfig;
use weir::pipeline::{connect_redis_store, load_model, spawn_pipeline, PipelineStats};
use weir_ingest::generator::{Content, GeneratedMessage};
use weir_ingest::produce::produce_all;
use weir_ingest::producer::EventProducer;
use weir_online_learner::checkpoint::RedisCheckpoint;
use weir_online_learner::learner::LearnerState;
use weir_schemas::events::Label;

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
pub async fn produce_and_score(config: &WeirConfig, messages: Vec<GeneratedMessage>, transactions: u64) -> anyhow::Result<()> {
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
    let lc = weir::learn::learner_config(config);
    let redis = config.redis.as_ref().ok_or_else(|| anyhow::anyhow!("no redis"))?;
    let cp = RedisCheckpoint::connect(&redis.url, &lc.key_prefix, &lc.name).await?;
    Ok(cp.load().await?.state)
}
