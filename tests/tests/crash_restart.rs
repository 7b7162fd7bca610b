//! The fault, done for real: `weir run` is SIGKILLed mid-stream against Tansu and Redis,
//! restarted, and must end with every event scored (none lost) and every feature in
//! Redis equal to one clean pass over the events (nothing double counted), even though
//! the restart replays everything since the last commit.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::time::Duration;

use weir::config::{RedisConfig, WeirConfig};
use weir_features::redis_store::KeySpace;
use weir_ingest::generator::{Content, GeneratorConfig};
use weir_ingest::produce::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::events::{Score, Transaction};
use weir_schemas::wire::{subjects, Decoder, LocalSchemaRegistry, SchemaRegistry};
use weir_tests::golden::{default_windows, expected_card_features, payload, read_topic};
use weir_tests::{unique, Services, WeirProcess};

const EVENTS: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_then_restart_loses_nothing_and_counts_once() -> anyhow::Result<()> {
    let services = Services::start()?;
    let dir = tempfile::tempdir()?;

    let mut config = WeirConfig::with_brokers(&services.brokers);
    config.kafka.group_id = unique("weir-crash");
    config.kafka.topics.transactions = unique("transactions");
    config.kafka.topics.labels = unique("labels");
    config.kafka.topics.scores = unique("scores");
    config.kafka.topics.dead_letter = unique("dlq");
    config.kafka.batch.max_events = 200;
    // Commit only on revoke and shutdown: the SIGKILL then loses every commit, and the
    // restart replays the whole stream — the hardest case for double counting.
    config.kafka.consumer_properties.insert("auto.commit.interval.ms".into(), "600000".into());
    config.features.key_prefix = unique("weir-crash");
    config.redis = Some(RedisConfig { url: services.redis_url.clone() });
    config.check()?;
    let config_path = dir.path().join("weir.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)?;
    let topics = &config.kafka.topics;
    services
        .create_topics(&[&topics.transactions, &topics.labels, &topics.scores, &topics.dead_letter], 4)
        .await?;

    let generator_config = GeneratorConfig::new(77, weir_schemas::now_ms() - 3_600_000, EVENTS as u64);
    let messages: Vec<_> = weir::produce::generator(generator_config)?.collect::<Result<_, _>>()?;
    let valid: Vec<Transaction> = messages
        .iter()
        .filter_map(|m| match &m.content {
            Content::Transaction { tx, .. } => Some(tx.clone()),
            _ => None,
        })
        .collect();
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, topics, messages.into_iter().map(Ok), None, |_| {}).await?;

    let config_arg = config_path.to_string_lossy().to_string();
    let log = dir.path().join("weir.log");
    let args = ["run", "--config", config_arg.as_str()];

    // First run: kill it once a quarter of the scores are out.
    let mut first = WeirProcess::spawn(&args, log.clone())?;
    let (brokers, scores_topic) = (services.brokers.clone(), topics.scores.clone());
    let partial = tokio::task::spawn_blocking({
        let (brokers, scores_topic) = (brokers.clone(), scores_topic.clone());
        move || read_topic(&brokers, &scores_topic, Duration::from_secs(120), |m| m.len() >= EVENTS / 4)
    })
    .await?;
    anyhow::ensure!(first.exited()?.is_none(), "weir exited early:\n{}", first.log_text());
    let partial = partial.map_err(|e| anyhow::anyhow!("{e:#}\nweir log:\n{}", first.log_text()))?;
    first.kill()?;
    let before_restart = partial.len();

    // Second run: must finish the stream.
    let second = WeirProcess::spawn(&args, log.clone())?;
    let all = tokio::task::spawn_blocking({
        let (brokers, scores_topic) = (brokers.clone(), scores_topic.clone());
        let ids: std::collections::HashSet<String> = valid.iter().map(|t| t.event_id.clone()).collect();
        let registry: std::sync::Arc<dyn SchemaRegistry> = std::sync::Arc::new(LocalSchemaRegistry::embedded()?);
        let decoder = Decoder::<Score>::new(registry.clone(), subjects::SCORE, &*registry.latest(subjects::SCORE)?);
        move || -> anyhow::Result<_> {
            let mut seen = std::collections::HashSet::new();
            let mut checked = 0;
            read_topic(&brokers, &scores_topic, Duration::from_secs(180), |m| {
                for msg in &m[checked..] {
                    if let Ok(s) = decoder.decode(payload(msg)) {
                        seen.insert(s.event_id);
                    }
                }
                checked = m.len();
                ids.iter().all(|id| seen.contains(id))
            })
        }
    })
    .await?
    .map_err(|e| anyhow::anyhow!("{e:#}\nweir log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))?;
    let status = second.interrupt(Duration::from_secs(30))?;
    assert!(status.success(), "weir run exited with {status} after SIGINT");

    let registry: std::sync::Arc<dyn SchemaRegistry> = std::sync::Arc::new(LocalSchemaRegistry::embedded()?);
    let decoder = Decoder::<Score>::new(registry.clone(), subjects::SCORE, &*registry.latest(subjects::SCORE)?);
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for m in &all {
        *per_event.entry(decoder.decode(payload(m))?.event_id).or_default() += 1;
    }
    let missing = valid.iter().filter(|t| !per_event.contains_key(&t.event_id)).count();
    let replayed_scores = all.len() - per_event.len();
    eprintln!(
        "crash/restart: {} events, {before_restart} scores before the kill, {} scores in all, {} distinct, missing {missing}, scored twice {replayed_scores}",
        valid.len(),
        all.len(),
        per_event.len()
    );
    assert_eq!(missing, 0, "events lost across the crash");
    assert!(replayed_scores > 0, "the restart replayed nothing: the test did not exercise the fence");

    // Every card's features equal one clean pass, despite the replay.
    let expected = expected_card_features(&valid, &default_windows(), config.features.allowed_lateness_ms());
    let keys = KeySpace { prefix: config.features.key_prefix.clone(), entity_kind: "card".into() };
    let client = redis::Client::open(services.redis_url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let mut mismatches = Vec::new();
    for (card, fields) in &expected {
        let actual: BTreeMap<String, String> =
            redis::cmd("HGETALL").arg(keys.features_key(card)).query_async(&mut con).await?;
        for (name, want) in fields {
            let got: f64 = actual.get(name).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            if !((got - want).abs() <= 1e-9 * want.abs().max(1.0)) {
                mismatches.push(format!("{card} {name}: redis {got}, expected {want}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{} of {} cards differ, first: {:?}", mismatches.len(), expected.len(), &mismatches[..mismatches.len().min(5)]);
    Ok(())
}
