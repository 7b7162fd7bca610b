//! Hot swap under load, against a real broker (Tansu) and a real Redis: 50 000 events
//! stream through the pipeline while the registry's champion is promoted twice and
//! rolled back once. Every event must be scored, none may fail, and every score must come
//! from a version that was live at the time — checked two ways: the versions on each
//! scores partition follow the promotion timeline in order, and re-scoring each event's
//! features with the version its score names gives the same probability.
//!
//! And the refusals: a corrupt file, a wrong feature list, a NaN-producing model and a
//! model with an op tract cannot run are each promoted while events flow; each is refused
//! before it serves, and the old version keeps scoring every event.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use tokio_util::sync::CancellationToken;
use weir::stages::registry_watch::{spawn_registry_watcher, WatcherStats};
use weir::stages::score::{spawn_pipeline, PipelineStats};
use weir::wiring::{connect_redis_store, feature_names, load_model};
use weir_ingest::generator::GeneratorConfig;
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::registry::ModelRegistry;
use weir_scorer::live::{load_version, LiveModel, Target};
use weir_scorer::model::LoadedModel;
use weir_tests::golden::{payload, read_topic};
use weir_tests::models::{publish_as, shipped};
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config, score_decoder};
use weir_tests::Services;

const MODEL: &str = "fraud";

