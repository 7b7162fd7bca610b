//! The Redis store (Lua) and the embedded store (Rust) must give the same answers, bit
//! for bit, on the same stream: in-order, out-of-order within lateness, late, replayed,
//! several partitions, and gaps longer than the pane rings; and the whole state string in
//! Redis equals the embedded store's state, byte for byte.

use rand::{Rng, SeedableRng};
use weir_features::config::{FeaturesConfig, WindowConfig};
use weir_features::memory::EmbeddedStore;
use weir_features::redis_store::{KeySpace, RedisStore};
use weir_schemas::store::{Applied, FeatureStore, Observation, SourcePosition};
use weir_tests::{unique, Services};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_embedded_stores_agree_bit_for_bit() -> anyhow::Result<()> {
    let services = Services::start()?;
    let config = FeaturesConfig {
        windows: vec![
            WindowConfig { name: "10s".into(), length_secs: 10, pane_secs: 1 },
            WindowConfig { name: "1m".into(), length_secs: 60, pane_secs: 5 },
            WindowConfig { name: "1h".into(), length_secs: 3600, pane_secs: 60 },
        ],
        allowed_lateness_secs: 20,
        ..FeaturesConfig::default()
    };
    assert!(config.problems().is_empty());
    let redis = RedisStore::connect(
        &services.redis_url,
        KeySpace { prefix: unique("parity"), entity_kind: "card".into() },
        config.window_specs(),
        config.allowed_lateness_ms(),
        config.ttl_ms(),
    )
    .await?;
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
        assert_eq!(a.map(|s| s.to_bytes()), b.map(|s| s.to_bytes()), "{id}");
    }
    eprintln!("parity: applied {}, replayed {}, late {}", counts[0], counts[1], counts[2]);
    assert!(counts.iter().all(|&c| c > 100), "every path exercised: {counts:?}");
    Ok(())
}
