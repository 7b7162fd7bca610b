//! `weir demo`: the real pipeline on the embedded default — librdkafka's in-process mock
//! cluster for Kafka and the in-process feature store — fed by the load generator, with
//! progress and a final report. Nothing to install.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::mocking::MockCluster;
use tokio_util::sync::CancellationToken;
use weir_features::embedded::EmbeddedStore;
use weir_ingest::generator::{Generator, GeneratorConfig};
use weir_ingest::load_producer::{produce_all, ProduceReport};
use weir_ingest::producer::EventProducer;
use weir_monitor::Percentiles;
use weir_schemas::wire::{subjects, Encoder};

use crate::config::WeirConfig;
use crate::stages::monitor::{spawn_monitor, MonitorStats};
use crate::stages::score::{spawn_pipeline, PipelineStats};
use crate::wiring::{feature_definitions, load_model, schema_registry};

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub transactions: u64,
    /// Transactions per second sent by the generator; `None` for as fast as possible.
    pub rate: Option<f64>,
    pub seed: u64,
    pub partitions: i32,
    pub poison_rate: f64,
    /// Print a progress line every second.
    pub progress: bool,
    /// Most events per micro-batch.
    pub max_batch: usize,
    /// Inject data drift (amounts ×1.8, a new country) from this transaction on; the
    /// monitor stage must raise its alerts after it and none before.
    pub drift_at: Option<u64>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { transactions: 20_000, rate: Some(10_000.0), seed: 42, partitions: 4, poison_rate: 0.01, progress: true, max_batch: 500, drift_at: Some(10_000) }
    }
}

#[derive(Debug, Clone)]
pub struct DemoReport {
    pub produced: ProduceReport,
    pub received: u64,
    pub scored: u64,
    pub dead_lettered: u64,
    pub late: u64,
    pub elapsed: Duration,
    pub latency: Percentiles,
    pub model_batch_latency: Percentiles,
    pub model_version: String,
    /// Drift alerts the monitor stage delivered, and the event time of the first drifted
    /// transaction.
    pub alerts: Vec<weir_schemas::events::DriftAlert>,
    pub drift_time: Option<i64>,
}

