//! The online feature store contract, shared by the stage that writes features
//! (`weir-features`) and the ones that read them (in-stream scoring, request-time scoring).
//!
//! A store keeps, per entity, sliding-window aggregates in event time. The stream applies
//! [`Observation`]s in micro-batches; each carries the Kafka position it came from so the
//! store can refuse to apply the same event twice after a replay (the *fence*).

use std::future::Future;

use crate::error::StoreError;

/// Where an event came from: one partition of one topic, and its offset there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourcePosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One event's contribution to one entity's windows.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The entity id (for example a card id).
    pub entity: String,
    /// Event time, ms since the epoch.
    pub event_time_ms: i64,
    /// The value aggregated by the sum windows (for example the amount).
    pub value: f64,
    pub position: SourcePosition,
}

/// What the store did with one observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Added to the entity's windows.
    Applied,
    /// Its position is at or below the entity's fence for that partition: it was applied
    /// before a crash and is being replayed. Not applied again.
    Replayed,
    /// Older than the allowed lateness behind the entity's newest event. Not applied.
    Late,
}

/// The store's answer for one observation: what happened, and the entity's aggregates
/// as of the observation's event time (the store's documented value order).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationResult {
    pub applied: Applied,
    pub values: Vec<f64>,
}

/// An online feature store. Implementations: Redis (production) and in-process (demo,
/// unit tests), both in `weir-features`; they must give identical answers.
pub trait FeatureStore: Send + Sync {
    /// Applies a micro-batch in order and returns one result per observation. When this
    /// returns `Ok`, every applied observation is durable in the store.
    fn observe(
        &self,
        batch: &[Observation],
    ) -> impl Future<Output = Result<Vec<ObservationResult>, StoreError>> + Send;

    /// The entity's current aggregates (as of its newest event), or `None` if unknown or
    /// expired. One round trip.
    fn read(&self, entity: &str) -> impl Future<Output = Result<Option<Vec<f64>>, StoreError>> + Send;

    /// The entity's aggregates as of event time `as_of_ms`, over the events applied so far,
    /// for request-time scoring: windows slide forward to `as_of_ms` even when the entity
    /// has had no event since (a card quiet for two hours has an empty 1 h window now).
    /// `None` if unknown or expired. One round trip. Stores that cannot compute it answer
    /// as [`FeatureStore::read`] does.
    fn read_at(
        &self,
        entity: &str,
        as_of_ms: i64,
    ) -> impl Future<Output = Result<Option<Vec<f64>>, StoreError>> + Send {
        let _ = as_of_ms;
        self.read(entity)
    }
}
