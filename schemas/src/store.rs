//! The online feature store contract, shared by the stage that writes features
//! (`weir-features`) and the ones that read them (in-stream scoring, request-time scoring).
//!
//! A store keeps, per entity (a *kind*, such as `card` or `user`, and an id), sliding-window
//! aggregates in event time. The stream applies [`Observation`]s in micro-batches; each
//! carries the Kafka position it came from so the store can refuse to apply the same event
//! twice after a replay (the *fence*). What an entity of each kind aggregates (windows,
//! numeric fields, distinct fields) is the store's configuration; an observation carries
//! the event's values of those fields in that configured order.

use std::collections::BTreeMap;
use std::future::Future;

use crate::error::StoreError;

/// Where an event came from: one partition of one topic, and its offset there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourcePosition {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One entity, by kind and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityKey {
    /// The entity kind, as the store's configuration names it (for example `card`).
    pub kind: String,
    /// The entity id (for example a card id).
    pub id: String,
}

/// One event's contribution to one entity's windows.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The entity kind (for example `card`): which aggregation definition applies.
    pub kind: String,
    /// The entity id (for example a card id).
    pub entity: String,
    /// Event time, ms since the epoch.
    pub event_time_ms: i64,
    /// The event's values of the numeric fields this kind aggregates (sum, mean, min,
    /// max), in the kind's field order; `None` when missing or null (not counted in them).
    pub values: Vec<Option<f64>>,
    /// 64-bit hashes of the event's values of the fields this kind counts distinct, in the
    /// kind's order; `None` when missing or null.
    pub distinct: Vec<Option<u64>>,
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
    /// Older than the allowed lateness (behind the entity's newest event or its
    /// partition's watermark). Not applied.
    Late,
}

/// The store's answer for one observation: what happened, and the entity's aggregates
/// as of the observation's event time (in the kind's documented value order).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationResult {
    pub applied: Applied,
    pub values: Vec<f64>,
}

/// The store's answer for a micro-batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObserveOutcome {
    /// One result per observation, in batch order.
    pub results: Vec<ObservationResult>,
    /// Late observations, per entity kind (kinds with none are absent).
    pub late: BTreeMap<String, u64>,
    /// Replayed observations (all kinds).
    pub replayed: u64,
    /// Entity states found corrupt (not decodable) in this batch: each quarantined and
    /// reset to empty by the store (see the Redis store's docs). Not set by
    /// [`ObserveOutcome::from_results`]; the store adds it.
    pub corrupt_states: u64,
}

impl ObserveOutcome {
    /// Builds the counts from the results of `batch`.
    pub fn from_results(batch: &[Observation], results: Vec<ObservationResult>) -> Self {
        let mut late = BTreeMap::new();
        let mut replayed = 0;
        for (obs, r) in batch.iter().zip(&results) {
            match r.applied {
                Applied::Late => *late.entry(obs.kind.clone()).or_insert(0) += 1,
                Applied::Replayed => replayed += 1,
                Applied::Applied => {}
            }
        }
        ObserveOutcome { results, late, replayed, corrupt_states: 0 }
    }

    /// Late observations, all kinds.
    pub fn late_total(&self) -> u64 {
        self.late.values().sum()
    }
}

/// An online feature store. Implementations: Redis (production) and in-process (demo,
/// unit tests), both in `weir-features`; they must give identical answers.
pub trait FeatureStore: Send + Sync {
    /// Applies a micro-batch in order and returns one result per observation. When this
    /// returns `Ok`, every applied observation is durable in the store.
    fn observe(&self, batch: &[Observation]) -> impl Future<Output = Result<ObserveOutcome, StoreError>> + Send;

    /// The entity's current aggregates (as of its newest event), or `None` if unknown or
    /// expired. One round trip.
    fn read(&self, entity: &EntityKey) -> impl Future<Output = Result<Option<Vec<f64>>, StoreError>> + Send;

    /// Each entity's aggregates as of event time `as_of_ms`, over the events applied so
    /// far, for request-time scoring: windows slide forward to `as_of_ms` even when the
    /// entity has had no event since (a card quiet for two hours has an empty 1 h window
    /// now). `None` for an unknown or expired entity. One round trip for all of them.
    fn read_at(
        &self,
        entities: &[EntityKey],
        as_of_ms: i64,
    ) -> impl Future<Output = Result<Vec<Option<Vec<f64>>>, StoreError>> + Send;

    /// What [`FeatureStore::observe`] would answer for each observation if it were applied
    /// now — its own event included, as of its own event time — without writing anything
    /// (request-time scoring of an event the stream has not seen). Fences and partition
    /// watermarks are not consulted: only the entity's own lateness. One round trip.
    fn preview(&self, batch: &[Observation]) -> impl Future<Output = Result<Vec<ObservationResult>, StoreError>> + Send;
}
