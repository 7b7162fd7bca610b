//! The whole loop on the real binary: `weir run` scores with the registry's champion (the
//! baseline) and runs the learner next to it; after the concept change the learner
//! publishes and promotes its model in the registry, and the scorer hot-swaps to it —
//! transactions produced after the promotion are scored by the learner's version.

use std::time::Duration;

use weir_ingest::generator::GeneratorConfig;
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::registry::ModelRegistry;
use weir_tests::golden::{payload, read_topic};
use weir_tests::setup::{create_pipeline_topics, generate, score_decoder};
use weir_tests::learning::promoting_loop_config;
use weir_tests::{Services, WeirProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_run_learns_promotes_and_the_scorer_swaps_to_the_learned_model() -> anyhow::Result<()> {
    let services = Services::start()?;
    let dir = tempfile::tempdir()?;
    let config = promoting_loop_config(&services, dir.path(), "loop")?;
    let registry_dir = config.scorer.registry.clone().expect("a registry");
    let registry = ModelRegistry::open(&registry_dir)?;
    config.check()?;
    create_pipeline_topics(&services, &config, 4).await?;
    let path = dir.path().join("weir.toml");
    std::fs::write(&path, toml::to_string(&config)?)?;

    // The concept-change stream, then the pipeline with its learner.
    let start = weir_schemas::now_ms() - 2 * 3_600_000;
    let g = GeneratorConfig { event_rate: 5.0, concept_change_at: Some(10_000), ..GeneratorConfig::new(8080, start, 20_000) };
    let (messages, _) = generate(g)?;
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, &config.kafka.topics, messages.into_iter().map(Ok), None, |_| {}).await?;
    let mut process = WeirProcess::spawn(&["run", "--config", &path.to_string_lossy()], dir.path().join("weir.log"))?;

    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let promoted = loop {
        let champion = registry.champion("fraud")?.unwrap_or_default();
        if champion != "v1" {
            break champion;
        }
        anyhow::ensure!(process.exited()?.is_none(), "weir run exited:\n{}", process.log_text());
        anyhow::ensure!(std::time::Instant::now() < deadline, "no promotion within 240 s:\n{}", process.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let history = std::fs::read_to_string(registry_dir.join("fraud/history.jsonl"))?;
    eprintln!("promoted {promoted}; registry history:\n{history}");
    let meta = registry.metadata("fraud", &promoted)?;
    assert_eq!(meta.lineage.parent_version.as_deref(), Some("v1"));
    assert!(history.contains("weir-online-learner"), "{history}");

    // Give the scorer a few polls, then new traffic: scored by the learned model.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = GeneratorConfig { event_rate: 5.0, ..GeneratorConfig::new(9090, start + 4_200_000, 300) };
    let (more, more_tx) = generate(later)?;
    produce_all(&producer, &config.kafka.topics, more.into_iter().map(Ok), None, |_| {}).await?;
    let ids: std::collections::HashSet<String> = more_tx.iter().map(|t| t.event_id.clone()).collect();
    let decoder = score_decoder()?;
    let (brokers, topic) = (services.brokers.clone(), config.kafka.topics.scores.clone());
    let want = promoted.clone();
    let versions = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut versions = Vec::new();
        let mut seen = 0;
        read_topic(&brokers, &topic, Duration::from_secs(120), |m| {
            for msg in &m[seen..] {
                if let Ok(s) = decoder.decode(payload(msg))
                    && ids.contains(&s.event_id)
                {
                    versions.push(s.model_version);
                }
            }
            seen = m.len();
            versions.len() >= ids.len()
        })?;
        Ok(versions)
    })
    .await??;
    let by_learned = versions.iter().filter(|v| **v == want).count();
    eprintln!("{} later transactions scored, {by_learned} by {want}", versions.len());
    let log = process.log.clone();
    let status = process.interrupt(Duration::from_secs(30)).map_err(|e| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        anyhow::anyhow!("{e}; last log lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
    })?;
    anyhow::ensure!(status.success(), "weir run exited with {status}:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(by_learned, versions.len(), "transactions after the promotion should be scored by {want}: {versions:?}");
    Ok(())
}
