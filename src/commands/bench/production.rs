//! `weir bench --brokers … --redis …`: the production path measured in one run.
//!
//! A fresh input topic is filled with `weir produce`'s transactions (untimed); then, one
//! after another on that same topic, each with a fresh consumer group: a raw rdkafka
//! consume that only counts (the ceiling: weir's own client configuration, nothing done
//! per event), weir with `state.mode = "local"` (state in process, changelog, Redis as the
//! serving copy), weir with `state.mode = "redis"` (every state read and written back in
//! Redis per batch), the embedded default (the demo: mock cluster and in-process store,
//! for reference), and optionally the plain Python peer. Each run stops when it has
//! handled every event or at the timeout, never later.
//!
//! Rates are over the span from the first event received to the last one done (not the
//! group join before it); CPU is this process's (`getrusage`), so the broker's and
//! Redis's work is not in it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use tokio_util::sync::CancellationToken;
use weir_ingest::generator::GeneratorConfig;
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;

use crate::commands::bench::cpu::process_cpu;
use crate::commands::bench::python_peer::{self, PeerArgs};
use crate::commands::bench::report::{self, Report, Run};
use crate::commands::demo::{run_demo, DemoOptions};
use crate::commands::produce::generator;
use crate::config::state::StateMode;
use crate::config::{RedisConfig, WeirConfig};
use crate::stages::score::{spawn_pipeline, PipelineStats};
use crate::wiring::{connect_redis_store, load_model};

/// What `weir bench --brokers` runs with.
#[derive(Debug, Clone)]
pub struct ProductionOptions {
    pub brokers: String,
    pub redis: String,
    pub transactions: u64,
    pub partitions: i32,
    pub seed: u64,
    /// Longest any one run may take before it is stopped and reported as timed out.
    pub timeout: Duration,
    /// The Python interpreter for the peer (with its requirements), if it is to run.
    pub python: Option<PathBuf>,
    pub python_script: PathBuf,
}

/// Names unique to this invocation (topics, groups, key prefixes).
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("bench-{what}-{}-{nanos:x}", std::process::id())
}

/// Runs every pipeline on one fresh topic and reports.
pub async fn run_production(options: &ProductionOptions) -> anyhow::Result<Report> {
    let topic = unique("input");
    let mut base = WeirConfig::with_brokers(&options.brokers);
    base.redis = Some(RedisConfig::single(options.redis.clone()));
    base.kafka.topics.input = topic.clone();
    base.kafka.topics.labels = format!("{topic}-labels");
    base.kafka.topics.dead_letter = format!("{topic}-dlq");
    let local_scores = format!("{topic}-scores-local");
    let redis_scores = format!("{topic}-scores-redis");
    create_topics(
        &base,
        &[(&topic, options.partitions), (&base.kafka.topics.labels, options.partitions), (&base.kafka.topics.dead_letter, 1)],
    )
    .await?;
    create_topics(&base, &[(&local_scores, options.partitions), (&redis_scores, options.partitions)]).await?;

    // Event time ends ten minutes ago: every event passes validation's future skew, and
    // the runs that come later see the same verdicts.
    let mut g = GeneratorConfig::new(options.seed, 0, options.transactions);
    let span_ms = (options.transactions as f64 / g.event_rate * 1000.0) as i64;
    g.start_ms = weir_schemas::now_ms() - span_ms - 600_000;
    eprintln!("producing {} transactions to {topic} ({} partitions)…", options.transactions, options.partitions);
    let producer = EventProducer::new(&base.kafka)?;
    let produced = produce_all(&producer, &base.kafka.topics, generator(g)?, None, |_| {}).await?;
    drop(producer);
    eprintln!("produced {} transactions, {} labels", produced.transactions, produced.labels);
    let n = produced.transactions;

    let mut runs = Vec::new();
    eprintln!("raw consume…");
    runs.push(raw_consume(&base, n, options.timeout).await?);
    let local_prefix = unique("local");
    for (mode, scores) in [(StateMode::Local, &local_scores), (StateMode::Redis, &redis_scores)] {
        let mut config = base.clone();
        config.state.mode = mode;
        config.kafka.topics.scores = scores.clone();
        config.features.key_prefix = if mode == StateMode::Local { local_prefix.clone() } else { unique("redis") };
        eprintln!("weir, state {mode:?}…");
        runs.push(weir_run(config, n, options.timeout).await?);
    }
    let mut python_check = None;
    if let Some(python) = &options.python {
        for count_only in [true, false] {
            eprintln!("python {}…", if count_only { "raw consume" } else { "peer" });
            let peer = python_peer::run(&PeerArgs {
                python: python.clone(),
                script: options.python_script.clone(),
                brokers: options.brokers.clone(),
                topic: topic.clone(),
                group: unique("python"),
                redis: options.redis.clone(),
                key_prefix: unique("python"),
                events: n,
                weir_scores_topic: local_scores.clone(),
                timeout: options.timeout,
                count_only,
            })
            .await?;
            let (run, check) = peer.into_run(count_only);
            runs.push(run);
            if !count_only {
                python_check = Some(check);
            }
        }
    }
    eprintln!("embedded default…");
    runs.push(embedded_run(options, n).await);
    Ok(Report {
        brokers: options.brokers.clone(),
        redis: options.redis.clone(),
        topic,
        partitions: options.partitions,
        transactions: n,
        build: if cfg!(debug_assertions) { "debug" } else { "release" },
        rows: report::rows(runs),
        python_check,
    })
}

