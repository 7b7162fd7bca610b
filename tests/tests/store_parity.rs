//! The Redis store and the embedded store run the same engine; through Redis every
//! entity's state makes a round trip per batch (read, decode, apply, encode, compare-and-
//! set). They must give the same answers, bit for bit, on the same stream — in-order,
//! out-of-order within lateness, late (behind the entity, below the partition watermark),
//! replayed, several partitions, two entity kinds, every aggregation, distinct counts
//! past the exact limit, gaps longer than the pane rings — and the same states, byte for
//! byte. Plus: the brute-force golden stream, and concurrent writers of shared entities.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use weir_features::config::{AggregationConfig, EntityConfig, FeaturesConfig, WindowConfig};
use weir_features::definitions::FeatureDefinitions;
use weir_features::embedded::EmbeddedStore;
use weir_features::redis_store::{KeySpace, RedisStore};
use weir_schemas::record::{EventRecord, FieldValue};
use weir_schemas::store::{Applied, EntityKey, FeatureStore, Observation, ObserveOutcome, SourcePosition};
use weir_tests::cluster::RedisCluster;
use weir_tests::{unique, Services};

fn agg(kind: &str, field: Option<&str>) -> AggregationConfig {
    AggregationConfig { kind: kind.into(), field: field.map(str::to_string), alias: None }
}

/// Cards with every aggregation, and merchants (shared by all partitions).
fn parity_config() -> FeaturesConfig {
    FeaturesConfig {
        windows: vec![
            WindowConfig { name: "10s".into(), length_secs: 10, pane_secs: 1 },
            WindowConfig { name: "1m".into(), length_secs: 60, pane_secs: 5 },
            WindowConfig { name: "1h".into(), length_secs: 3600, pane_secs: 60 },
        ],
        allowed_lateness_secs: 20,
        // Small, so that busy entities switch to sketches mid-stream.
        distinct_exact_limit: 100,
        entities: vec![
            EntityConfig {
                name: "card".into(),
                key: "card_id".into(),
                windows: None,
                aggregations: vec![
                    agg("count", None),
                    agg("sum", Some("amount")),
                    agg("mean", Some("amount")),
                    agg("min", Some("amount")),
                    agg("max", Some("amount")),
                    agg("distinct", Some("merchant_id")),
                    agg("seconds_since_last", None),
                ],
            },
            EntityConfig {
                name: "merchant".into(),
                key: "merchant_id".into(),
                windows: Some(vec!["1m".into(), "1h".into()]),
                aggregations: vec![agg("count", None), agg("sum", Some("amount")), agg("distinct", Some("card_id"))],
            },
        ],
        ..FeaturesConfig::default()
    }
}

