//! The embedded store against golden answers computed independently of this crate
//! (`tools/window_golden.py`: brute force over the raw events, values chosen so every sum
//! is exact): pane boundaries, out-of-order and late events, replays on two partitions,
//! and a gap longer than the rings. Compared exactly. `tests/tests/store_parity.rs` holds
//! the Redis store to the same file.

use weir_features::memory::EmbeddedStore;
use weir_features::windows::WindowSpec;
use weir_schemas::store::{Applied, FeatureStore, Observation, SourcePosition};

const GOLDEN: &str = include_str!("golden/windows.json");

#[test]
fn embedded_store_matches_the_brute_force_golden_stream() {
    let golden: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
    let lateness = golden["lateness_ms"].as_i64().unwrap();
    let windows: Vec<WindowSpec> = golden["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            WindowSpec::new(
                w["name"].as_str().unwrap(),
                w["length_ms"].as_u64().unwrap(),
                w["pane_ms"].as_u64().unwrap(),
                lateness,
            )
        })
        .collect();
    let observations: Vec<Observation> = golden["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Observation {
            entity: "card-1".into(),
            event_time_ms: e["t"].as_i64().unwrap(),
            value: e["value"].as_f64().unwrap(),
            position: SourcePosition {
                topic: e["topic"].as_str().unwrap().into(),
                partition: e["partition"].as_i64().unwrap() as i32,
                offset: e["offset"].as_i64().unwrap(),
            },
        })
        .collect();
    let expected = golden["expected"].as_array().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();

    // One observation per batch, then the whole stream as one batch on a fresh store:
    // batching must not change anything.
    for batch_size in [1, observations.len()] {
        let store = EmbeddedStore::new(windows.clone(), lateness);
        let mut results = Vec::new();
        for batch in observations.chunks(batch_size) {
            results.extend(runtime.block_on(store.observe(batch)).unwrap());
        }
        for (i, (r, e)) in results.iter().zip(expected).enumerate() {
            let status = match r.applied {
                Applied::Applied => "applied",
                Applied::Replayed => "replayed",
                Applied::Late => "late",
            };
            let want: Vec<f64> = e["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            assert_eq!((status, &r.values), (e["status"].as_str().unwrap(), &want), "#{i}: {}", e["note"]);
        }
        let current: Vec<f64> = golden["current"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert_eq!(runtime.block_on(store.read("card-1")).unwrap(), Some(current));
        assert_eq!(store.state("card-1").unwrap().max_event_time(), golden["max_t"].as_i64());
    }
}
