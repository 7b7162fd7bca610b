//! `weir run` serves Prometheus metrics: after a stream with poison through Tansu and
//! Redis, `/metrics` holds the main series with the right counts.

use std::time::{Duration, Instant};

use weir::config::MetricsConfig;
use weir_ingest::generator::{Content, GeneratorConfig};
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_tests::golden::read_topic;
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config};
use weir_tests::{free_port, scrape_metrics as scrape, Services, WeirProcess};

/// The value of the first sample line starting with `series` (name plus labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_endpoint_counts_the_stream() -> anyhow::Result<()> {
    let services = Services::start()?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut config = pipeline_config(&services, "metrics");
    config.metrics = MetricsConfig { listen: Some(format!("127.0.0.1:{port}")) };
    config.check()?;
    let path = dir.path().join("weir.toml");
    std::fs::write(&path, toml::to_string(&config)?)?;
    let topics = &config.kafka.topics;
    create_pipeline_topics(&services, &config, 2).await?;

    let mut generator_config = GeneratorConfig::new(11, weir_schemas::now_ms() - 3_600_000, 2_000);
    generator_config.poison_rate = 0.05;
    let (messages, _) = generate(generator_config)?;
    let poison = messages.iter().filter(|m| matches!(m.content, Content::Poison(_))).count();
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, topics, messages.into_iter().map(Ok), None, |_| {}).await?;

    let path_arg = path.to_string_lossy().to_string();
    let weir = WeirProcess::spawn(&["run", "--config", &path_arg], dir.path().join("weir.log"))?;
    let (brokers, scores) = (services.brokers.clone(), topics.scores.clone());
    tokio::task::spawn_blocking(move || read_topic(&brokers, &scores, Duration::from_secs(120), |m| m.len() >= 2_000))
        .await?
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", weir.log_text()))?;

    // Counters are updated right after delivery; give the last batch a moment to land.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = scrape(port)?;
        if sample(&text, "weir_events_scored_total") == Some(2_000.0) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let status = weir.interrupt(Duration::from_secs(30))?;
    assert!(status.success());

    assert!(text.starts_with("HTTP/1."), "{text}");
    assert_eq!(sample(&text, "weir_events_scored_total"), Some(2_000.0), "{text}");
    assert_eq!(sample(&text, "weir_events_received_total"), Some((2_000 + poison) as f64), "{text}");
    let dead: f64 = ["Malformed", "UnknownSchema", "Invalid"]
        .iter()
        .filter_map(|c| sample(&text, &format!("weir_events_dead_lettered_total{{class=\"{c}\"}}")))
        .sum();
    assert_eq!(dead, poison as f64, "{text}");
    assert!(text.contains("weir_model_info{model=\"fraud-baseline\",version=\"v1\"} 1"), "{text}");
    for series in ["weir_event_latency_seconds", "weir_model_batch_seconds", "weir_batch_size", "weir_batches_total"] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
    Ok(())
}
