//! Automatic rollback, live on the real binary: `weir run` serves the baseline (v1) and
//! runs its learner; after the concept change the learner promotes its model and the
//! scorer hot-swaps to it. Then the world turns against the promoted model — the next
//! transactions' labels contradict it (the ones it scored lowest turn out to be the
//! frauds), constructed so its live AUC is ~0, far below what v1 showed when replaced.
//! The learner's watch sees that over `rollback_labels` labels served by the promoted version and rolls the registry
//! back to v1; the scorer swaps back, and every transaction scored after that carries v1
//! (the hourly cap keeps the learner from promoting again).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use weir_ingest::generator::{Content, GeneratorConfig, Stream};
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::registry::{ChampionAction, ModelRegistry};
use weir_schemas::wire::{subjects, Encoder, LocalSchemaRegistry};
use weir_tests::golden::{payload, read_topic};
use weir_tests::learning::{checkpoint_state, produce_and_score, promoting_loop_config};
use weir_tests::setup::{create_pipeline_topics, generate, score_decoder};
use weir_tests::{Services, WeirProcess};

const SWAPPED: &str = "model version swapped in";

/// Waits for `done`, failing early if `weir run` exits.
async fn wait(process: &mut WeirProcess, what: &str, timeout: Duration, mut done: impl FnMut(&str) -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let log = process.log_plain();
        if done(&log)? {
            return Ok(());
        }
        anyhow::ensure!(process.exited()?.is_none(), "weir run exited while waiting for {what}:\n{log}");
        anyhow::ensure!(std::time::Instant::now() < deadline, "{what}: not within {timeout:?}:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Model version and score of each of `ids` on the scores topic, once all are there.
async fn scores_of(brokers: &str, topic: &str, ids: HashSet<String>) -> anyhow::Result<HashMap<String, (String, f64)>> {
    let decoder = score_decoder()?;
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let mut found = HashMap::new();
        let mut seen = 0;
        read_topic(&brokers, &topic, Duration::from_secs(120), |m| {
            for msg in &m[seen..] {
                if let Ok(s) = decoder.decode(payload(msg))
                    && ids.contains(&s.event_id)
                {
                    let value = s.value();
                    found.insert(s.event_id, (s.model_version, value));
                }
            }
            seen = m.len();
            found.len() >= ids.len()
        })?;
        anyhow::ensure!(found.len() == ids.len(), "{} of {} scores found", found.len(), ids.len());
        Ok(found)
    })
    .await?
}

