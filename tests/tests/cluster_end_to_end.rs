//! `weir run` (the real binary) against a real broker (Tansu) and a 3-master Redis
//! Cluster: 5 000 seeded transactions on 4 partitions → every event scored exactly once,
//! and every card's features in the cluster equal to a brute-force recomputation over the
//! same events, with the cards' keys spread over all three masters.

use std::collections::HashMap;
use std::time::Duration;

use weir::config::RedisConfig;
use weir::wiring::store_keys;
use weir_ingest::generator::GeneratorConfig;
use weir_ingest::load_producer::produce_all;
use weir_ingest::producer::EventProducer;
use weir_tests::cluster::RedisCluster;
use weir_tests::golden::{default_windows, expected_card_features, payload, read_topic, redis_cluster_feature_differences};
use weir_tests::setup::{create_pipeline_topics, generate, pipeline_config, score_decoder};
use weir_tests::{Services, WeirProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_run_on_a_redis_cluster_scores_everything_with_golden_features() -> anyhow::Result<()> {
    let services = Services::start()?;
    let cluster = RedisCluster::start()?;
    let dir = tempfile::tempdir()?;

    let mut config = pipeline_config(&services, "cluster");
    config.redis = Some(RedisConfig {
        url: cluster.seeds[0].clone(),
        cluster: true,
        cluster_seeds: cluster.seeds[1..].to_vec(),
        ..RedisConfig::single("")
    });
    // This test is about scores and features; the monitor would publish drift alerts to a
    // topic not created here.
    config.monitor.enabled = false;
    config.check()?;
    let config_path = dir.path().join("weir.toml");
    std::fs::write(&config_path, toml::to_string(&config)?)?;
    create_pipeline_topics(&services, &config, 4).await?;

    let mut generator = GeneratorConfig::new(20261127, weir_schemas::now_ms() - 3_600_000, 5_000);
    generator.poison_rate = 0.0;
    let (messages, valid) = generate(generator)?;
    assert_eq!(valid.len(), 5_000);
    let producer = EventProducer::new(&config.kafka)?;
    produce_all(&producer, &config.kafka.topics, messages.into_iter().map(Ok), None, |_| {}).await?;

    let log = dir.path().join("weir.log");
    let weir = WeirProcess::spawn(&["run", "--config", &config_path.to_string_lossy()], log.clone())?;
    let (brokers, topic) = (services.brokers.clone(), config.kafka.topics.scores.clone());
    let scores = tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, Duration::from_secs(180), |m| m.len() >= 5_000))
        .await?
        .map_err(|e| anyhow::anyhow!("{e:#}\nweir log:\n{}", std::fs::read_to_string(&log).unwrap_or_default()))?;
    let status = weir.interrupt(Duration::from_secs(30))?;
    anyhow::ensure!(status.success(), "weir run exited with {status}");

    let decoder = score_decoder()?;
    let mut per_event: HashMap<String, usize> = HashMap::new();
    for m in &scores {
        *per_event.entry(decoder.decode(payload(m))?.event_id).or_default() += 1;
    }
    let missing = valid.iter().filter(|t| !per_event.contains_key(&t.event_id)).count();
    let twice = per_event.values().filter(|&&n| n > 1).count();
    assert_eq!((missing, twice), (0, 0), "every event scored once");

    // Every card, not a sample.
    let keys = store_keys(&config);
    let expected = expected_card_features(&valid, &default_windows(), config.features.allowed_lateness_ms());
    let differences = redis_cluster_feature_differences(&cluster.seeds, &keys, expected.iter()).await?;
    let per_master = cluster.keys_per_master()?;
    eprintln!("cluster e2e: {} scores, {} cards, differences {}, keys per master {per_master:?}", scores.len(), expected.len(), differences.len());
    assert!(differences.is_empty(), "features differ from a clean pass: {:?}", &differences[..differences.len().min(5)]);
    // Two keys per card (the serving copy: readable hash and state), plus the serving
    // copy's marker; the watermarks live with the state, in the changelog.
    assert_eq!(per_master.iter().sum::<u64>(), 2 * expected.len() as u64 + 1, "two keys per card and the marker: {per_master:?}");
    assert!(per_master.iter().all(|&n| n as usize > expected.len() / 3), "keys on every master: {per_master:?}");
    Ok(())
}
