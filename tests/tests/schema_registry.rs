//! weir against a Confluent-compatible Schema Registry, with confluent-kafka's official
//! Python client on the other side, a real broker (Tansu) and a real Redis.
//!
//! - every event a Python `AvroSerializer` produces — its own schema, with a field weir
//!   does not read, then a compatible second version registered while weir runs — is
//!   scored, and a Python `AvroDeserializer` decodes every score through the same
//!   registry (weir registered its score schema and framed with the registry's id);
//! - a schema id the registry does not know is dead-lettered as `UnknownSchema` after a
//!   bounded number of lookups, and the partition moves on;
//! - the registry down at start, and the registry refusing weir's credentials (401):
//!   `weir run` stops with an error naming the cause, and never prints the password.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir::config::WeirConfig;
use weir::stages::score::{spawn_pipeline, PipelineStats};
use weir::wiring::{connect_redis_store, load_model};
use weir_ingest::producer::{EventProducer, OutgoingMessage};
use weir_schemas::events::dead_letter_headers as h;
use weir_tests::golden::{payload, read_topic};
use weir_tests::schema_registry::{run_python, RegistryServer};
use weir_tests::setup::{create_pipeline_topics, pipeline_config};
use weir_tests::{free_port, Services, WeirProcess};

const USER: &str = "weir-sr";
const PASSWORD: &str = "sr-pa55-sentinel";

/// The pipeline's configuration on `registry`, with basic auth from a password file.
fn registry_config(services: &Services, registry: &RegistryServer, dir: &std::path::Path, name: &str) -> anyhow::Result<WeirConfig> {
    let mut config = pipeline_config(services, name);
    let password_file = dir.join("sr-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n"))?;
    config.schemas.registry_url = Some(registry.url.clone());
    config.schemas.basic_auth_user = Some(USER.into());
    config.schemas.basic_auth_password_file = Some(password_file);
    // The monitor is not under test here; its alerts subject is still registered.
    config.monitor.enabled = false;
    config.check()?;
    Ok(config)
}

/// Arguments every Python script takes.
fn py_args(services: &Services, registry: &RegistryServer, password_file: &str) -> Vec<String> {
    ["--brokers", &services.brokers, "--registry", &registry.url, "--user", USER, "--password-file", password_file]
        .map(str::to_string)
        .to_vec()
}

