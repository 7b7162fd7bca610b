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
}