async fn create_topics(config: &WeirConfig, topics: &[(&String, i32)]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = config.kafka.client_config().create()?;
    let new: Vec<NewTopic<'_>> = topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))).request_timeout(Some(Duration::from_secs(20)));
    for result in admin.create_topics(&new, &options).await.context("creating the bench topics")? {
        if let Err((topic, code)) = result {
            anyhow::bail!("creating topic {topic}: {code:?}");
        }
    }
    Ok(())
}

/// An rdkafka consumer with weir's client configuration (`KafkaConfig::consumer_config`)
/// and a fresh group, reading `n` messages and only counting them.
async fn raw_consume(base: &WeirConfig, n: u64, timeout: Duration) -> anyhow::Result<Run> {
    let mut kafka = base.kafka.clone();
    kafka.group_id = unique("raw");
    let topic = kafka.topics.input.clone();
    let client = kafka.consumer_config();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Run> {
        let consumer: BaseConsumer = client.create().context("creating the raw consumer")?;
        consumer.subscribe(&[&topic])?;
        let cpu = process_cpu();
        let deadline = Instant::now() + timeout;
        let (mut count, mut bytes) = (0u64, 0usize);
        let (mut first, mut last) = (None, Instant::now());
        let mut timed_out = false;
        while count < n {
            if Instant::now() > deadline {
                timed_out = true;
                break;
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    first.get_or_insert(last);
                    bytes += m.payload().map_or(0, <[u8]>::len);
                    count += 1;
                }
                Some(Err(e)) => return Err(e).context("raw consume"),
                None => {}
            }
        }
        let cpu = process_cpu().saturating_sub(cpu);
        std::hint::black_box(bytes);
        Ok(Run {
            pipeline: "raw consume (rdkafka, count only)".into(),
            events: count,
            seconds: first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()),
            cpu_seconds: cpu.as_secs_f64(),
            p50_us: None,
            p99_us: None,
            timed_out,
            note: String::new(),
        })
    })
    .await?
}

/// weir's pipeline in this process (`run_pipeline`, a Redis store, the default model),
/// until it has scored `n` events or `timeout` passed; then shut down.
async fn weir_run(mut config: WeirConfig, n: u64, timeout: Duration) -> anyhow::Result<Run> {
    let mode = config.state.mode;
    config.kafka.group_id = unique(match mode {
        StateMode::Local => "weir-local",
        StateMode::Redis => "weir-redis",
    });
    let store = Arc::new(connect_redis_store(&config).await?);
    let model = Arc::new(load_model(&config)?);
    let stats = Arc::new(PipelineStats::default());
    let shutdown = CancellationToken::new();
    let cpu = process_cpu();
    let pipeline = spawn_pipeline(config, store, model, stats.clone(), shutdown.clone());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    while PipelineStats::get(&stats.scored) < n {
        if pipeline.is_finished() {
            // It stops by itself only on a fatal error.
            pipeline.await.context("pipeline task")??;
            anyhow::bail!("the pipeline stopped before scoring every event");
        }
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // CPU up to the last score, not the shutdown's drain and flushes.
    let cpu = process_cpu().saturating_sub(cpu);
    shutdown.cancel();
    match tokio::time::timeout(Duration::from_secs(60), pipeline).await {
        Ok(joined) => {
            joined.context("pipeline task")??;
        }
        Err(_) => tracing::warn!("the pipeline did not shut down within 60 s; reporting anyway"),
    }
    let latency = stats.latency.percentiles();
    let (name, note) = match mode {
        StateMode::Local => ("weir, state local", "state in process, changelog with the scores, redis written behind as the serving copy"),
        StateMode::Redis => ("weir, state redis", "every entity state read from and written back to redis per batch (compare-and-set)"),
    };
    Ok(Run {
        pipeline: name.into(),
        events: PipelineStats::get(&stats.scored),
        seconds: stats.active_span().map_or(0.0, |d| d.as_secs_f64()),
        cpu_seconds: cpu.as_secs_f64(),
        p50_us: Some(latency.p50_us),
        p99_us: Some(latency.p99_us),
        timed_out,
        note: note.into(),
    })
}

/// The embedded default (`weir demo`'s pipeline, as fast as the generator feeds it, the
/// default batch size): for reference. It runs last, and it cannot stop the bench: a
/// failure or the timeout (the demo's own deadline is longer) becomes a row saying so.
async fn embedded_run(options: &ProductionOptions, n: u64) -> Run {
    let name = "embedded default (weir demo)";
    let cpu = process_cpu();
    let demo = run_demo(DemoOptions {
        transactions: n,
        rate: None,
        seed: options.seed,
        partitions: options.partitions,
        poison_rate: 0.0,
        progress: false,
        max_batch: weir_ingest::config::BatchConfig::default().max_events,
        drift_at: None,
    });
    let failed = |why: String| Run {
        pipeline: name.into(),
        events: 0,
        seconds: 0.0,
        cpu_seconds: process_cpu().saturating_sub(cpu).as_secs_f64(),
        p50_us: None,
        p99_us: None,
        timed_out: true,
        note: why,
    };
    let report = match tokio::time::timeout(options.timeout, demo).await {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return failed(format!("failed: {e:#}")),
        Err(_) => return failed(format!("did not finish within {} s", options.timeout.as_secs())),
    };
    let cpu = process_cpu().saturating_sub(cpu);
    Run {
        pipeline: name.into(),
        events: report.scored,
        seconds: report.elapsed.as_secs_f64(),
        cpu_seconds: cpu.as_secs_f64(),
        p50_us: Some(report.latency.p50_us),
        p99_us: Some(report.latency.p99_us),
        timed_out: false,
        note: "librdkafka's mock cluster and the in-process store, not the broker above; its CPU also holds the generator, the mock broker and the monitor stage, all in this process".into(),
    }
}