/// The scorer's last swap went to `version`.
fn last_swap_to(log: &str, version: &str) -> bool {
    log.lines().rev().find(|l| l.contains(SWAPPED)).is_some_and(|l| l.contains(&format!("to={version}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_model_that_does_worse_live_is_rolled_back_and_v1_serves_again() -> anyhow::Result<()> {
    let services = Services::start()?;
    let dir = tempfile::tempdir()?;
    let mut config = promoting_loop_config(&services, dir.path(), "rollback")?;
    let registry = ModelRegistry::open(config.scorer.registry.as_ref().expect("a registry"))?;
    let lc = config.learner.as_mut().expect("a learner");
    lc.promotion.rollback_labels = 1_500;
    lc.promotion.rollback_margin = 0.05;
    config.check()?;
    create_pipeline_topics(&services, &config, 4).await?;
    let path = dir.path().join("weir.toml");
    std::fs::write(&path, toml::to_string(&config)?)?;

    let start = weir_schemas::now_ms() - 2 * 3_600_000;
    let g = GeneratorConfig { event_rate: 5.0, concept_change_at: Some(10_000), ..GeneratorConfig::new(8080, start, 20_000) };
    let (messages, _) = generate(g)?;
    // Scored by v1 first (the pipeline in process, same consumer group as `weir run`'s
    // scorer, which then goes on from there): so the learner's promotion cannot come
    // before this stream is scored, and only traffic produced after the promotion is
    // served by the promoted version — the watch sees exactly the adverse traffic below.
    produce_and_score(&config, messages, 20_000).await?;
    let producer = EventProducer::new(&config.kafka)?;
    let mut process = WeirProcess::spawn(&["run", "--config", &path.to_string_lossy()], dir.path().join("weir.log"))?;

    // 1. The learner promotes after the concept change; the scorer swaps to it.
    let mut promoted = String::new();
    wait(&mut process, "a promotion", Duration::from_secs(240), |_| {
        promoted = registry.champion("fraud")?.unwrap_or_default();
        Ok(promoted != "v1")
    })
    .await?;
    wait(&mut process, "the swap to the promoted version", Duration::from_secs(60), |log| Ok(last_swap_to(log, &promoted))).await?;

    // 2. Traffic whose labels contradict the promoted model: the transactions first; once
    //    they are scored (by the promoted version), their labels, set from the scores it
    //    served — the lowest-scored tenth are the frauds. Its live AUC is then ~0 whatever
    //    it learned, far below what v1 showed when it was replaced.
    let g = GeneratorConfig { event_rate: 5.0, concept_change_at: Some(0), ..GeneratorConfig::new(9090, start + 4_200_000, 3_000) };
    let (adverse, adverse_tx) = generate(g)?;
    let (adverse_labels, adverse_txs): (Vec<_>, Vec<_>) = adverse.into_iter().partition(|m| m.stream == Stream::Labels);
    produce_all(&producer, &config.kafka.topics, adverse_txs.into_iter().map(Ok), None, |_| {}).await?;
    let adverse_ids: HashSet<String> = adverse_tx.iter().map(|t| t.event_id.clone()).collect();
    let served = scores_of(&services.brokers, &config.kafka.topics.scores, adverse_ids).await?;
    let by_promoted = served.values().filter(|(v, _)| *v == promoted).count();
    let mut sorted: Vec<f64> = served.values().map(|(_, s)| *s).collect();
    sorted.sort_by(f64::total_cmp);
    let cut = sorted[sorted.len() / 10];
    let schemas = LocalSchemaRegistry::embedded()?;
    let label_encoder = Encoder::new(&schemas, subjects::LABEL)?;
    let adverse_labels: Vec<_> = adverse_labels
        .into_iter()
        .map(|mut m| {
            if let Content::Label(l) = &mut m.content {
                l.is_fraud = served.get(&l.event_id).is_some_and(|(_, s)| *s < cut);
                m.payload = label_encoder.encode(l)?;
            }
            anyhow::Ok(m)
        })
        .collect::<anyhow::Result<_>>()?;
    produce_all(&producer, &config.kafka.topics, adverse_labels.into_iter().map(Ok), None, |_| {}).await?;

    // 3. The watch rolls back to v1, as the learner (not by hand), and the scorer follows.
    wait(&mut process, "the rollback", Duration::from_secs(180), |_| Ok(registry.champion("fraud")?.as_deref() == Some("v1"))).await?;
    let history = registry.history("fraud")?;
    let last = history.last().ok_or_else(|| anyhow::anyhow!("no history"))?;
    eprintln!("rollback: {} -> {}: {}", last.from.as_deref().unwrap_or("-"), last.to, last.reason);
    assert_eq!(last.action, ChampionAction::Rollback, "{history:?}");
    assert_eq!((last.from.as_deref(), last.to.as_str(), last.actor.as_str()), (Some(promoted.as_str()), "v1", weir::stages::promote::ACTOR));
    wait(&mut process, "the swap back to v1", Duration::from_secs(60), |log| Ok(last_swap_to(log, "v1"))).await?;

    // 4. Every transaction scored from now on carries v1 (one promotion per hour: the
    //    learner does not promote again).
    let later = GeneratorConfig { event_rate: 5.0, ..GeneratorConfig::new(7070, start + 5_000_000, 300) };
    let (more, more_tx) = generate(later)?;
    produce_all(&producer, &config.kafka.topics, more.into_iter().map(Ok), None, |_| {}).await?;
    let ids: HashSet<String> = more_tx.iter().map(|t| t.event_id.clone()).collect();
    let expected_later = ids.len();
    let versions: Vec<String> =
        scores_of(&services.brokers, &config.kafka.topics.scores, ids).await?.into_values().map(|(v, _)| v).collect();
    eprintln!(
        "adverse transactions: {} scored, {by_promoted} by {promoted}; after the rollback: {} scored, {} by v1",
        served.len(),
        versions.len(),
        versions.iter().filter(|v| *v == "v1").count()
    );
    let state = checkpoint_state(&config).await?.ok_or_else(|| anyhow::anyhow!("no checkpoint"))?;
    let log = process.log.clone();
    let status = process.interrupt(Duration::from_secs(30))?;
    anyhow::ensure!(status.success(), "weir run exited with {status}:\n{}", std::fs::read_to_string(&log).unwrap_or_default());

    assert_eq!(by_promoted, served.len(), "the adverse traffic is served by {promoted}");
    assert_eq!(versions.len(), expected_later);
    assert!(versions.iter().all(|v| v == "v1"), "transactions after the rollback must be scored by v1: {versions:?}");
    let p = &state.promotion;
    assert_eq!((p.rollbacks, p.champion_version.as_deref(), p.watch.is_none()), (1, Some("v1"), true), "{p:?}");
    assert_eq!(registry.champion("fraud")?.as_deref(), Some("v1"));
    Ok(())
}
