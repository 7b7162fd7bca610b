//! Shadow scoring against a real broker and Redis: a deliberately slow challenger (the
//! random forest — tract's tree ensemble runs at hundreds of µs per row — with occlusion
//! reason codes, ten rows per event) shadows the baseline champion. The champion must
//! score every event exactly as without a challenger; every event is accounted for on
//! the shadow side (scored, or dropped because the queue was full); what reached the
//! shadow topic carries the challenger's version. Champion throughput with and without
//! the challenger is printed as a ratio (figures, not a pass/fail condition).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use weir::config::WeirConfig;
use weir::stages::score::{spawn_pipeline, PipelineStats};
use weir::wiring::{connect_redis_store, load_model};
use weir_ingest::generator::GeneratorConfig;
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::registry::ModelRegistry;
use weir_tests::golden::{payload, read_topic};
use weir_tests::models::{publish_as, shipped};
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config, score_decoder};
use weir_tests::{unique, Services};

const N: usize = 8_000;

struct Run {
    champion_ids: HashSet<String>,
    champion_versions: HashSet<String>,
    shadow: Vec<(String, String)>,
    stats: Arc<PipelineStats>,
    events_per_sec: f64,
}

async fn run(services: &Services, config: WeirConfig, seed: u64) -> anyhow::Result<Run> {
    create_pipeline_topics(services, &config, 2).await?;
    services.create_topics(&[&config.scorer.shadow_topic], 2).await?;
    let (messages, _) = generate(GeneratorConfig::new(seed, weir_schemas::now_ms() - 3_600_000, N as u64))?;
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, &config.kafka.topics, messages.into_iter().map(Ok), None, |_| {}).await?;
    let store = Arc::new(connect_redis_store(&config).await?);
    let model = Arc::new(load_model(&config)?);
    let stats = Arc::new(PipelineStats::default());
    let shutdown = CancellationToken::new();
    let pipeline = spawn_pipeline(config.clone(), store, model, stats.clone(), shutdown.clone());
    let (brokers, topic) = (services.brokers.clone(), config.kafka.topics.scores.clone());
    let scores = tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, Duration::from_secs(180), |m| m.len() >= N))
        .await??;
    let span = stats.active_span().unwrap_or_default();
    // Let the shadow queue drain what it holds before stopping.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let s = &stats.shadow;
        let accounted = s.scored.load(Ordering::Relaxed)
            + s.dropped.load(Ordering::Relaxed)
            + s.failed.load(Ordering::Relaxed)
            + s.skipped.load(Ordering::Relaxed);
        if accounted as usize >= N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    let loop_stats = pipeline.await??;
    anyhow::ensure!(loop_stats.retries == 0, "champion batches retried: {}", loop_stats.retries);
    let decoder = score_decoder()?;
    let mut champion_ids = HashSet::new();
    let mut champion_versions = HashSet::new();
    for m in &scores {
        let s = decoder.decode(payload(m))?;
        champion_ids.insert(s.event_id);
        champion_versions.insert(s.model_version);
    }
    let expected_shadow = stats.shadow.scored.load(Ordering::Relaxed) as usize;
    let (brokers, topic) = (services.brokers.clone(), config.scorer.shadow_topic.clone());
    let shadow_messages = tokio::task::spawn_blocking(move || {
        read_topic(&brokers, &topic, Duration::from_secs(if expected_shadow > 0 { 60 } else { 3 }), |m| m.len() >= expected_shadow)
    })
    .await??;
    let mut shadow = Vec::new();
    for m in &shadow_messages {
        let s = decoder.decode(payload(m))?;
        shadow.push((s.event_id, s.model_version));
    }
    Ok(Run { champion_ids, champion_versions, shadow, stats, events_per_sec: N as f64 / span.as_secs_f64().max(1e-9) })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_challenger_never_delays_or_breaks_the_champion() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let services = Services::start()?;
    let registry_dir = tempfile::tempdir()?;
    let root = registry_dir.path();
    publish_as(root, "fraud", "v1", &shipped("baseline"), |_, _| {})?;
    publish_as(root, "fraud", "forest-v1", &shipped("forest"), |_, _| {})?;
    let registry = ModelRegistry::open(root)?;
    registry.promote("fraud", "v1", "test", "test")?;

    let configure = |name: &str| {
        let mut c = pipeline_config(&services, name);
        c.scorer.registry = Some(root.to_path_buf());
        c.scorer.registry_poll_ms = 50;
        c.scorer.shadow_topic = unique("scores-shadow");
        c.scorer.shadow_queue_batches = 2;
        c
    };

    // Without a challenger.
    let alone = run(&services, configure("shadow-off"), 11).await?;
    assert_eq!(alone.champion_ids.len(), N);
    assert_eq!(alone.stats.shadow.skipped.load(Ordering::Relaxed) as usize, N, "no challenger: every batch skipped");
    assert!(alone.shadow.is_empty());

    // With the slow challenger.
    registry.set_challenger("fraud", Some("forest-v1"))?;
    let shadowed = run(&services, configure("shadow-on"), 11).await?;
    let s = &shadowed.stats.shadow;
    let (scored, dropped, failed, skipped) = (
        s.scored.load(Ordering::Relaxed) as usize,
        s.dropped.load(Ordering::Relaxed) as usize,
        s.failed.load(Ordering::Relaxed) as usize,
        s.skipped.load(Ordering::Relaxed) as usize,
    );
    eprintln!(
        "shadow: champion alone {:.0} events/s, with the slow challenger {:.0} events/s (ratio {:.3}); \
         champion p50 latency alone {} µs, shadowed {} µs; shadow scored {scored}, dropped {dropped}, failed {failed}, skipped {skipped}",
        alone.events_per_sec,
        shadowed.events_per_sec,
        shadowed.events_per_sec / alone.events_per_sec,
        alone.stats.latency.percentiles().p50_us,
        shadowed.stats.latency.percentiles().p50_us,
    );
    // The champion: every event, its own version only.
    assert_eq!(shadowed.champion_ids.len(), N, "champion events missing");
    assert_eq!(shadowed.champion_versions, HashSet::from(["v1".to_string()]));
    // The shadow side accounts for every event, and what it delivered is the challenger's.
    // (Batches before the challenger watcher's first poll are skipped.)
    assert_eq!(scored + dropped + failed + skipped, N, "shadow events unaccounted for");
    assert_eq!(failed, 0);
    assert!(scored > 0, "the challenger scored nothing");
    assert_eq!(shadowed.shadow.len(), scored, "shadow topic holds what was counted as scored");
    assert!(shadowed.shadow.iter().all(|(id, v)| v == "forest-v1" && shadowed.champion_ids.contains(id)));
    Ok(())
}
