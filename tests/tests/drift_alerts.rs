//! Drift injected at a known point of a seeded stream, through the real pipeline on Tansu
//! and Redis and the monitor stage reading the scores and labels topics with its own
//! group: the amount distribution shifts (×1.8) and a new country (MX, 20 %) appears at
//! transaction 9 000 of 16 000, all produced as a backlog before the stages start, so the
//! consumers catch up reading partitions unevenly (minutes of event time apart). The
//! monitor's per-partition watermarks must keep the lagging partitions' scores in their
//! windows: late scores near 0 at the default late-rate threshold. Every label must join
//! its score through Kafka. Alerts must land on the alerts topic after the drift and
//! never before, exactly one firing per episode, within a bounded delay; the delay is
//! printed in events.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir::stages::monitor::{spawn_monitor, MonitorStats};
use weir_ingest::lag::consumer_lag;
use weir::stages::score::{spawn_pipeline, PipelineStats};
use weir::wiring::{connect_redis_store, load_model};
use weir_ingest::generator::GeneratorConfig;
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_monitor::MonitorConfig;
use weir_schemas::events::DriftAlert;
use weir_schemas::wire::{subjects, Decoder, LocalSchemaRegistry, SchemaRegistry};
use weir_tests::golden::{payload, read_topic};
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config};
use weir_tests::{unique, Services};