impl DemoReport {
    pub fn throughput(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn render(&self) -> String {
        let l = &self.latency;
        let m = &self.model_batch_latency;
        format!(
            "weir demo — summary\n\
             \x20 model                {}\n\
             \x20 produced             {} transactions, {} poison, {} labels\n\
             \x20 received             {}\n\
             \x20 scored               {}\n\
             \x20 dead-lettered        {}\n\
             \x20 late (not applied)   {}\n\
             \x20 processing time      {:.2} s (first event received to last batch done)\n\
             \x20 throughput           {:.0} events/s\n\
             \x20 latency receive→score acknowledged: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms\n\
             \x20 model time per batch: p50 {} µs, p99 {} µs ({} batches)\n{}",
            self.model_version,
            self.produced.transactions,
            self.produced.poison,
            self.produced.labels,
            self.received,
            self.scored,
            self.dead_lettered,
            self.late,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            l.p50_us as f64 / 1000.0,
            l.p99_us as f64 / 1000.0,
            l.p999_us as f64 / 1000.0,
            l.max_us as f64 / 1000.0,
            m.p50_us,
            m.p99_us,
            m.count,
            self.render_alerts(),
        )
    }
}

impl DemoReport {
    fn render_alerts(&self) -> String {
        let firing: Vec<_> = self.alerts.iter().filter(|a| a.state == "firing").collect();
        let mut out = match self.drift_time {
            Some(t) => {
                let before = firing.iter().filter(|a| a.window_end <= t).count();
                format!(
                    "  drift alerts         {} firing after the injected drift, {before} before it, {} cleared\n",
                    firing.len() - before,
                    self.alerts.len() - firing.len()
                )
            }
            None => format!("  drift alerts         {} firing (no drift injected)\n", firing.len()),
        };
        for a in &self.alerts {
            let at = self.drift_time.map(|t| format!(" (window end {:+} s from the drift)", (a.window_end - t) / 1000)).unwrap_or_default();
            out.push_str(&format!(
                "    {:<8} {:<9} {} {} = {:.3} vs {:.3}{at}\n",
                a.state, a.severity, a.subject, a.statistic, a.value, a.threshold
            ));
        }
        out
    }
}

/// The monitor settings of the demo: its stream covers minutes of event time, not days,
/// so windows of 6 × 10 s after a one-minute warm-up; the injected drift is in the amount
/// and the attributes (the card-window features grow while their windows fill, which is
/// real but not what the demo shows).
pub fn demo_watch() -> weir_monitor::MonitorConfig {
    weir_monitor::MonitorConfig {
        pane_secs: 10,
        window_panes: 6,
        warmup_secs: 60,
        min_window_events: 300,
        features: vec!["amount_log".into()],
        attributes: vec!["country".into(), "channel".into(), "customer_segment".into()],
        // The demo plays minutes of event time in seconds: a few ms of skew between
        // partitions is tens of seconds of event time, so more scores come late than on
        // a live stream.
        quality: weir_monitor::config::QualityConfig { max_late_rate: 0.25, ..Default::default() },
        ..Default::default()
    }
}

/// `weir demo` from its command line: runs it and prints the report. `drift_at`: `None`
/// for half way, `Some(0)` for no drift.
pub async fn execute(transactions: u64, rate: f64, seed: u64, poison_rate: f64, drift_at: Option<u64>) -> anyhow::Result<()> {
    let options = DemoOptions {
        transactions,
        rate: (rate > 0.0).then_some(rate),
        seed,
        poison_rate,
        drift_at: match drift_at {
            Some(0) => None,
            Some(i) => Some(i),
            None => Some(transactions / 2),
        },
        ..DemoOptions::default()
    };
    let report = run_demo(options).await?;
    print!("{}", report.render());
    Ok(())
}

pub async fn run_demo(options: DemoOptions) -> anyhow::Result<DemoReport> {
    let cluster = MockCluster::new(1).context("starting librdkafka's mock cluster")?;
    let mut config = WeirConfig::with_brokers(&cluster.bootstrap_servers());
    config.kafka.group_id = format!("weir-demo-{}", options.seed);
    config.kafka.batch.max_events = options.max_batch;
    // The mock cluster cannot create topics through the admin API: the changelog of the
    // state kept in process is made here, like the others.
    let changelog = config.kafka.changelog_topic();
    for topic in [
        &changelog,
        &config.kafka.topics.input,
        &config.kafka.topics.labels,
        &config.kafka.topics.scores,
        &config.kafka.topics.dead_letter,
        &config.monitor.alerts_topic,
    ] {
        cluster.create_topic(topic, options.partitions, 1).with_context(|| format!("creating topic {topic}"))?;
    }

    let registry = schema_registry(&config)?;
    let model = Arc::new(load_model(&config)?);
    let model_version = format!("{}/{}", model.metadata().name, model.metadata().version);
    let definitions = feature_definitions(&config)?;
    let store = Arc::new(EmbeddedStore::new(definitions.engine_spec().clone()));
    let stats = Arc::new(PipelineStats::default());
    let shutdown = CancellationToken::new();

    let pipeline = spawn_pipeline(config.clone(), store, model.clone(), stats.clone(), shutdown.clone());
    config.monitor.watch = demo_watch();
    let monitor_stats = Arc::new(MonitorStats::default());
    let monitor = spawn_monitor(config.clone(), monitor_stats.clone(), shutdown.clone());

    let producer = EventProducer::new(&config.kafka)?;
    let mut generator_config = GeneratorConfig::new(options.seed, weir_schemas::now_ms() - 3_600_000, options.transactions);
    generator_config.poison_rate = options.poison_rate;
    generator_config.drift_at = options.drift_at;
    let drift_time = match options.drift_at {
        Some(i) => drift_event_time(&generator_config, registry.as_ref(), i)?,
        None => None,
    };
    let generator = Generator::new(
        generator_config,
        Encoder::new(registry.as_ref(), subjects::TRANSACTION)?,
        Encoder::for_schema(registry.latest(subjects::LABEL)?),
    );
    let mut producing = Some({
        let topics = config.kafka.topics.clone();
        let rate = options.rate;
        tokio::spawn(async move { produce_all(&producer, &topics, generator, rate, |_| {}).await })
    });

    let started = Instant::now();
    let mut produced: Option<ProduceReport> = None;
    let mut last_progress = Instant::now();
    let deadline = started + Duration::from_secs(60 + options.transactions / 200);
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if producing.as_ref().is_some_and(|p| p.is_finished()) {
            if let Some(task) = producing.take() {
                produced = Some(task.await.context("producer task")??);
            }
            continue;
        }
        if pipeline.is_finished() {
            // The pipeline only stops by itself on a fatal error.
            pipeline.await.context("pipeline task")??;
            anyhow::bail!("pipeline stopped before the demo finished");
        }
        let received = PipelineStats::get(&stats.received);
        if options.progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let p = stats.latency.percentiles();
            eprintln!(
                "[{:>5.1}s] received {:>7} | scored {:>7} | dead-lettered {:>5} | p50 {:.2} ms p99 {:.2} ms",
                started.elapsed().as_secs_f64(),
                received,
                PipelineStats::get(&stats.scored),
                PipelineStats::get(&stats.dead_lettered),
                p.p50_us as f64 / 1000.0,
                p.p99_us as f64 / 1000.0,
            );
        }
        if let Some(report) = &produced {
            if received >= report.transactions + report.poison {
                break;
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!("demo did not finish in time: received {received} events");
        }
    }
    let elapsed = stats.active_span().unwrap_or_else(|| started.elapsed());
    // The monitor reads the scores behind the pipeline: let it finish them.
    let scored = PipelineStats::get(&stats.scored);
    let monitor_deadline = Instant::now() + Duration::from_secs(60);
    while monitor_stats.scores.load(Ordering::Relaxed) < scored && Instant::now() < monitor_deadline && !monitor.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    pipeline.await.context("pipeline task")??;
    monitor.await.context("monitor task")??;
    let alerts = monitor_stats.alerts.lock().map(|a| a.clone()).unwrap_or_default();
    drop(cluster);
    Ok(DemoReport {
        produced: produced.unwrap_or_default(),
        received: PipelineStats::get(&stats.received),
        scored: PipelineStats::get(&stats.scored),
        dead_lettered: PipelineStats::get(&stats.dead_lettered),
        late: stats.late.load(Ordering::Relaxed),
        elapsed,
        latency: stats.latency.percentiles(),
        model_batch_latency: stats.model_latency.percentiles(),
        model_version,
        alerts,
        drift_time,
    })
}