fn produce(args: &[String], topic: &str, version: &str, first: usize, count: usize) -> anyhow::Result<serde_json::Value> {
    let (first, count) = (first.to_string(), count.to_string());
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--topic", topic, "--version", version, "--first", &first, "--count", &count]);
    Ok(serde_json::from_str(run_python("sr_produce.py", &all)?.trim())?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_producer_in_weir_scores_out_confluent_consumer() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let services = Services::start()?;
    let registry = RegistryServer::start()?;
    registry.require_basic_auth(USER, PASSWORD);
    let dir = tempfile::tempdir()?;
    let config = registry_config(&services, &registry, dir.path(), "sr")?;
    let topics = config.kafka.topics.clone();
    create_pipeline_topics(&services, &config, 2).await?;
    let password_file = dir.path().join("sr-password").display().to_string();
    let args = py_args(&services, &registry, &password_file);

    // Before weir starts: the producer registers version 1 of its schema and produces.
    let args_v1 = args.clone();
    let input = topics.input.clone();
    let v1 = tokio::task::spawn_blocking(move || produce(&args_v1, &input, "1", 0, 300)).await??;
    let v1_id = v1["schema_id"].as_u64().unwrap_or_default() as u32;
    let input_subject = format!("{}-value", topics.input);
    assert_eq!(registry.versions(&input_subject), vec![v1_id]);

    let model = Arc::new(load_model(&config)?);
    let store = Arc::new(connect_redis_store(&config).await?);
    let shutdown = CancellationToken::new();
    let stats = Arc::new(PipelineStats::default());
    let pipeline = spawn_pipeline(config.clone(), store, model, stats.clone(), shutdown.clone());

    // While weir runs: a compatible second version, new to weir, learnt by id.
    let args_v2 = args.clone();
    let input = topics.input.clone();
    let v2 = tokio::task::spawn_blocking(move || produce(&args_v2, &input, "2", 300, 200)).await??;
    let v2_id = v2["schema_id"].as_u64().unwrap_or_default() as u32;
    assert_ne!(v1_id, v2_id);
    assert_eq!(registry.versions(&input_subject), vec![v1_id, v2_id]);

    // Every event scored, read back by confluent-kafka's AvroDeserializer.
    let scores_topic = topics.scores.clone();
    let consumer_args = args.clone();
    let read = tokio::task::spawn_blocking(move || -> anyhow::Result<serde_json::Value> {
        let mut all: Vec<&str> = consumer_args.iter().map(String::as_str).collect();
        all.extend(["--topic", &scores_topic, "--expect", "500", "--timeout", "120"]);
        Ok(serde_json::from_str(run_python("sr_consume.py", &all)?.trim())?)
    })
    .await??;
    shutdown.cancel();
    let loop_stats = pipeline.await??;
    eprintln!(
        "registry e2e: v1 id {v1_id}, v2 id {v2_id}, python read {} decoded {} schema ids {} errors {}; batches {}",
        read["messages"], read["decoded"], read["schema_ids"], read["errors"], loop_stats.batches
    );
    assert_eq!(read["errors"].as_array().map(Vec::len), Some(0), "{}", read["errors"]);
    assert_eq!(read["decoded"], 500);
    let ids: BTreeSet<String> =
        read["event_ids"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect();
    let expected: BTreeSet<String> = (0..500).map(|n| format!("py-{n:06}")).collect();
    assert_eq!(ids, expected, "every event scored once");
    // weir framed its scores with the id the registry gave its score schema.
    let scores_subject = format!("{}-value", topics.scores);
    let score_ids = registry.versions(&scores_subject);
    assert_eq!(score_ids.len(), 1, "{:?}", registry.requests());
    assert_eq!(read["schema_ids"], serde_json::json!([score_ids[0]]));
    assert!(registry.schema(score_ids[0]).is_some_and(|s| s.contains("\"output\"")), "weir's current score schema");
    // One fetch per new id: v1 came with the subject's latest at start, v2 by id, once.
    assert_eq!(registry.count(&format!("GET /schemas/ids/{v2_id}")), 1, "{:?}", registry.requests());
    assert_eq!(registry.count(&format!("GET /schemas/ids/{v1_id}")), 0, "{:?}", registry.requests());
    assert_eq!(PipelineStats::get(&stats.dead_lettered), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_the_registry_does_not_know_is_dead_lettered_after_bounded_lookups() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let services = Services::start()?;
    let registry = RegistryServer::start()?;
    registry.require_basic_auth(USER, PASSWORD);
    let dir = tempfile::tempdir()?;
    let mut config = registry_config(&services, &registry, dir.path(), "sr-unknown")?;
    config.schemas.lookup_attempts = 3;
    config.schemas.lookup_backoff_ms = 20;
    let topics = config.kafka.topics.clone();
    create_pipeline_topics(&services, &config, 1).await?;
    let password_file = dir.path().join("sr-password").display().to_string();
    let args = py_args(&services, &registry, &password_file);
    let input = topics.input.clone();
    let args_v1 = args.clone();
    tokio::task::spawn_blocking(move || produce(&args_v1, &input, "1", 0, 20)).await??;

    // Four messages naming an id the registry never gave, between valid ones.
    const UNKNOWN_ID: u32 = 777_777;
    let producer = EventProducer::new(&config.kafka)?;
    let poison: Vec<OutgoingMessage> = (0..4u8)
        .map(|i| {
            let mut bytes = vec![0u8];
            bytes.extend_from_slice(&UNKNOWN_ID.to_be_bytes());
            bytes.extend_from_slice(&[2, b'x', i]);
            OutgoingMessage::new(format!("card-{i}").as_bytes(), bytes)
        })
        .collect();
    producer.send_all(&topics.input, &poison).await?;
    let input = topics.input.clone();
    tokio::task::spawn_blocking(move || produce(&args, &input, "1", 20, 20)).await??;

    let model = Arc::new(load_model(&config)?);
    let store = Arc::new(connect_redis_store(&config).await?);
    let shutdown = CancellationToken::new();
    let pipeline = spawn_pipeline(config.clone(), store, model, Arc::new(PipelineStats::default()), shutdown.clone());
    let (brokers, scores_topic, dlq_topic) = (services.brokers.clone(), topics.scores.clone(), topics.dead_letter.clone());
    let (scores, dead) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let scores = read_topic(&brokers, &scores_topic, Duration::from_secs(90), |m| m.len() >= 40)?;
        let dead = read_topic(&brokers, &dlq_topic, Duration::from_secs(30), |m| m.len() >= 4)?;
        Ok((scores, dead))
    })
    .await??;
    shutdown.cancel();
    pipeline.await??;

    assert_eq!(scores.len(), 40, "every valid event scored, the partition kept moving");
    assert_eq!(dead.len(), 4);
    for m in &dead {
        let header = |name: &str| weir_ingest::consumer::header_str(m, name).map(str::to_string);
        assert_eq!(header(h::ERROR_CLASS).as_deref(), Some("UnknownSchema"));
        let message = header(h::ERROR_MESSAGE).unwrap_or_default();
        assert!(message.contains(&format!("schema id {UNKNOWN_ID} is not in the schema registry")), "{message}");
        assert!(!message.contains(PASSWORD));
        assert_eq!(payload(m)[1..5], UNKNOWN_ID.to_be_bytes());
    }
    // Bounded: three tries for the first message, then remembered as unknown.
    assert_eq!(registry.count(&format!("GET /schemas/ids/{UNKNOWN_ID}")), 3, "{:?}", registry.requests());
    Ok(())
}

/// `weir run` with `config`, until it exits (or `timeout`): its status and log.
fn run_until_exit(config: &WeirConfig, dir: &std::path::Path, timeout: Duration) -> anyhow::Result<(std::process::ExitStatus, String)> {
    let path = dir.join("weir.toml");
    std::fs::write(&path, toml::to_string(config)?)?;
    let path = path.display().to_string();
    let mut weir = WeirProcess::spawn(&["run", "--config", &path], dir.join("weir.log"))?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = weir.exited()? {
            return Ok((status, weir.log_plain()));
        }
        anyhow::ensure!(Instant::now() < deadline, "weir still running after {timeout:?}:\n{}", weir.log_plain());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_at_start_stops_weir_with_a_clear_error_after_retries() -> anyhow::Result<()> {
    let services = Services::start()?;
    let dir = tempfile::tempdir()?;
    let mut config = pipeline_config(&services, "sr-down");
    let port = free_port()?; // nothing listens there
    config.schemas.registry_url = Some(format!("http://127.0.0.1:{port}"));
    config.schemas.startup_timeout_ms = 1_500;
    let started = Instant::now();
    let (status, log) = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run_until_exit(&config, &dir, Duration::from_secs(60))
    })
    .await??;
    eprintln!("weir exited after {:?}: {status}\n{log}", started.elapsed());
    assert!(!status.success());
    let needle = format!("schema registry http://127.0.0.1:{port} is unreachable");
    assert!(log.contains(&needle), "{log}");
    // Retried with backoff within the budget: 200 + 400 + 800 ms of waits, so 3-4 tries.
    assert!(log.contains("attempt(s) over"), "{log}");
    assert!(!log.contains("attempt(s) over 0.0 s"), "it retried: {log}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_refusing_the_credentials_stops_weir_naming_the_setting_not_the_password() -> anyhow::Result<()> {
    let services = Services::start()?;
    let registry = RegistryServer::start()?;
    registry.require_basic_auth(USER, "the-right-password");
    let dir = tempfile::tempdir()?;
    let config = registry_config(&services, &registry, dir.path(), "sr-401")?; // sends PASSWORD
    let (status, log) = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run_until_exit(&config, &dir, Duration::from_secs(60))
    })
    .await??;
    assert!(!status.success(), "{log}");
    assert!(log.contains("refused the credentials (http 401)"), "{log}");
    assert!(log.contains("basic_auth_user"), "{log}");
    assert!(!log.contains(PASSWORD), "the password is printed:\n{log}");
    // Not retried: a 401 does not go away by itself.
    let calls = registry.requests().len();
    assert_eq!(calls, 1, "{:?}", registry.requests());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_produce_frames_with_the_registry_ids_and_weir_run_scores_them() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let services = Services::start()?;
    let registry = RegistryServer::start()?;
    let dir = tempfile::tempdir()?;
    let mut config = pipeline_config(&services, "sr-produce");
    config.schemas.registry_url = Some(registry.url.clone());
    config.monitor.enabled = false;
    create_pipeline_topics(&services, &config, 2).await?;
    let path = dir.path().join("weir.toml");
    std::fs::write(&path, toml::to_string(&config)?)?;

    // `weir produce --config`: weir's transaction schema registered under the input
    // subject, as a producer registers its own, and its id in every frame.
    let path_arg = path.display().to_string();
    let status = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut produce = WeirProcess::spawn(&["produce", "--config", &path_arg, "--transactions", "300"], std::env::temp_dir().join(weir_tests::unique("weir-produce")))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = produce.exited()? {
                return Ok((status, produce.log_plain()));
            }
            anyhow::ensure!(Instant::now() < deadline, "weir produce still running:\n{}", produce.log_plain());
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await??;
    assert!(status.0.success(), "{}", status.1);
    let input_ids = registry.versions(&format!("{}-value", config.kafka.topics.input));
    assert_eq!(input_ids.len(), 1);
    assert!(registry.schema(input_ids[0]).is_some_and(|s| s.contains("io.weir.events")));
    assert_eq!(registry.versions(&format!("{}-value", config.kafka.topics.labels)).len(), 1);

    let model = Arc::new(load_model(&config)?);
    let store = Arc::new(connect_redis_store(&config).await?);
    let shutdown = CancellationToken::new();
    let stats = Arc::new(PipelineStats::default());
    let pipeline = spawn_pipeline(config.clone(), store, model, stats.clone(), shutdown.clone());
    let (brokers, input_topic, scores_topic) = (services.brokers.clone(), config.kafka.topics.input.clone(), config.kafka.topics.scores.clone());
    let (inputs, scores) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let inputs = read_topic(&brokers, &input_topic, Duration::from_secs(30), |m| m.len() >= 300)?;
        let scores = read_topic(&brokers, &scores_topic, Duration::from_secs(90), |m| m.len() >= 300)?;
        Ok((inputs, scores))
    })
    .await??;
    shutdown.cancel();
    pipeline.await??;
    assert!(inputs.iter().all(|m| payload(m)[1..5] == input_ids[0].to_be_bytes()), "every input frame carries the registry's id");
    assert_eq!(scores.len(), 300);
    assert_eq!(PipelineStats::get(&stats.dead_lettered), 0);
    Ok(())
}
