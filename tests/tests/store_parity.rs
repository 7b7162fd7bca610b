//! The Redis store (Lua) and the embedded store (Rust) must give the same answers, bit
//! for bit, on the same stream: in-order, out-of-order within lateness, late, replayed,
//! several partitions, and gaps longer than the pane rings; and the whole state in Redis
//! (every cell and fence) equals the embedded store's, bit for bit.

use rand::{Rng, SeedableRng};
use weir_features::config::{FeaturesConfig, WindowConfig};
use weir_features::memory::EmbeddedStore;
use weir_features::redis_store::{KeySpace, RedisStore};
use weir_schemas::store::{Applied, FeatureStore, Observation, SourcePosition};
use weir_tests::cluster::RedisCluster;
use weir_tests::{unique, Services};

fn parity_config() -> FeaturesConfig {
    FeaturesConfig {
        windows: vec![
            WindowConfig { name: "10s".into(), length_secs: 10, pane_secs: 1 },
            WindowConfig { name: "1m".into(), length_secs: 60, pane_secs: 5 },
            WindowConfig { name: "1h".into(), length_secs: 3600, pane_secs: 60 },
        ],
        allowed_lateness_secs: 20,
        ..FeaturesConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_embedded_stores_agree_bit_for_bit() -> anyhow::Result<()> {
    let services = Services::start()?;
    let config = parity_config();
    let redis = RedisStore::connect(
        &services.redis_url,
        KeySpace { prefix: unique("parity"), entity_kind: "card".into() },
        config.window_specs(),
        config.allowed_lateness_ms(),
        config.ttl_ms(),
    )
    .await?;
    assert!(!redis.is_cluster());
    check_parity(&redis, &config).await
}

/// The same check against a 3-master Redis Cluster: the batch is split per hash slot and
/// the answers and state must still be the embedded store's, bit for bit; and the
/// entities' keys must really be spread over all three masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_and_embedded_stores_agree_bit_for_bit() -> anyhow::Result<()> {
    let cluster = RedisCluster::start()?;
    let config = parity_config();
    let redis = RedisStore::connect_cluster(
        &cluster.seeds,
        KeySpace { prefix: unique("parity"), entity_kind: "card".into() },
        config.window_specs(),
        config.allowed_lateness_ms(),
        config.ttl_ms(),
    )
    .await?;
    assert!(redis.is_cluster());
    check_parity(&redis, &config).await?;
    // 50 cards, two keys each (state and readable hash, same slot), all on some master:
    // every master holds some, and together exactly all of them.
    let per_master = cluster.keys_per_master()?;
    eprintln!("keys per master: {per_master:?}\n{}", cluster.nodes()?);
    assert_eq!(per_master.iter().sum::<u64>(), 100, "{per_master:?}");
    assert!(per_master.iter().all(|&n| n >= 10 && n % 2 == 0), "keys spread over all masters, an entity's two together: {per_master:?}");
    Ok(())
}

async fn check_parity(redis: &RedisStore, config: &FeaturesConfig) -> anyhow::Result<()> {
    assert!(config.problems().is_empty());
    let embedded = EmbeddedStore::new(config.window_specs(), config.allowed_lateness_ms());

    // 20 000 observations on 50 cards from 3 partitions: time mostly moves forward, with
    // jitter up to 30 s back (so some are out of order and some late), occasional jumps of
    // hours, and every tenth batch replayed.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut t = 1_767_225_600_000i64;
    let mut offsets = [0i64; 3];
    let mut all = Vec::new();
    for _ in 0..20_000 {
        t += rng.random_range(0..800);
        if rng.random::<f64>() < 0.001 {
            t += rng.random_range(3_600_000..20_000_000);
        }
        let partition = rng.random_range(0..3);
        offsets[partition] += 1;
        all.push(Observation {
            entity: format!("card-{}", rng.random_range(0..50)),
            event_time_ms: t - rng.random_range(0..30_000),
            value: (rng.random_range(1.0..900.0f64) * 100.0).round() / 100.0 + 1e-3 * rng.random::<f64>(),
            position: SourcePosition { topic: "tx".into(), partition: partition as i32, offset: offsets[partition] },
        });
    }
    let mut counts = [0usize; 3];
    for (i, batch) in all.chunks(250).enumerate() {
        let rounds = if i % 10 == 9 { 2 } else { 1 };
        for _ in 0..rounds {
            let a = redis.observe(batch).await?;
            let b = embedded.observe(batch).await?;
            for (k, (ra, rb)) in a.iter().zip(&b).enumerate() {
                assert_eq!(ra.applied, rb.applied, "batch {i} item {k}: {:?}", batch[k]);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&ra.values), bits(&rb.values), "batch {i} item {k}: {:?} vs {:?}", ra.values, rb.values);
                counts[match ra.applied {
                    Applied::Applied => 0,
                    Applied::Replayed => 1,
                    Applied::Late => 2,
                }] += 1;
            }
        }
    }
    for card in 0..50 {
        let id = format!("card-{card}");
        assert_eq!(redis.read(&id).await?, embedded.read(&id).await?, "{id}");
        // The whole state too: every pane, running total and fence, byte for byte.
        let (a, b) = (redis.read_state(&id).await?, embedded.state(&id));
        assert!(a.is_some(), "{id} has a state in redis");
        let max_t = b.as_ref().and_then(|s| s.max_event_time()).unwrap_or_default();
        let bits = |s: &weir_features::windows::EntityState| -> (Vec<u64>, Vec<(String, i32, i64)>) {
            (s.cells().iter().map(|x| x.to_bits()).collect(), s.fences())
        };
        assert_eq!(a.as_ref().map(bits), b.as_ref().map(bits), "{id}");
        // Request-time reads as of the newest event, a little later, and after the card
        // has been quiet for longer than every window (all empty by then).
        for dt in [0, 1, 30_000, 7_200_000] {
            let (a, b) = (redis.read_at(&id, max_t + dt).await?, embedded.read_at(&id, max_t + dt).await?);
            assert_eq!(a, b, "{id} as of max_t + {dt}");
            if dt == 0 {
                assert_eq!(a, embedded.read(&id).await?, "{id}: read_at(max_t) is read");
            }
            if dt == 7_200_000 {
                assert_eq!(a, Some(vec![0.0; 6]), "{id}");
            }
        }
    }
    eprintln!("parity: applied {}, replayed {}, late {}", counts[0], counts[1], counts[2]);
    assert!(counts.iter().all(|&c| c > 100), "every path exercised: {counts:?}");
    Ok(())
}