/// Event time of the `index`-th valid transaction of this generator configuration (the
/// generator is deterministic, so a second pass finds it).
fn drift_event_time(
    config: &GeneratorConfig,
    registry: &dyn weir_schemas::wire::SchemaRegistry,
    index: u64,
) -> anyhow::Result<Option<i64>> {
    let generator = Generator::new(
        config.clone(),
        Encoder::new(registry, subjects::TRANSACTION)?,
        Encoder::for_schema(registry.latest(subjects::LABEL)?),
    );
    let mut seen = 0u64;
    for m in generator {
        if let weir_ingest::generator::Content::Transaction { tx, .. } = m?.content {
            if seen == index {
                return Ok(Some(tx.event_time));
            }
            seen += 1;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's own promise: every produced transaction is scored and every poison
    /// message dead-lettered, on the in-process mock cluster.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn demo_scores_everything_and_dead_letters_poison() {
        let report = run_demo(DemoOptions {
            transactions: 3_000,
            rate: None,
            seed: 3,
            partitions: 2,
            poison_rate: 0.02,
            progress: false,
            max_batch: 500,
            drift_at: Some(2_000),
        })
        .await
        .unwrap();
        assert_eq!(report.scored, 3_000);
        assert_eq!(report.dead_lettered, report.produced.poison);
        assert!(report.produced.poison > 20);
        assert_eq!(report.received, report.produced.transactions + report.produced.poison);
        assert_eq!(report.latency.count, 3_000);
        assert!(report.render().contains("scored               3000"));
        // Nothing fires before the injected drift.
        let t = report.drift_time.unwrap();
        assert!(report.alerts.iter().all(|a| a.window_end > t), "{:#?}", report.alerts);
        assert!(report.render().contains("drift alerts"));
    }
}