const TRANSACTIONS: u64 = 16_000;
const DRIFT_AT: u64 = 9_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_drift_fires_once_after_it_and_never_before() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_env_filter(std::env::var("WEIR_TEST_LOG").unwrap_or_else(|_| "warn".into()).as_str()).with_test_writer().try_init();
    let services = Services::start()?;
    let mut config = pipeline_config(&services, "drift");
    config.monitor.alerts_topic = unique("drift-alerts");
    // The demo's windows and watched subjects, with the default late-rate threshold: this
    // stream is produced ahead and read with per-partition watermarks, so nothing is late.
    config.monitor.watch = MonitorConfig { quality: Default::default(), ..weir::commands::demo::demo_watch() };
    config.check()?;
    create_pipeline_topics(&services, &config, 4).await?;
    services.create_topics(&[&config.monitor.alerts_topic], 1).await?;

    // Start on an hour boundary (plus a minute) two hours ago: the 320 s of event time
    // never cross an hour, so hour-of-day is constant (and not the subject here anyway).
    let hour = 3_600_000;
    let start_ms = (weir_schemas::now_ms() - 2 * hour) / hour * hour + 60_000;
    let mut g = GeneratorConfig::new(20261126, start_ms, TRANSACTIONS);
    g.drift_at = Some(DRIFT_AT);
    let (messages, valid) = generate(g)?;
    let drift_time = valid[DRIFT_AT as usize].event_time;
    // The whole stream is a backlog before the stages start: with librdkafka's 1 MB
    // per-partition fetches the pipeline, and then the monitor, read one partition minutes
    // of event time ahead of another.
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, &config.kafka.topics, messages.into_iter().map(Ok), None, |_| {}).await?;
    let shutdown = CancellationToken::new();
    let store = Arc::new(connect_redis_store(&config).await?);
    let model = Arc::new(load_model(&config)?);
    let pipeline = spawn_pipeline(config.clone(), store, model, Arc::new(PipelineStats::default()), shutdown.clone());
    let stats = Arc::new(MonitorStats::default());
    let monitor = spawn_monitor(config.clone(), stats.clone(), shutdown.clone());

    // Wait until the monitor has read every score, and its output has settled.
    let deadline = Instant::now() + Duration::from_secs(240);
    let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let mut last = (0, 0, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        anyhow::ensure!(!pipeline.is_finished() && !monitor.is_finished(), "a stage stopped early");
        let now = (get(&stats.scores), get(&stats.alerts_sent));
        if now != (last.0, last.1) {
            last = (now.0, now.1, Instant::now());
        }
        if now.0 >= TRANSACTIONS && last.2.elapsed() > Duration::from_secs(3) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "monitor read {} of {TRANSACTIONS} scores", now.0);
    }
    shutdown.cancel();
    pipeline.await??;
    monitor.await??;
    // Measured after the final commit of the monitor's group.
    let lag = {
        let (b, g, s, l) = (
            services.brokers.clone(),
            config.monitor.group_id(&config.kafka.group_id),
            config.kafka.topics.scores.clone(),
            config.kafka.topics.labels.clone(),
        );
        tokio::task::spawn_blocking(move || consumer_lag(&b, &g, &[&s, &l], Duration::from_secs(10))).await??
    };

    // What landed on the alerts topic.
    let sent = get(&stats.alerts_sent) as usize;
    let (brokers, topic) = (services.brokers.clone(), config.monitor.alerts_topic.clone());
    let messages =
        tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, Duration::from_secs(30), |m| m.len() >= sent))
            .await??;
    let registry: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded()?);
    let reader = registry.latest(subjects::DRIFT_ALERT)?;
    let decoder = Decoder::<DriftAlert>::new(registry, subjects::DRIFT_ALERT, &reader);
    let mut alerts: Vec<DriftAlert> = messages.iter().map(|m| decoder.decode(payload(m))).collect::<Result<_, _>>()?;
    alerts.sort_by_key(|a| (a.window_end, a.alert_id.clone(), a.state.clone()));
    let report: Vec<String> = alerts
        .iter()
        .map(|a| format!("{} {} {} {:.3}/{:.3} {} end+{}s", a.state, a.subject, a.statistic, a.value, a.threshold, a.severity, (a.window_end - drift_time) / 1000))
        .collect();
    eprintln!("alerts (window end relative to the drift):\n  {}", report.join("\n  "));
    assert_eq!(alerts.len(), sent, "the topic holds what the monitor delivered");

    // None before: no alert's window ends before the first drifted event.
    let early: Vec<&String> = alerts.iter().zip(&report).filter(|(a, _)| a.window_end <= drift_time).map(|(_, r)| r).collect();
    assert!(early.is_empty(), "alerts before the drift: {early:#?}");

    // One firing per episode, and at most one clear.
    let mut per_episode: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for a in &alerts {
        let e = per_episode.entry(&a.alert_id).or_default();
        if a.state == "firing" { e.0 += 1 } else { e.1 += 1 }
    }
    assert!(per_episode.values().all(|&(f, c)| f == 1 && c <= 1), "{per_episode:#?}");

    // Both injected changes are caught, each exactly once, within a bounded delay: the
    // window must fill with drifted events and the breach persist 3 panes — at most
    // window (6 panes) + persistence (3) + the closing pane (1) = 100 s of event time.
    for (subject, statistic) in [("amount_log", "psi"), ("country", "psi")] {
        let fired: Vec<&DriftAlert> =
            alerts.iter().filter(|a| a.subject == subject && a.statistic == statistic && a.state == "firing").collect();
        assert_eq!(fired.len(), 1, "{subject}/{statistic}: {report:#?}");
        let a = fired[0];
        assert!(a.window_end - drift_time <= 100_000, "{subject} fired {} s after the drift", (a.window_end - drift_time) / 1000);
        let delay_events = valid.iter().filter(|t| t.event_time >= drift_time && t.event_time < a.window_end).count();
        eprintln!(
            "detection delay {subject}/{statistic}: {delay_events} events ({} s of event time), value {:.3} > {}",
            (a.window_end - drift_time) / 1000,
            a.value,
            a.threshold
        );
        assert!(a.model_version.is_some());
    }
    // Per-partition watermarks: the lagging partitions' scores are in their windows.
    let (late, forced, skew) = (get(&stats.late), get(&stats.forced_closes), get(&stats.max_partition_skew_ms));
    eprintln!("late scores {late} of {TRANSACTIONS}, forced pane closes {forced}, largest skew between partitions {} s", skew / 1000);
    // The backlog was read unevenly: one partition more than a window (60 s) ahead of
    // another, which a single watermark would have turned into late scores.
    assert!(skew > 60_000, "partitions read only {skew} ms apart: no backlog skew to test");
    let unbinned = get(&stats.unbinned_before_reference);
    eprintln!("scores read before the warm-up reference was ready, not binned: {unbinned}");
    assert_eq!(unbinned, 0, "scores read ahead during the warm-up are binned once it is ready");
    assert!(late * 1_000 <= TRANSACTIONS, "{late} late scores");
    assert_eq!(forced, 0);
    // Labels joined their scores through Kafka, whichever topic the monitor read first.
    let (labels, joined) = (get(&stats.labels), get(&stats.labels_joined));
    eprintln!("labels read {labels}, joined to their score {joined}");
    assert!(labels > 10_000 && joined == labels, "{joined} of {labels} labels joined");
    eprintln!("monitor group lag after the run: {lag}");
    assert_eq!(lag, 0, "the monitor committed everything it read");
    Ok(())
}
