//! The embedded store against golden answers computed independently of this crate
//! (`tools/golden/window_golden.py`: brute force over the raw events, values chosen so every sum
//! is exact): two entity kinds, every aggregation, pane boundaries, out-of-order events,
//! late ones (behind the entity, and below the partition watermark), replays on two
//! partitions, min/max expiry, distinct, seconds since the last event, and a gap longer
//! than the rings. Compared exactly. `tests/tests/store_parity.rs` holds the Redis store to
//! the same file.

use weir_features::config::FeaturesConfig;
use weir_features::definitions::FeatureDefinitions;
use weir_features::embedded::EmbeddedStore;
use weir_schemas::record::EventRecord;
use weir_schemas::store::{Applied, EntityKey, FeatureStore, Observation, SourcePosition};

const GOLDEN: &str = include_str!("golden/features.json");

fn status(a: Applied) -> &'static str {
    match a {
        Applied::Applied => "applied",
        Applied::Replayed => "replayed",
        Applied::Late => "late",
    }
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

/// The golden's definitions and its events as observations, one `Vec` per event.
fn golden() -> (serde_json::Value, FeatureDefinitions, Vec<Vec<Observation>>) {
    let golden: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
    let config: FeaturesConfig = serde_json::from_value(golden["features"].clone()).unwrap();
    let defs = FeatureDefinitions::new(&config).unwrap();
    let topic = golden["topic"].as_str().unwrap();
    let events = golden["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let record = EventRecord::from_json(&e["fields"], defs.paths());
            defs.check(&record).unwrap();
            let position = SourcePosition {
                topic: topic.into(),
                partition: e["partition"].as_i64().unwrap() as i32,
                offset: e["offset"].as_i64().unwrap(),
            };
            defs.observations(&record, position)
        })
        .collect();
    (golden, defs, events)
}

#[test]
fn embedded_store_matches_the_brute_force_golden_stream() {
    let (golden, defs, events) = golden();
    let spec = defs.engine_spec();
    for (e, def) in spec.entities.iter().enumerate() {
        let names: Vec<String> = golden["value_names"][&def.kind].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
        assert_eq!(def.value_names(), names, "entity {e}");
    }
    let expected = golden["expected"].as_array().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    // One event per batch, then the whole stream as one batch, then batches of 7, each on
    // a fresh store: batching must not change anything.
    for batch_size in [1, events.len(), 7] {
        let store = EmbeddedStore::new(spec.clone());
        let mut late = 0;
        for (b, chunk) in events.chunks(batch_size).enumerate() {
            let batch: Vec<Observation> = chunk.iter().flatten().cloned().collect();
            let outcome = runtime.block_on(store.observe(&batch)).unwrap();
            late += outcome.late_total();
            for (k, r) in outcome.results.iter().enumerate() {
                let i = b * batch_size + k / spec.entities.len();
                let kind = &batch[k].kind;
                let want = &expected[i][kind];
                assert_eq!(batch[k].entity, want["id"].as_str().unwrap());
                assert_eq!(
                    (status(r.applied), &r.values),
                    (want["status"].as_str().unwrap(), &numbers(&want["values"])),
                    "event #{i} {kind} (batches of {batch_size}): {}",
                    expected[i]["note"]
                );
            }
        }
        let expected_late = expected.iter().flat_map(|e| ["user", "item"].map(|k| e[k]["status"] == "late")).filter(|&l| l).count();
        assert_eq!(late as usize, expected_late);
        for (kind, ids) in golden["current"].as_object().unwrap() {
            for (id, values) in ids.as_object().unwrap() {
                let key = EntityKey { kind: kind.clone(), id: id.clone() };
                assert_eq!(runtime.block_on(store.read(&key)).unwrap(), Some(numbers(values)), "{kind} {id}");
            }
        }
        for (partition, wm) in golden["watermarks"].as_object().unwrap() {
            let (topic, p) = partition.rsplit_once(':').unwrap();
            assert_eq!(store.watermark(topic, p.parse().unwrap()), wm.as_i64(), "{partition}");
        }
    }
}