/// An event's record for `defs`' paths.
fn record(defs: &FeatureDefinitions, t: i64, card: &str, merchant: &str, amount: Option<f64>) -> EventRecord {
    EventRecord::new(
        defs.paths()
            .iter()
            .map(|p| match p.as_str() {
                "event_time" => FieldValue::Int(t),
                "card_id" => FieldValue::Str(card.into()),
                "merchant_id" => FieldValue::Str(merchant.into()),
                "amount" => amount.map_or(FieldValue::Null, FieldValue::Float),
                _ => FieldValue::Missing,
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_embedded_stores_agree_bit_for_bit() -> anyhow::Result<()> {
    let services = Services::start()?;
    let config = parity_config();
    let defs = FeatureDefinitions::new(&config)?;
    let redis = RedisStore::connect(&services.redis_url, KeySpace::new(&unique("parity")), defs.engine_spec().clone(), config.ttl_ms()).await?;
    assert!(!redis.is_cluster());
    check_parity(&redis, &defs).await?;
    // The readable hash of a card: its values as of its newest event, by name.
    let client = redis::Client::open(services.redis_url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let fields: BTreeMap<String, String> =
        redis::cmd("HGETALL").arg(redis.keys().features_key("card", "card-0")).query_async(&mut con).await?;
    let values = redis.read(&EntityKey { kind: "card".into(), id: "card-0".into() }).await?.unwrap_or_default();
    let names = defs.engine_spec().entities[0].value_names();
    assert_eq!(fields.len(), names.len() + 1, "{fields:?}");
    for (name, v) in names.iter().zip(&values) {
        assert_eq!(fields[name].parse::<f64>()?, *v, "{name}");
    }
    assert!(fields["event_time_max"].parse::<i64>()? > 1_767_225_600_000);
    let ttl: i64 = redis::cmd("PTTL").arg(redis.keys().state_key("card", "card-0")).query_async(&mut con).await?;
    assert!(ttl > 0 && ttl <= config.ttl_ms(), "{ttl}");
    Ok(())
}

/// The same against a 3-master Redis Cluster: rounds split per hash slot, the answers and
/// states still the embedded store's; and the entities really spread over all masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_and_embedded_stores_agree_bit_for_bit() -> anyhow::Result<()> {
    let cluster = RedisCluster::start()?;
    let config = parity_config();
    let defs = FeatureDefinitions::new(&config)?;
    let redis = RedisStore::connect_cluster(&cluster.seeds, KeySpace::new(&unique("parity")), defs.engine_spec().clone(), config.ttl_ms()).await?;
    assert!(redis.is_cluster());
    check_parity(&redis, &defs).await?;
    // 50 cards and 20 merchants, two keys each (state and readable hash, same slot), plus 3
    // partition watermarks (one slot): every master holds some.
    let per_master = cluster.keys_per_master()?;
    eprintln!("keys per master: {per_master:?}\n{}", cluster.nodes()?);
    assert_eq!(per_master.iter().sum::<u64>(), 2 * 70 + 3, "{per_master:?}");
    assert!(per_master.iter().all(|&n| n >= 20), "keys spread over all masters: {per_master:?}");
    Ok(())
}

async fn check_parity(redis: &RedisStore, defs: &FeatureDefinitions) -> anyhow::Result<()> {
    let embedded = EmbeddedStore::new(defs.engine_spec().clone());
    // 20 000 events on 50 cards and 20 merchants from 3 partitions: time mostly moves
    // forward, with jitter up to 30 s back (some out of order, some late), occasional
    // jumps of hours, missing amounts, and every tenth batch replayed.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut t = 1_767_225_600_000i64;
    let mut offsets = [0i64; 3];
    let mut events: Vec<Vec<Observation>> = Vec::new();
    let mut records = Vec::new();
    for _ in 0..20_000 {
        t += rng.random_range(0..800);
        if rng.random::<f64>() < 0.001 {
            t += rng.random_range(3_600_000..20_000_000);
        }
        let partition = rng.random_range(0..3usize);
        offsets[partition] += 1;
        let card = format!("card-{}", rng.random_range(0..50));
        let merchant = format!("m-{}", rng.random_range(0..20));
        let amount = (rng.random::<f64>() > 0.05).then(|| (rng.random_range(1.0..900.0f64) * 100.0).round() / 100.0 + 1e-3 * rng.random::<f64>());
        let r = record(defs, t - rng.random_range(0..30_000), &card, &merchant, amount);
        let position = SourcePosition { topic: "tx".into(), partition: partition as i32, offset: offsets[partition] };
        events.push(defs.observations(&r, position));
        records.push(r);
    }
    let mut counts = [0usize; 3];
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let keys: Vec<EntityKey> = (0..50)
        .map(|c| EntityKey { kind: "card".into(), id: format!("card-{c}") })
        .chain((0..20).map(|m| EntityKey { kind: "merchant".into(), id: format!("m-{m}") }))
        .collect();
    // Entities whose distinct field was sketched after some batch, and those of them that
    // were exact again after a later one (the hour-long jumps empty every ring).
    let (mut ever_sketched, mut back_to_exact) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
    for (i, chunk) in events.chunks(250).enumerate() {
        let batch: Vec<Observation> = chunk.iter().flatten().cloned().collect();
        let rounds = if i % 10 == 9 { 2 } else { 1 };
        for _ in 0..rounds {
            let a = redis.observe(&batch).await?;
            let b = embedded.observe(&batch).await?;
            assert_eq!((&a.late, a.replayed), (&b.late, b.replayed), "batch {i}");
            for (k, (ra, rb)) in a.results.iter().zip(&b.results).enumerate() {
                assert_eq!(ra.applied, rb.applied, "batch {i} item {k}: {:?}", batch[k]);
                assert_eq!(bits(&ra.values), bits(&rb.values), "batch {i} item {k}: {:?} vs {:?}", ra.values, rb.values);
                counts[match ra.applied {
                    Applied::Applied => 0,
                    Applied::Replayed => 1,
                    Applied::Late => 2,
                }] += 1;
            }
        }
        for key in &keys {
            let sketched = embedded.state(&key.kind, &key.id).is_some_and(|s| s.is_sketched(0));
            if sketched {
                ever_sketched.insert(key.id.clone());
            } else if ever_sketched.contains(&key.id) {
                back_to_exact.insert(key.id.clone());
            }
        }
    }
    let mut sketched = 0;
    for key in &keys {
        let def = defs.engine_spec().def(&key.kind)?;
        assert_eq!(redis.read(key).await?, embedded.read(key).await?, "{key:?}");
        // The whole state, byte for byte.
        let (a, b) = (redis.read_state(&key.kind, &key.id).await?, embedded.state(&key.kind, &key.id));
        let (a, b) = (a.expect("in redis"), b.expect("embedded"));
        assert_eq!(a.to_bytes(def), b.to_bytes(def), "{key:?}");
        sketched += b.is_sketched(0) as usize;
        // Request-time reads as of the newest event, a little later, and after longer than
        // every window (all windows empty by then).
        let max_t = b.max_event_time().unwrap_or_default();
        for dt in [0, 1, 30_000, 7_200_000] {
            let (a, b) = (redis.read_at(std::slice::from_ref(key), max_t + dt).await?, embedded.read_at(std::slice::from_ref(key), max_t + dt).await?);
            assert_eq!(a, b, "{key:?} as of max_t + {dt}");
            if dt == 0 {
                assert_eq!(a[0], embedded.read(key).await?, "{key:?}: read_at(max_t) is read");
            }
        }
    }
    // All entities at once, and previews of a next event, one round trip each.
    let at = records.last().and_then(|r| defs.event_time(r)).unwrap_or_default();
    assert_eq!(redis.read_at(&keys, at).await?, embedded.read_at(&keys, at).await?);
    let next = record(defs, at + 1_000, "card-3", "m-4", Some(12.5));
    assert_eq!(defs.vector_at(redis, &next).await?, defs.vector_at(&embedded, &next).await?);
    eprintln!(
        "parity: applied {}, replayed {}, late {}; {} of {} entities sketched at some point, {} of them exact again later, {sketched} sketched at the end",
        counts[0],
        counts[1],
        counts[2],
        ever_sketched.len(),
        keys.len(),
        back_to_exact.len()
    );
    assert!(counts.iter().all(|&c| c > 100), "every path exercised: {counts:?}");
    assert!(!ever_sketched.is_empty() && ever_sketched.len() < keys.len(), "some entities past the exact distinct limit, not all: {ever_sketched:?}");
    assert!(!back_to_exact.is_empty(), "some sketched entities went back to exact counts");
    Ok(())
}

/// The Redis store against the golden stream of `tools/golden/window_golden.py` (brute force,
/// exact sums), which `features/tests/golden.rs` holds the embedded store to as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_matches_the_brute_force_golden_stream() -> anyhow::Result<()> {
    let services = Services::start()?;
    let golden: serde_json::Value = serde_json::from_str(include_str!("../../features/tests/golden/features.json"))?;
    let config: FeaturesConfig = serde_json::from_value(golden["features"].clone())?;
    let defs = FeatureDefinitions::new(&config)?;
    let redis = RedisStore::connect(&services.redis_url, KeySpace::new(&unique("golden")), defs.engine_spec().clone(), 3_600_000).await?;
    let topic = golden["topic"].as_str().unwrap_or_default();
    let events: Vec<Vec<Observation>> = golden["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let record = EventRecord::from_json(&e["fields"], defs.paths());
            let position = SourcePosition {
                topic: topic.into(),
                partition: e["partition"].as_i64().unwrap_or_default() as i32,
                offset: e["offset"].as_i64().unwrap_or_default(),
            };
            defs.observations(&record, position)
        })
        .collect();
    let expected = golden["expected"].as_array().cloned().unwrap_or_default();
    anyhow::ensure!(expected.len() == events.len());
    let numbers = |v: &serde_json::Value| -> Vec<f64> { v.as_array().into_iter().flatten().filter_map(|x| x.as_f64()).collect() };
    // In batches of 7, so that states and watermarks are written mid-stream.
    for (b, chunk) in events.chunks(7).enumerate() {
        let batch: Vec<Observation> = chunk.iter().flatten().cloned().collect();
        let outcome = redis.observe(&batch).await?;
        for (k, r) in outcome.results.iter().enumerate() {
            let i = b * 7 + k / 2;
            let want = &expected[i][&batch[k].kind];
            let status = match r.applied {
                Applied::Applied => "applied",
                Applied::Replayed => "replayed",
                Applied::Late => "late",
            };
            assert_eq!((status, r.values.clone()), (want["status"].as_str().unwrap_or_default(), numbers(&want["values"])), "#{i} {}: {}", batch[k].kind, expected[i]["note"]);
        }
    }
    for (kind, ids) in golden["current"].as_object().into_iter().flatten() {
        for (id, values) in ids.as_object().into_iter().flatten() {
            assert_eq!(redis.read(&EntityKey { kind: kind.clone(), id: id.clone() }).await?, Some(numbers(values)), "{kind} {id}");
        }
    }
    // The watermarks reached Redis.
    let client = redis::Client::open(services.redis_url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    for (partition, wm) in golden["watermarks"].as_object().into_iter().flatten() {
        let (topic, p) = partition.rsplit_once(':').unwrap_or_default();
        let stored: Option<i64> = redis::cmd("GET").arg(redis.keys().watermark_key(topic, p.parse()?)).query_async(&mut con).await?;
        assert_eq!(stored, wm.as_i64(), "{partition}");
        // Regression: watermark keys had no time-to-live and outlived every state. They
        // expire with the states (the store's TTL, here 1 h), refreshed by every batch.
        let ttl: i64 = redis::cmd("PTTL").arg(redis.keys().watermark_key(topic, p.parse()?)).query_async(&mut con).await?;
        assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{partition}: watermark PTTL {ttl} ms");
    }
    Ok(())
}

/// Two Redis stores (as two processes would hold) on one fresh key space, with `defs`.
async fn two_stores(services: &Services, prefix: &str, defs: &FeatureDefinitions) -> anyhow::Result<(RedisStore, RedisStore)> {
    let prefix = unique(prefix);
    let connect = || RedisStore::connect(&services.redis_url, KeySpace::new(&prefix), defs.engine_spec().clone(), parity_config().ttl_ms());
    Ok((connect().await?, connect().await?))
}

/// The observations of one event of card-1 at merchant m-1.
fn card_1_event(defs: &FeatureDefinitions, t: i64, amount: f64, partition: i32, offset: i64) -> Vec<Observation> {
    let r = record(defs, t, "card-1", "m-1", Some(amount));
    defs.observations(&r, SourcePosition { topic: "tx".into(), partition, offset })
}

/// A state cached by one store goes stale when another process writes the entity: the
/// compare-and-set refuses the write, the store reads the entity again and recomputes, and
/// the result is what one store alone would have computed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cached_state_is_refused_and_recomputed() -> anyhow::Result<()> {
    let services = Services::start()?;
    let defs = FeatureDefinitions::new(&parity_config())?;
    let (a, b) = two_stores(&services, "stale", &defs).await?;
    let embedded = EmbeddedStore::new(defs.engine_spec().clone());
    let t0 = 1_767_225_600_000i64;
    let batch = |i: i64, partition: i32| card_1_event(&defs, t0 + i * 1_000, 10.0 + i as f64, partition, i);
    // a writes (and caches) card-1; b writes it behind a's back; a writes again.
    for (store, i, partition) in [(&a, 1, 0), (&a, 2, 0), (&b, 3, 1), (&a, 4, 0), (&b, 5, 1), (&a, 6, 0)] {
        let got = store.observe(&batch(i, partition)).await?;
        let want = embedded.observe(&batch(i, partition)).await?;
        let values = |o: &ObserveOutcome| o.results.iter().map(|r| r.values.clone()).collect::<Vec<_>>();
        assert_eq!(values(&got), values(&want), "event {i}");
    }
    let key = EntityKey { kind: "card".into(), id: "card-1".into() };
    assert_eq!(a.read(&key).await?, embedded.read(&key).await?);
    assert!(a.conflicts() >= 2, "a's cached state was refused after each of b's writes: {} conflicts", a.conflicts());
    let (hits, misses) = a.state_cache_stats();
    assert!(hits >= 3 && misses >= 1, "a served card-1 from its cache: {hits} hits, {misses} misses");
    Ok(())
}

/// Regression (found in review): versions were a counter that restarted at 1 when an
/// entity's keys disappeared (expiry, a flush, a failover), so a state cached under
/// version N passed the compare-and-set against a new incarnation's version N and
/// overwrote the other writer's events. Versions now carry an incarnation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_state_never_passes_against_a_recreated_entity() -> anyhow::Result<()> {
    let services = Services::start()?;
    let defs = FeatureDefinitions::new(&parity_config())?;
    let (a, b) = two_stores(&services, "aba", &defs).await?;
    let t0 = 1_767_225_600_000i64;
    let event = |t, amount, partition, offset| card_1_event(&defs, t, amount, partition, offset);
    a.observe(&event(t0, 1.0, 0, 1)).await?;
    // The entity's keys vanish (as after a flush or a failover), and b creates it afresh.
    let client = redis::Client::open(services.redis_url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    for kind in ["card", "merchant"] {
        let id = if kind == "card" { "card-1" } else { "m-1" };
        let _: i64 = redis::cmd("DEL").arg(a.keys().state_key(kind, id)).arg(a.keys().features_key(kind, id)).query_async(&mut con).await?;
    }
    b.observe(&event(t0 + 1_000, 100.0, 1, 1)).await?;
    // a's cached state (one event, version of the old incarnation) must be refused.
    a.observe(&event(t0 + 2_000, 10.0, 0, 2)).await?;
    let key = EntityKey { kind: "card".into(), id: "card-1".into() };
    let state = a.read_state("card", "card-1").await?.expect("card-1 in redis");
    let values = state.current_values(defs.engine_spec().def("card")?).unwrap_or_default();
    let names = defs.engine_spec().def("card")?.value_names().to_vec();
    let sum = names.iter().position(|n| n == "amount_sum_1m").map(|i| values[i]);
    assert_eq!(sum, Some(110.0), "b's event survives a's write: {names:?} {values:?}");
    assert!(a.conflicts() >= 1, "a's stale cached state was refused");
    assert_eq!(a.read(&key).await?, Some(values));
    Ok(())
}

/// Regression (found in review): an entity whose events in a batch were all replays was
/// not written, so the version of its cached state was never checked, and the replays
/// were answered from it even after another process had written the entity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_are_answered_from_the_current_state_not_a_stale_cache() -> anyhow::Result<()> {
    let services = Services::start()?;
    let defs = FeatureDefinitions::new(&parity_config())?;
    let (a, b) = two_stores(&services, "replaycache", &defs).await?;
    let embedded = EmbeddedStore::new(defs.engine_spec().clone());
    let t0 = 1_767_225_600_000i64;
    let event = |t, amount, partition, offset| card_1_event(&defs, t, amount, partition, offset);
    // a applies its event; b applies an earlier one in the same pane; a sees its own again.
    let values = |o: &ObserveOutcome| o.results.iter().map(|r| (r.applied, r.values.clone())).collect::<Vec<_>>();
    for (store, e) in [(&a, event(t0 + 1_000, 1.0, 0, 1)), (&b, event(t0 + 500, 2.0, 1, 1)), (&a, event(t0 + 1_000, 1.0, 0, 1))] {
        let (got, want) = (store.observe(&e).await?, embedded.observe(&e).await?);
        assert_eq!(values(&got), values(&want));
    }
    assert!(a.conflicts() >= 1, "a's cached state was checked and found stale");
    Ok(())
}

/// Two processes feeding the same entities from their own partitions, at the same time
/// (a merchant is on every partition): the compare-and-set makes each recompute on
/// conflict, and no update is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_shared_entities_lose_nothing() -> anyhow::Result<()> {
    let services = Services::start()?;
    let defs = FeatureDefinitions::new(&parity_config())?;
    let (a, b) = two_stores(&services, "cas", &defs).await?;
    let t0 = 1_767_225_600_000i64;
    // Per writer 40 batches of 25 events, all on 3 merchants, 1 s apart, one partition each.
    let batches = |partition: i32| -> Vec<Vec<Observation>> {
        (0..40)
            .map(|b| {
                (0..25)
                    .flat_map(|i| {
                        let n = b * 25 + i;
                        let r = record(&defs, t0 + n * 10, &format!("card-{partition}-{n}"), &format!("m-{}", n % 3), Some(1.0));
                        defs.observations(&r, SourcePosition { topic: "tx".into(), partition, offset: n })
                    })
                    .collect()
            })
            .collect()
    };
    async fn run(store: &RedisStore, batches: Vec<Vec<Observation>>) -> anyhow::Result<()> {
        for batch in batches {
            store.observe(&batch).await?;
        }
        Ok(())
    }
    let (ra, rb) = tokio::join!(run(&a, batches(0)), run(&b, batches(1)));
    ra?;
    rb?;
    let mut total = 0.0;
    for m in 0..3 {
        let values = a.read(&EntityKey { kind: "merchant".into(), id: format!("m-{m}") }).await?.unwrap_or_default();
        // merchant values: 1m (count, sum, distinct), 1h (count, sum, distinct); 1h count.
        total += values[3];
    }
    eprintln!("compare-and-set conflicts: {} + {}", a.conflicts(), b.conflicts());
    assert_eq!(total, 2_000.0, "every event of both writers counted once");
    Ok(())
}
