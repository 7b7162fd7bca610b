//! The walking skeleton, end to end, against a real broker (Tansu) and a real Redis:
//! 10 000 seeded transactions with poison mixed in → `weir`'s pipeline → every valid event
//! scored exactly once, every poison message dead-lettered with its class, and the Redis
//! features of sampled cards equal to a brute-force recomputation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use tokio_util::sync::CancellationToken;
use weir::stages::score::{spawn_pipeline, PipelineStats};
use weir::wiring::{store_keys, connect_redis_store, load_model};
use weir_ingest::generator::{Content, GeneratorConfig, PoisonKind};
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_schemas::events::dead_letter_headers as h;
use weir_tests::golden::{default_windows, expected_card_features, payload, read_topic, redis_feature_differences};
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config, score_decoder};
use weir_tests::Services;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_with_poison_end_to_end() -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
    let services = Services::start()?;

    let config = pipeline_config(&services, "e2e");
    config.check()?;
    let topics = &config.kafka.topics;
    create_pipeline_topics(&services, &config, 4).await?;

    // The input: 10 000 valid transactions, ~3 % poison, labels on their own topic.
    let mut generator_config = GeneratorConfig::new(20261126, weir_schemas::now_ms() - 3_600_000, 10_000);
    generator_config.poison_rate = 0.03;
    let (messages, valid) = generate(generator_config)?;
    // Poison payloads by bytes, with how many times each was sent (a short garbage body
    // can repeat).
    let mut poison: HashMap<Vec<u8>, (PoisonKind, usize)> = HashMap::new();
    for m in &messages {
        if let Content::Poison(kind) = m.content {
            poison.entry(m.payload.clone()).or_insert((kind, 0)).1 += 1;
        }
    }
    let poison_count: usize = poison.values().map(|(_, n)| n).sum();
    assert_eq!(valid.len(), 10_000);
    assert!(poison_count >= 200, "only {poison_count} poison messages");
    let producer = EventProducer::new(&config.kafka)?;
    let report = produce_all(&producer, topics, messages.into_iter().map(Ok), None, |_| {}).await?;
    assert_eq!(report.transactions, 10_000);

    // The pipeline, on Redis.
    let keys = store_keys(&config);
    let store = Arc::new(connect_redis_store(&config).await?);
    let model = Arc::new(load_model(&config)?);
    let stats = Arc::new(PipelineStats::default());
    let shutdown = CancellationToken::new();
    let pipeline = spawn_pipeline(config.clone(), store, model.clone(), stats, shutdown.clone());

    // Every valid event scored: read the scores topic until all ids are there.
    let score_decoder = score_decoder()?;
    let (brokers, scores_topic, dlq_topic) = (services.brokers.clone(), topics.scores.clone(), topics.dead_letter.clone());
    let (scores, dead) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let scores = read_topic(&brokers, &scores_topic, Duration::from_secs(180), |m| m.len() >= 10_000)?;
        let dead = read_topic(&brokers, &dlq_topic, Duration::from_secs(60), |m| m.len() >= poison_count)?;
        Ok((scores, dead))
    })
    .await??;
    shutdown.cancel();
    let loop_stats = pipeline.await??;

    let mut scored: BTreeMap<String, usize> = BTreeMap::new();
    for m in &scores {
        let score = score_decoder.decode(payload(m))?;
        assert!((0.0..=1.0).contains(&score.value()), "score {} out of range", score.value());
        assert_eq!(score.model_version, "v1");
        assert_eq!(score.features.len(), model.feature_count());
        *scored.entry(score.event_id).or_default() += 1;
    }
    let missing = valid.iter().filter(|tx| !scored.contains_key(&tx.event_id)).count();
    let duplicated = scored.values().filter(|&&n| n > 1).count();
    let unexpected = scored.keys().filter(|id| !id.starts_with("tx-")).count();
    eprintln!(
        "e2e: valid {} scored {} missing {missing} duplicated {duplicated} dead-lettered {} (expected {}), batches {}",
        valid.len(),
        scored.len(),
        dead.len(),
        poison_count,
        loop_stats.batches
    );
    assert_eq!(missing, 0, "valid events without a score");
    assert_eq!(duplicated, 0, "events scored twice in a clean run");
    assert_eq!(unexpected, 0, "scores for events that were not valid transactions");

    // Every poison message on the dead-letter topic, bytes intact, with its reason.
    assert_eq!(dead.len(), poison_count);
    let mut classes_seen = BTreeMap::new();
    let mut dead_by_payload: HashMap<&[u8], usize> = HashMap::new();
    for m in &dead {
        *dead_by_payload.entry(payload(m)).or_default() += 1;
        let (kind, _) = poison.get(payload(m)).unwrap_or_else(|| panic!("dead letter with unknown bytes {:?}", payload(m)));
        let header = |name: &str| weir_ingest::consumer::header_str(m, name).map(str::to_string);
        assert_eq!(header(h::ERROR_CLASS).as_deref(), Some(kind.expected_class().as_str()), "{kind:?}: {:?}", header(h::ERROR_MESSAGE));
        assert_eq!(header(h::SOURCE_TOPIC).as_deref(), Some(topics.input.as_str()));
        assert!(header(h::SOURCE_PARTITION).and_then(|p| p.parse::<i32>().ok()).is_some());
        assert!(header(h::SOURCE_OFFSET).and_then(|p| p.parse::<i64>().ok()).is_some());
        assert!(!header(h::ERROR_MESSAGE).unwrap_or_default().is_empty());
        assert!(m.key().is_some());
        *classes_seen.entry(format!("{kind:?}")).or_insert(0) += 1;
    }
    assert_eq!(classes_seen.len(), PoisonKind::ALL.len(), "every kind of poison exercised: {classes_seen:?}");
    for (bytes, (kind, sent)) in &poison {
        assert_eq!(dead_by_payload.get(bytes.as_slice()), Some(sent), "{kind:?} sent {sent} times");
    }

    // Redis holds what a brute-force pass over the same events gives, for a sample of cards.
    let expected = expected_card_features(&valid, &default_windows(), config.features.allowed_lateness_ms());
    let sample: Vec<_> = expected.iter().step_by(7).collect();
    let differences = redis_feature_differences(&services.redis_url, &keys, sample.iter().copied()).await?;
    assert!(differences.is_empty(), "features differ from a clean pass: {:?}", &differences[..differences.len().min(5)]);
    let client = redis::Client::open(services.redis_url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    for (card, _) in &sample {
        let ttl: i64 = redis::cmd("PTTL").arg(keys.features_key("card", card)).query_async(&mut con).await?;
        assert!(ttl > 3_600_000, "{card}: ttl {ttl} ms is not longer than the longest window");
    }
    let checked = sample.len();
    assert!(checked > 100, "checked only {checked} cards");
    Ok(())
}
