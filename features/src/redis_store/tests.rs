use super::*;
use weir_schemas::store::{Applied, Observation};
use crate::config::FeaturesConfig;
use crate::definitions::FeatureDefinitions;

fn state() -> EntityState {
    let defs = FeatureDefinitions::new(&FeaturesConfig::default()).expect("default features");
    EntityState::new(&defs.engine_spec().entities[0])
}

#[test]
fn state_cache_takes_puts_and_drops_the_least_recently_used() {
    let mut cache = StateCache::new(10);
    for i in 0..10 {
        cache.put("card", &format!("c{i}"), format!("v{i}"), state());
    }
    // Taken out, not there for a second taker; put back under its new version.
    assert_eq!(cache.take("card", "c0").map(|(v, _)| v), Some("v0".to_string()));
    assert!(cache.take("card", "c0").is_none());
    cache.put("card", "c0", "v0b".into(), state());
    assert_eq!(cache.len, 10);
    // One over capacity: the least recently used tenth goes (c1, not c0, which was just
    // put back), the newest stays.
    cache.put("merchant", "m1", "w1".into(), state());
    assert!(cache.len <= 10, "{}", cache.len);
    assert!(cache.take("card", "c1").is_none());
    assert_eq!(cache.take("card", "c0").map(|(v, _)| v), Some("v0b".to_string()));
    assert_eq!(cache.take("merchant", "m1").map(|(v, _)| v), Some("w1".to_string()));
    assert_eq!((cache.hits, cache.misses), (3, 2));
    // Capacity 0: nothing is kept.
    let mut off = StateCache::new(0);
    off.put("card", "c", "v".into(), state());
    assert!(off.take("card", "c").is_none());
}

/// A `redis-server` on a free loopback port, no persistence, killed on drop.
struct RedisServer {
    child: std::process::Child,
    url: String,
}

impl RedisServer {
    fn start() -> RedisServer {
        use std::net::{TcpListener, TcpStream};
        use std::time::{Duration, Instant};
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { child, url: format!("redis://127.0.0.1:{port}") }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn observation(defs: &FeatureDefinitions, card: &str, t: i64, offset: i64) -> Vec<Observation> {
    use weir_schemas::record::{EventRecord, FieldValue};
    use weir_schemas::store::SourcePosition;
    let record = EventRecord::new(
        defs.paths()
            .iter()
            .map(|p| match p.as_str() {
                "event_time" => FieldValue::Int(t),
                "card_id" => FieldValue::Str(card.into()),
                "merchant_id" => FieldValue::Str("m-1".into()),
                "amount" => FieldValue::Float(10.0),
                _ => FieldValue::Missing,
            })
            .collect(),
    );
    defs.observations(&record, SourcePosition { topic: "tx".into(), partition: 0, offset })
}

/// Regression (issue 24): a state blob that did not decode was a non-retryable error that
/// failed every batch touching the entity, on every restart. Now it is copied aside,
/// counted, and the entity restarts from an empty state; other entities are untouched.
#[test]
fn a_corrupt_state_is_quarantined_counted_and_reset() {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let defs = FeatureDefinitions::new(&FeaturesConfig::default()).expect("default features");
        let keys = KeySpace::new(&format!("t{}", std::process::id()));
        // No state cache: every batch reads Redis, as a restarted process would.
        let store = RedisStore::connect(&server.url, keys.clone(), defs.engine_spec().clone(), 3_600_000)
            .await
            .expect("connect")
            .with_state_cache(0);
        let t0 = 1_700_000_000_000;
        let first: Vec<Observation> =
            observation(&defs, "bad", t0, 0).into_iter().chain(observation(&defs, "good", t0, 1)).collect();
        let outcome = store.observe(&first).await.expect("first batch");
        assert_eq!(outcome.corrupt_states, 0);

        // Corrupt the card's blob, keeping its version (a bit rot, a foreign write).
        let client = redis::Client::open(server.url.as_str()).expect("url");
        let mut c = client.get_multiplexed_async_connection().await.expect("connection");
        let state_key = keys.state_key("card", "bad");
        let garbage: Vec<u8> = vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3];
        let _: () = redis::cmd("HSET").arg(&state_key).arg("s").arg(&garbage).query_async(&mut c).await.expect("hset");

        // Reads for serving see no state, and do not fail.
        assert!(store.read_state("card", "bad").await.expect("read").is_none());
        let corrupt_after_read = store.corrupt_states();
        assert_eq!(corrupt_after_read, 1);

        let second: Vec<Observation> =
            observation(&defs, "bad", t0 + 1000, 2).into_iter().chain(observation(&defs, "good", t0 + 1000, 3)).collect();
        let outcome = store.observe(&second).await.expect("a corrupt state does not fail the batch");
        assert_eq!(outcome.corrupt_states, 1, "the card's state (its merchant's is fine)");
        assert_eq!(store.corrupt_states(), corrupt_after_read + 1);
        assert!(outcome.results.iter().all(|r| r.applied == Applied::Applied));

        // The bad bytes are aside, with a TTL.
        let aside: Vec<u8> = redis::cmd("GET").arg(keys.quarantine_key("card", "bad")).query_async(&mut c).await.expect("get");
        assert_eq!(aside, garbage);
        let ttl: i64 = redis::cmd("PTTL").arg(keys.quarantine_key("card", "bad")).query_async(&mut c).await.expect("pttl");
        assert!(ttl > 0 && ttl <= QUARANTINE_TTL_MS, "{ttl}");

        // The reset entity counts from empty: one event (this one); the good one two.
        let card = defs.engine_spec().def("card").expect("card");
        let bad = store.read_state("card", "bad").await.expect("read").expect("rewritten");
        let good = store.read_state("card", "good").await.expect("read").expect("kept");
        let count = |s: &EntityState| s.current_values(card).expect("values")[0];
        assert_eq!((count(&bad), count(&good)), (1.0, 2.0));

        // And it is a valid state again: the next batch finds nothing corrupt.
        let third = observation(&defs, "bad", t0 + 2000, 4);
        assert_eq!(store.observe(&third).await.expect("third batch").corrupt_states, 0);
    });
}
