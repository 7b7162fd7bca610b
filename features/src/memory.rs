//! The embedded, in-process feature store: the same algorithm and answers as the Redis
//! store, for `weir demo` and unit tests. State lives as long as the process.

use std::collections::HashMap;
use std::sync::Mutex;

use weir_schemas::store::{FeatureStore, Observation, ObservationResult};
use weir_schemas::StoreError;

use crate::windows::{EntityState, WindowSpec};

pub struct EmbeddedStore {
    windows: Vec<WindowSpec>,
    lateness_ms: i64,
    entities: Mutex<HashMap<String, EntityState>>,
}

impl EmbeddedStore {
    pub fn new(windows: Vec<WindowSpec>, lateness_ms: i64) -> Self {
        EmbeddedStore { windows, lateness_ms, entities: Mutex::new(HashMap::new()) }
    }

    pub fn entity_count(&self) -> usize {
        self.entities.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// A copy of the entity's window state (tests compare it with the Redis store's).
    pub fn state(&self, entity: &str) -> Option<EntityState> {
        self.entities.lock().ok()?.get(entity).cloned()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, EntityState>>, StoreError> {
        self.entities.lock().map_err(|_| StoreError::Protocol("embedded store lock poisoned".into()))
    }
}

impl FeatureStore for EmbeddedStore {
    async fn observe(&self, batch: &[Observation]) -> Result<Vec<ObservationResult>, StoreError> {
        let mut entities = self.lock()?;
        Ok(batch
            .iter()
            .map(|obs| {
                entities
                    .entry(obs.entity.clone())
                    .or_insert_with(|| EntityState::new(&self.windows))
                    .apply(&self.windows, self.lateness_ms, obs)
            })
            .collect())
    }

    async fn read(&self, entity: &str) -> Result<Option<Vec<f64>>, StoreError> {
        Ok(self.lock()?.get(entity).and_then(|s| s.current_values(&self.windows)))
    }

    async fn read_at(&self, entity: &str, as_of_ms: i64) -> Result<Option<Vec<f64>>, StoreError> {
        Ok(self.lock()?.get(entity).map(|s| s.values_at(&self.windows, as_of_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_schemas::store::{Applied, SourcePosition};

    use crate::config::FeaturesConfig;

    const T0: i64 = 1_767_225_600_000;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    fn store() -> EmbeddedStore {
        let c = FeaturesConfig::default();
        EmbeddedStore::new(c.window_specs(), c.allowed_lateness_ms())
    }

    fn obs(entity: &str, t: i64, value: f64, partition: i32, offset: i64) -> Observation {
        Observation {
            entity: entity.into(),
            event_time_ms: t,
            value,
            position: SourcePosition { topic: "transactions".into(), partition, offset },
        }
    }

    #[test]
    fn entities_are_independent() {
        let s = store();
        let batch = [
            obs("a", T0, 10.0, 0, 0),
            obs("b", T0 + 1_000, 1.0, 0, 1),
            obs("a", T0 + 2_000, 20.0, 0, 2),
            obs("b", T0 + 120_000, 2.0, 1, 0),
            // Offset 1 of partition 0 was b's, not a's: each entity has its own fence.
            obs("a", T0 + 3_000, 5.0, 0, 1),
        ];
        let r = block_on(s.observe(&batch)).unwrap();
        let values: Vec<Vec<f64>> = r.iter().map(|r| r.values.clone()).collect();
        assert_eq!(
            values,
            vec![
                vec![1.0, 10.0, 1.0, 10.0],
                vec![1.0, 1.0, 1.0, 1.0],
                vec![2.0, 30.0, 2.0, 30.0],
                // b at T0 + 120 s: its first event left the 1m window, not the 1h one.
                vec![1.0, 2.0, 2.0, 3.0],
                vec![2.0, 30.0, 2.0, 30.0],
            ]
        );
        assert_eq!(
            r.iter().map(|r| r.applied).collect::<Vec<_>>(),
            vec![Applied::Applied, Applied::Applied, Applied::Applied, Applied::Applied, Applied::Replayed]
        );
        assert_eq!(s.entity_count(), 2);
        assert_eq!(block_on(s.read("a")).unwrap(), Some(vec![2.0, 30.0, 2.0, 30.0]));
        assert_eq!(block_on(s.read("b")).unwrap(), Some(vec![1.0, 2.0, 2.0, 3.0]));
        assert_eq!(block_on(s.read("c")).unwrap(), None);
    }

    #[test]
    fn batches_accumulate_and_replays_are_fenced_across_batches() {
        let s = store();
        let first = [obs("a", T0, 1.0, 0, 10), obs("a", T0 + 1, 2.0, 0, 11)];
        block_on(s.observe(&first)).unwrap();
        // A replay of the whole batch after a crash, then new events.
        let again = [first[0].clone(), first[1].clone(), obs("a", T0 + 2, 4.0, 0, 12)];
        let r = block_on(s.observe(&again)).unwrap();
        assert_eq!(r.iter().map(|r| r.applied).collect::<Vec<_>>(), vec![Applied::Replayed, Applied::Replayed, Applied::Applied]);
        assert_eq!(r[2].values, vec![3.0, 7.0, 3.0, 7.0]);
        assert_eq!(block_on(s.read("a")).unwrap(), Some(vec![3.0, 7.0, 3.0, 7.0]));
    }

    #[test]
    fn late_events_are_reported_and_read_is_as_of_the_newest_event() {
        let s = store();
        let r = block_on(s.observe(&[obs("a", T0 + 3_600_000, 1.0, 0, 0), obs("a", T0, 9.0, 0, 1)])).unwrap();
        assert_eq!(r[1].applied, Applied::Late);
        assert_eq!(r[1].values, vec![0.0; 4]);
        assert_eq!(block_on(s.read("a")).unwrap(), Some(vec![1.0, 1.0, 1.0, 1.0]));
        // Request time: as of the newest event it is `read`; windows slide on without events.
        assert_eq!(block_on(s.read_at("a", T0 + 3_600_000)).unwrap(), Some(vec![1.0, 1.0, 1.0, 1.0]));
        assert_eq!(block_on(s.read_at("a", T0 + 3_600_000 + 60_000)).unwrap(), Some(vec![0.0, 0.0, 1.0, 1.0]));
        assert_eq!(block_on(s.read_at("a", T0 + 2 * 3_600_000)).unwrap(), Some(vec![0.0; 4]));
        assert_eq!(block_on(s.read_at("b", T0)).unwrap(), None);
        // An empty batch is fine.
        assert!(block_on(s.observe(&[])).unwrap().is_empty());
    }
}