/// The Redis store against the golden stream of `tools/window_golden.py` (brute force,
/// exact sums), which `features/tests/golden.rs` holds the embedded store to as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_matches_the_brute_force_golden_stream() -> anyhow::Result<()> {
    let services = Services::start()?;
    let golden: serde_json::Value = serde_json::from_str(include_str!("../../features/tests/golden/windows.json"))?;
    let lateness = golden["lateness_ms"].as_i64().unwrap_or_default();
    let windows: Vec<weir_features::windows::WindowSpec> = golden["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            weir_features::windows::WindowSpec::new(
                w["name"].as_str().unwrap_or_default(),
                w["length_ms"].as_u64().unwrap_or_default(),
                w["pane_ms"].as_u64().unwrap_or_default(),
                lateness,
            )
        })
        .collect();
    let redis = RedisStore::connect(
        &services.redis_url,
        KeySpace { prefix: unique("golden"), entity_kind: "card".into() },
        windows,
        lateness,
        3_600_000,
    )
    .await?;
    let observations: Vec<Observation> = golden["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Observation {
            entity: "card-1".into(),
            event_time_ms: e["t"].as_i64().unwrap_or_default(),
            value: e["value"].as_f64().unwrap_or_default(),
            position: SourcePosition {
                topic: e["topic"].as_str().unwrap_or_default().into(),
                partition: e["partition"].as_i64().unwrap_or_default() as i32,
                offset: e["offset"].as_i64().unwrap_or_default(),
            },
        })
        .collect();
    // In two batches, so that the readable hash is written mid-stream and at the end.
    let mut results = redis.observe(&observations[..7]).await?;
    results.extend(redis.observe(&observations[7..]).await?);
    let expected = golden["expected"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(expected.len() == observations.len() && results.len() == expected.len());
    let numbers = |v: &serde_json::Value| -> Vec<f64> { v.as_array().into_iter().flatten().filter_map(|x| x.as_f64()).collect() };
    for (i, (r, e)) in results.iter().zip(&expected).enumerate() {
        let status = match r.applied {
            Applied::Applied => "applied",
            Applied::Replayed => "replayed",
            Applied::Late => "late",
        };
        assert_eq!((status, r.values.clone()), (e["status"].as_str().unwrap_or_default(), numbers(&e["values"])), "#{i}: {}", e["note"]);
    }
    assert_eq!(redis.read("card-1").await?, Some(numbers(&golden["current"])));
    Ok(())
}
