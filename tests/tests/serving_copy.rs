//! Redis as the serving copy of the state kept in process (`state.mode = "local"`), through
//! the faults that lose it: mid-stream, Redis is emptied with `FLUSHALL`, and later
//! restarted without persistence (every key gone again). Scoring must never stop, and
//! once the stream is scored every card's hash in Redis must equal one clean pass over
//! the events, rebuilt from the process's state (including cards with no event after the
//! loss). The serving copy's lag behind the stream is read from `/metrics` and printed.

use std::time::{Duration, Instant};

use weir::config::MetricsConfig;
use weir::wiring::store_keys;
use weir_ingest::generator::GeneratorConfig;
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_tests::golden::{default_windows, expected_card_features, payload, read_topic, redis_feature_differences};
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config, score_decoder};
use weir_tests::{free_port, scrape_metrics as scrape, Services, WeirProcess};

/// Reads the scores topic until `n` distinct events have a score; returns how many.
fn wait_for_scores(brokers: &str, topic: &str, n: usize) -> anyhow::Result<usize> {
    let decoder = score_decoder()?;
    let mut ids = std::collections::HashSet::new();
    let mut decoded = 0;
    read_topic(brokers, topic, Duration::from_secs(120), |m| {
        for msg in &m[decoded..] {
            if let Ok(s) = decoder.decode(payload(msg)) {
                ids.insert(s.event_id);
            }
        }
        decoded = m.len();
        ids.len() >= n
    })?;
    Ok(ids.len())
}

async fn flushall(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    redis::cmd("FLUSHALL").query_async::<()>(&mut con).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flushed_and_restarted_empty_the_copy_is_rebuilt_and_scoring_never_stops() -> anyhow::Result<()> {
    const EVENTS: u64 = 20_000;
    let mut services = Services::start()?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut config = pipeline_config(&services, "serving");
    config.metrics = MetricsConfig { listen: Some(format!("127.0.0.1:{port}")) };
    config.monitor.enabled = false;
    create_pipeline_topics(&services, &config, 4).await?;
    let path = dir.path().join("weir.toml");
    std::fs::write(&path, toml::to_string(&config)?)?;
    let (messages, valid) = generate(GeneratorConfig::new(99, weir_schemas::now_ms() - 3_600_000, EVENTS))?;

    let process = WeirProcess::spawn(&["run", "--config", &path.to_string_lossy()], dir.path().join("weir.log"))?;
    let producer = EventProducer::new(&config.kafka)?;
    let topics = config.kafka.topics.clone();
    // Paced, so that the losses happen while events flow: about 8 s in all.
    let produced = tokio::spawn(async move { produce_all(&producer, &topics, messages.into_iter().map(Ok), Some(2_500.0), |_| {}).await });

    let (brokers, scores_topic) = (services.brokers.clone(), config.kafka.topics.scores.clone());
    let wait_for = |n: usize| {
        let (brokers, topic) = (brokers.clone(), scores_topic.clone());
        async move { tokio::task::spawn_blocking(move || wait_for_scores(&brokers, &topic, n)).await? }
    };

    let before_flush = wait_for(valid.len() / 4).await?;
    flushall(&services.redis_url).await?;
    let before_restart = wait_for(valid.len() / 2).await?;
    services.restart_redis()?;
    produced.await??;
    let all = wait_for(valid.len()).await?;
    eprintln!("scored {before_flush} before FLUSHALL, {before_restart} before the restart, {all} in all");

    // The copy catches up behind the stream: poll until it equals the clean pass.
    let expected = expected_card_features(&valid, &default_windows(), config.features.allowed_lateness_ms());
    let keys = store_keys(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let differences = loop {
        let differences = redis_feature_differences(&services.redis_url, &keys, &expected).await?;
        if differences.is_empty() || Instant::now() > deadline {
            break differences;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let metrics = scrape(port)?;
    let lines: Vec<&str> = metrics.lines().filter(|l| l.starts_with("weir_serving_copy")).collect();
    eprintln!("serving copy metrics:\n{}", lines.join("\n"));
    let status = process.interrupt(Duration::from_secs(30))?;
    let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap_or_default();
    anyhow::ensure!(status.success(), "weir run exited with {status}\n{log}");
    eprintln!("cards {}, differences {}", expected.len(), differences.len());
    assert!(differences.is_empty(), "the serving copy differs from one clean pass: {:?}", &differences[..differences.len().min(5)]);
    let resyncs = log.matches("rewriting every entity").count();
    // One at the first start (no marker yet), one per loss.
    assert!(resyncs >= 3, "expected a rewrite after each loss, saw {resyncs}\n{log}");
    Ok(())
}