/// Waits until `cond` holds, failing after `timeout` with `what`.
async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Position of each score in the timeline of champions: the versions seen along one
/// scores partition must walk the timeline forwards, never back.
fn follows_timeline(seen: &[String], timeline: &[&str]) -> Result<(), String> {
    let mut at = 0;
    for (i, v) in seen.iter().enumerate() {
        if timeline[at] == v {
            continue;
        }
        match timeline[at + 1..].iter().position(|t| t == v) {
            Some(skip) => at += 1 + skip,
            None => return Err(format!("score {i} is from {v} after {} (timeline {timeline:?})", timeline[at])),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_events_through_two_promotions_and_a_rollback() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,weir=info").with_test_writer().try_init();
    let services = Services::start()?;
    let registry_dir = tempfile::tempdir()?;
    let root = registry_dir.path();
    let mut config = pipeline_config(&services, "hot-swap");
    config.scorer.registry = Some(root.to_path_buf());
    config.scorer.registry_poll_ms = 50;
    config.check()?;
    create_pipeline_topics(&services, &config, 4).await?;

    // Three different models: the baseline logistic regression, the MLP, and a more
    // strongly regularized logistic regression.
    publish_as(root, MODEL, "v1", &shipped("baseline"), |_, _| {})?;
    publish_as(root, MODEL, "v2", &shipped("mlp"), |_, _| {})?;
    publish_as(root, MODEL, "v3", &shipped("logistic"), |_, _| {})?;
    let registry = ModelRegistry::open(root)?;
    registry.promote(MODEL, "v1", "test", "test")?;

    const N: usize = 50_000;
    let (messages, valid) = generate(GeneratorConfig::new(4_2026, weir_schemas::now_ms() - 3_600_000, N as u64))?;
    assert_eq!(valid.len(), N);
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, &config.kafka.topics, messages.into_iter().map(Ok), None, |_| {}).await?;

    let store = Arc::new(connect_redis_store(&config).await?);
    let live = Arc::new(LiveModel::new(Arc::new(load_model(&config)?)));
    assert_eq!(live.current().version(), "v1");
    let stats = Arc::new(PipelineStats::default());
    let watcher_stats = Arc::new(WatcherStats::default());
    let shutdown = CancellationToken::new();
    let watcher = spawn_registry_watcher(&config, Target::Champion(live.clone()), watcher_stats.clone(), shutdown.clone())?;
    let pipeline = spawn_pipeline(config.clone(), store, live.clone(), stats.clone(), shutdown.clone());

    // The lifecycle, driven by how far the stream has got: v1 → v2 → v3 → (rollback) v2.
    let timeline = ["v1", "v2", "v3", "v2"];
    let scored = || PipelineStats::get(&stats.scored) as usize;
    let mut swapped_at = Vec::new();
    for (step, at) in [(1usize, 8_000usize), (2, 18_000), (3, 30_000)] {
        wait_for(&format!("{at} events scored"), Duration::from_secs(240), || scored() >= at).await?;
        if step == 3 {
            let back_to = registry.rollback(MODEL, "test", "test")?;
            assert_eq!(back_to.to, "v2");
        } else {
            registry.promote(MODEL, timeline[step], "test", "test")?;
        }
        wait_for("the watcher to swap", Duration::from_secs(60), || {
            watcher_stats.swaps.load(Ordering::Relaxed) as usize == step
        })
        .await?;
        assert_eq!(live.current().version(), timeline[step]);
        swapped_at.push(scored());
    }
    assert!(scored() < N, "the stream ended before the last swap: the test proves nothing");

    let decoder = score_decoder()?;
    let (brokers, topic) = (services.brokers.clone(), config.kafka.topics.scores.clone());
    let scores = tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, Duration::from_secs(300), |m| m.len() >= N))
        .await??;
    shutdown.cancel();
    let loop_stats = pipeline.await??;
    watcher.await?;

    // Every version re-loaded from the registry, to re-score with.
    let names = feature_names(&config);
    let models: HashMap<&str, LoadedModel> = ["v1", "v2", "v3"]
        .into_iter()
        .map(|v| Ok((v, load_version(root, MODEL, v, &names, &[1, 16, 64])?)))
        .collect::<anyhow::Result<_>>()?;

    let mut per_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut times_scored: HashMap<String, usize> = HashMap::new();
    let mut by_version: BTreeMap<String, usize> = BTreeMap::new();
    let mut worst = 0f64;
    for m in &scores {
        let s = decoder.decode(payload(m))?;
        *times_scored.entry(s.event_id.clone()).or_default() += 1;
        *by_version.entry(s.model_version.clone()).or_default() += 1;
        per_partition.entry(m.partition()).or_default().push(s.model_version.clone());
        let model = models.get(s.model_version.as_str()).ok_or_else(|| anyhow::anyhow!("unknown version {}", s.model_version))?;
        let row: Vec<f32> = s.features.iter().map(|f| f.value as f32).collect();
        let again = f64::from(model.score(&row)?[0]);
        worst = worst.max((again - s.value()).abs());
        assert_eq!(s.reasons.len(), 3, "{}: reasons {:?}", s.event_id, s.reasons);
    }
    let missing = valid.iter().filter(|tx| !times_scored.contains_key(&tx.event_id)).count();
    let duplicated = times_scored.values().filter(|&&n| n > 1).count();
    eprintln!(
        "hot swap: {} events, {} scores, by version {by_version:?}, swaps after {swapped_at:?} scored, \
         missing {missing}, duplicated {duplicated}, retried batches {}, re-score max |diff| {worst:e}",
        N,
        scores.len(),
        loop_stats.retries
    );
    assert_eq!(missing, 0, "events without a score");
    assert_eq!(loop_stats.retries, 0, "a batch failed during the swaps");
    assert_eq!(loop_stats.dead_lettered, 0);
    // A clean run (no crash, no retry) scores each event once.
    assert_eq!(duplicated, 0, "events scored twice without a replay");
    assert!(worst <= 1e-6, "a score differs from its version's by {worst}");
    for v in ["v1", "v2", "v3"] {
        assert!(by_version.get(v).copied().unwrap_or(0) > 0, "no event scored by {v}: {by_version:?}");
    }
    for (p, seen) in &per_partition {
        follows_timeline(seen, &timeline).map_err(|e| anyhow::anyhow!("scores partition {p}: {e}"))?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_versions_are_refused_and_the_old_one_keeps_serving() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_env_filter("warn,weir=info").with_test_writer().try_init();
    let services = Services::start()?;
    let registry_dir = tempfile::tempdir()?;
    let root = registry_dir.path();
    let mut config = pipeline_config(&services, "refusals");
    config.scorer.registry = Some(root.to_path_buf());
    config.scorer.registry_poll_ms = 50;
    create_pipeline_topics(&services, &config, 2).await?;

    publish_as(root, MODEL, "v1", &shipped("baseline"), |_, _| {})?;
    // A flipped byte in the ONNX file, after its checksum was taken.
    publish_as(root, MODEL, "corrupt", &shipped("baseline"), |_, onnx| onnx[120] ^= 0x55)?;
    publish_as(root, MODEL, "wrong-features", &shipped("baseline"), |meta, _| meta.feature_names.swap(4, 5))?;
    publish_as(root, MODEL, "nan", &shipped("nan"), |_, _| {})?;
    publish_as(root, MODEL, "scaler", &shipped("scaler"), |_, _| {})?;
    let registry = ModelRegistry::open(root)?;
    registry.promote(MODEL, "v1", "test", "test")?;

    const N: usize = 6_000;
    let (messages, valid) = generate(GeneratorConfig::new(77, weir_schemas::now_ms() - 3_600_000, N as u64))?;
    let producer = EventProducer::new(&config.kafka)?;
    let store = Arc::new(connect_redis_store(&config).await?);
    let live = Arc::new(LiveModel::new(Arc::new(load_model(&config)?)));
    let stats = Arc::new(PipelineStats::default());
    let watcher_stats = Arc::new(WatcherStats::default());
    let shutdown = CancellationToken::new();
    let watcher = spawn_registry_watcher(&config, Target::Champion(live.clone()), watcher_stats.clone(), shutdown.clone())?;
    let pipeline = spawn_pipeline(config.clone(), store, live.clone(), stats.clone(), shutdown.clone());
    // Events flow while the broken versions are promoted.
    let topics = config.kafka.topics.clone();
    let feeder = tokio::spawn(async move {
        produce_all(&producer, &topics, messages.into_iter().map(Ok), Some(3_000.0), |_| {}).await
    });

    let mut refusals = Vec::new();
    for (i, (version, reason)) in
        [("corrupt", "checksum"), ("wrong-features", "column 4"), ("nan", "canary"), ("scaler", "Scaler")]
            .into_iter()
            .enumerate()
    {
        registry.promote(MODEL, version, "test", "test")?;
        wait_for(&format!("{version} to be refused"), Duration::from_secs(60), || {
            watcher_stats.refused.load(Ordering::Relaxed) as usize == i + 1
        })
        .await?;
        let message = watcher_stats.last_refusal.lock().unwrap().clone().unwrap_or_default();
        assert!(message.contains(version) && message.contains(reason), "{version}: {message}");
        assert_eq!(live.current().version(), "v1", "{version} serves");
        refusals.push(message);
    }
    feeder.await??;
    let decoder = score_decoder()?;
    let (brokers, topic) = (services.brokers.clone(), config.kafka.topics.scores.clone());
    let scores = tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, Duration::from_secs(120), |m| m.len() >= N))
        .await??;
    shutdown.cancel();
    let loop_stats = pipeline.await??;
    watcher.await?;
    assert_eq!(watcher_stats.swaps.load(Ordering::Relaxed), 0);
    let mut ids = std::collections::HashSet::new();
    for m in &scores {
        let s = decoder.decode(payload(m))?;
        assert_eq!(s.model_version, "v1");
        assert!(s.value().is_finite());
        ids.insert(s.event_id);
    }
    assert_eq!(valid.iter().filter(|tx| !ids.contains(&tx.event_id)).count(), 0, "events without a score");
    assert_eq!(loop_stats.retries, 0);
    eprintln!("refusals while {} events were scored by v1:\n  {}", ids.len(), refusals.join("\n  "));
    Ok(())
}
