//! State in process: the entity states of the input partitions this process owns, kept by
//! the embedded engine, one [`EmbeddedStore`] per partition.
//!
//! This is how Kafka Streams and Flink keep state, with weir's engine: the states live
//! where the events are scored, so a batch costs no round trip to a store; every change
//! goes to a changelog ([`crate::changelog`]) that the pipeline writes with the batch's
//! scores (in one Kafka transaction when exactly-once is on); Redis gets a copy for
//! serving reads, behind the critical path (the Redis store's `serving` module).
//!
//! It holds for entity kinds *keyed like the input*: all the events of one entity come
//! from one input partition (the input topic is keyed by that entity's id), so one
//! partition's states are complete on their own, move with the partition in a rebalance
//! and restore from one changelog partition. An entity fed by every partition (a merchant
//! seen by every card's partition) has no such home; the binary keeps those kinds on the
//! Redis compare-and-set path.
//!
//! A partition is *restored* before its first event is applied ([`LocalState::restore`],
//! from its changelog partition read to the end) and *released* when it is revoked: the
//! next owner restores it from the changelog, which holds everything this process's
//! acknowledged batches did.
//!
//! ```
//! use weir_features::{config::FeaturesConfig, definitions::FeatureDefinitions, local_state::LocalState};
//! use weir_schemas::store::{Observation, SourcePosition};
//!
//! let defs = FeatureDefinitions::new(&FeaturesConfig::default()).unwrap();
//! let state = LocalState::new(defs.engine_spec().clone());
//! state.restore("transactions", 3, Vec::new()).unwrap(); // an empty changelog partition
//! let at = SourcePosition { topic: "transactions".into(), partition: 3, offset: 0 };
//! let obs = Observation { kind: "card".into(), entity: "c1".into(), event_time_ms: 1_700_000_000_000,
//!     values: vec![Some(20.0)], distinct: vec![], position: at };
//! let done = state.observe(&[obs]).unwrap();
//! assert_eq!(done.outcome.results[0].values[..2], [1.0, 20.0]);
//! // What goes to the changelog: the entity's state, and the partition's watermark.
//! assert_eq!((done.changes.len(), done.changes[0].version), (1, 0));
//! assert_eq!(done.watermarks, vec![(3, 1_700_000_000_000 - 60_000)]);
//!
//! // Another process restores the partition from those records and carries on.
//! let other = LocalState::new(defs.engine_spec().clone());
//! let records = done.changelog_records();
//! other.restore("transactions", 3, records).unwrap();
//! assert_eq!(other.entity_count(), 1);
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use weir_schemas::StoreError;
use weir_schemas::store::{Applied, Observation, ObserveOutcome};

use crate::changelog::{self, ChangelogKey, EntityChange};
use crate::embedded::EmbeddedStore;
use crate::windows::{EngineSpec, EntityDef, EntityState};

/// The states of the partitions this process owns.
pub struct LocalState {
    spec: EngineSpec,
    /// One store per owned (topic, partition).
    partitions: Mutex<HashMap<(String, i32), Arc<EmbeddedStore>>>,
}

/// What [`LocalState::observe`] did with a batch.
#[derive(Debug, Clone, Default)]
pub struct LocalOutcome {
    /// The answers, one per observation in batch order, as a store gives them.
    pub outcome: ObserveOutcome,
    /// Each entity the batch changed (an applied or late event moves its fence; a replay
    /// changes nothing), with its state after the batch.
    pub changes: Vec<EntityChange>,
    /// Each partition of the batch with its watermark after it: (partition, ms).
    pub watermarks: Vec<(i32, i64)>,
}

impl LocalOutcome {
    /// The changelog records of the batch: (partition, key, value).
    pub fn changelog_records(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let mut records: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            self.changes.iter().map(|c| (c.key(), Some(c.blob.clone()))).collect();
        records.extend(self.watermarks.iter().map(|(_, w)| (changelog::watermark_key(), Some(changelog::watermark_value(*w)))));
        records
    }
}

/// What a restore read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Changelog records read.
    pub records: u64,
    /// Entities held after the restore.
    pub entities: u64,
    /// Records whose state did not decode (a foreign write, another feature set's state):
    /// each such entity starts empty, as a corrupt state does in Redis.
    pub corrupt: u64,
    /// Records of an entity kind the definitions no longer have: skipped.
    pub unknown_kind: u64,
}

impl LocalState {
    pub fn new(spec: EngineSpec) -> Self {
        LocalState { spec, partitions: Mutex::new(HashMap::new()) }
    }

    pub fn spec(&self) -> &EngineSpec {
        &self.spec
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<(String, i32), Arc<EmbeddedStore>>>, StoreError> {
        self.partitions.lock().map_err(|_| StoreError::Protocol("local state lock poisoned".into()))
    }

    /// Whether `topic`/`partition` is restored here.
    pub fn owns(&self, topic: &str, partition: i32) -> bool {
        self.lock().is_ok_and(|p| p.contains_key(&(topic.to_string(), partition)))
    }

    /// The partitions restored here, sorted.
    pub fn owned(&self) -> Vec<(String, i32)> {
        let mut owned: Vec<(String, i32)> = self.lock().map(|p| p.keys().cloned().collect()).unwrap_or_default();
        owned.sort();
        owned
    }

    /// Entities held, all partitions.
    pub fn entity_count(&self) -> usize {
        self.lock().map(|p| p.values().map(|s| s.entity_count()).sum()).unwrap_or(0)
    }

    /// Rebuilds the state of `topic`/`partition` from its changelog records, in the order
    /// they were written (the newest record of a key wins), in place of whatever this
    /// process held for it. A `None` value (a tombstone: the entity was evicted) leaves
    /// the entity absent.
    pub fn restore(
        &self,
        topic: &str,
        partition: i32,
        records: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<RestoreReport, StoreError> {
        let store = EmbeddedStore::new(self.spec.clone());
        let mut report = RestoreReport::default();
        // The newest record of each key is all that counts (compaction keeps no more):
        // only those are decoded. A tombstone (an evicted entity) leaves the key absent.
        let mut newest: HashMap<(String, String), Option<Vec<u8>>> = HashMap::new();
        for (key, value) in records {
            report.records += 1;
            match changelog::parse_key(&key).map_err(StoreError::Protocol)? {
                ChangelogKey::Watermark => {
                    if let Some(v) = value {
                        let w = changelog::parse_watermark(&v).map_err(StoreError::Protocol)?;
                        store.raise_watermark(topic, partition, w)?;
                    }
                }
                ChangelogKey::State { kind, id } => {
                    newest.insert((kind.to_string(), id.to_string()), value);
                }
            }
        }
        for ((kind, id), value) in newest {
            let Some(value) = value else { continue };
            let Ok(def) = self.spec.def(&kind) else {
                report.unknown_kind += 1;
                continue;
            };
            let state = match EntityState::from_bytes(def, &value) {
                Ok(state) => state,
                Err(e) => {
                    report.corrupt += 1;
                    tracing::error!(topic, partition, kind, id, error = %weir_schemas::bounded::cap(e),
                        "corrupt state in the changelog: the entity starts empty");
                    EntityState::new(def)
                }
            };
            store.put_state(&kind, &id, state)?;
        }
        report.entities = store.entity_count() as u64;
        self.lock()?.insert((topic.to_string(), partition), Arc::new(store));
        Ok(report)
    }

    /// Forgets `topic`/`partition` (revoked, or its batch rolled back): its next owner, or
    /// this process again, restores it from the changelog.
    pub fn release(&self, topic: &str, partition: i32) {
        if let Ok(mut p) = self.lock() {
            p.remove(&(topic.to_string(), partition));
        }
    }

    /// Applies a batch whose partitions are all restored here, in order per partition,
    /// and returns the answers with what changed.
    pub fn observe(&self, batch: &[Observation]) -> Result<LocalOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(LocalOutcome::default());
        }
        // Runs of one partition, in batch order (each partition's events keep their order).
        let mut by_partition: Vec<((&str, i32), Vec<usize>)> = Vec::new();
        for (i, obs) in batch.iter().enumerate() {
            let at = (obs.position.topic.as_str(), obs.position.partition);
            match by_partition.iter_mut().find(|(p, _)| *p == at) {
                Some((_, indices)) => indices.push(i),
                None => by_partition.push((at, vec![i])),
            }
        }
        let stores: Vec<Arc<EmbeddedStore>> = {
            let partitions = self.lock()?;
            by_partition
                .iter()
                .map(|((topic, partition), _)| {
                    partitions.get(&(topic.to_string(), *partition)).cloned().ok_or_else(|| {
                        StoreError::Protocol(format!("partition {topic}[{partition}] is not restored in this process"))
                    })
                })
                .collect::<Result<_, _>>()?
        };

        let mut results = vec![None; batch.len()];
        let mut changes = Vec::new();
        let mut watermarks = Vec::new();
        for (((topic, partition), indices), store) in by_partition.iter().zip(&stores) {
            let outcome = if by_partition.len() == 1 {
                store.observe_now(batch)?
            } else {
                let part: Vec<Observation> = indices.iter().map(|&i| batch[i].clone()).collect();
                store.observe_now(&part)?
            };
            // The entities changed, each once, with the highest offset that changed it.
            let mut changed: HashMap<(&str, &str), i64> = HashMap::new();
            for (&i, r) in indices.iter().zip(&outcome.results) {
                if r.applied != Applied::Replayed {
                    let obs = &batch[i];
                    let offset = changed.entry((obs.kind.as_str(), obs.entity.as_str())).or_insert(obs.position.offset);
                    *offset = (*offset).max(obs.position.offset);
                }
            }
            for ((kind, id), version) in changed {
                if let Some(change) = store.with_state(kind, id, |def, state| change_of(def, kind, id, *partition, version, state)) {
                    changes.push(change);
                }
            }
            if let Some(w) = store.watermark(topic, *partition) {
                watermarks.push((*partition, w));
            }
            for (&i, r) in indices.iter().zip(outcome.results) {
                results[i] = Some(r);
            }
        }
        let results = results
            .into_iter()
            .map(|r| r.ok_or_else(|| StoreError::Protocol("an observation got no result".into())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LocalOutcome { outcome: ObserveOutcome::from_results(batch, results), changes, watermarks })
    }

    /// Forgets the entities whose newest event is more than `expiry_ms` behind their
    /// partition's newest event (their windows are empty: a Redis key would have expired),
    /// so memory follows the active entities, not every entity ever seen. Returns each
    /// one's (partition, kind, id), for a tombstone in the changelog. An entity that comes
    /// back starts empty, as after a Redis key's expiry.
    pub fn evict(&self, expiry_ms: i64) -> Result<Vec<(i32, String, String)>, StoreError> {
        let stores: Vec<((String, i32), Arc<EmbeddedStore>)> =
            self.lock()?.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
        let mut evicted = Vec::new();
        for ((topic, partition), store) in stores {
            let Some(watermark) = store.watermark(&topic, partition) else { continue };
            let horizon = watermark.saturating_add(self.spec.lateness_ms).saturating_sub(expiry_ms);
            let removed = store.retain(|_, state| state.max_event_time().is_none_or(|t| t >= horizon))?;
            evicted.extend(removed.into_iter().map(|(kind, id)| (partition, kind, id)));
        }
        Ok(evicted)
    }

    /// Every entity held, as changes at their current versions (to rewrite a serving copy
    /// that lost data).
    pub fn snapshot(&self) -> Result<Vec<EntityChange>, StoreError> {
        self.snapshot_where(|_, _| true)
    }

    /// [`LocalState::snapshot`] of one partition.
    pub fn snapshot_partition(&self, topic: &str, partition: i32) -> Result<Vec<EntityChange>, StoreError> {
        self.snapshot_where(|t, p| p == partition && t == topic)
    }

    fn snapshot_where(&self, wanted: impl Fn(&str, i32) -> bool) -> Result<Vec<EntityChange>, StoreError> {
        let stores: Vec<((String, i32), Arc<EmbeddedStore>)> =
            self.lock()?.iter().filter(|((t, p), _)| wanted(t, *p)).map(|(k, s)| (k.clone(), s.clone())).collect();
        let mut all = Vec::new();
        for ((topic, partition), store) in stores {
            store.for_each_state(|def, id, state| {
                let version = state
                    .fences()
                    .into_iter()
                    .find(|(t, p, _)| *p == partition && *t == topic)
                    .map_or(-1, |(_, _, offset)| offset);
                all.push(change_of(def, &def.kind, id, partition, version, state));
            })?;
        }
        Ok(all)
    }
}

fn change_of(def: &EntityDef, kind: &str, id: &str, partition: i32, version: i64, state: &EntityState) -> EntityChange {
    EntityChange {
        kind: kind.to_string(),
        id: id.to_string(),
        partition,
        version,
        blob: state.to_bytes(def),
        values: state.current_values(def),
        event_time_max: state.max_event_time().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_schemas::store::SourcePosition;

    use crate::config::FeaturesConfig;
    use crate::definitions::FeatureDefinitions;

    const T0: i64 = 1_767_225_600_000;

    fn spec() -> EngineSpec {
        FeatureDefinitions::new(&FeaturesConfig::default()).unwrap().engine_spec().clone()
    }

    fn obs(entity: &str, t: i64, value: f64, partition: i32, offset: i64) -> Observation {
        Observation {
            kind: "card".into(),
            entity: entity.into(),
            event_time_ms: t,
            values: vec![Some(value)],
            distinct: vec![],
            position: SourcePosition { topic: "tx".into(), partition, offset },
        }
    }

    /// A stream over three partitions, entities keyed by partition, some late, in batches.
    fn stream() -> Vec<Vec<Observation>> {
        let events: Vec<Observation> = (0..600)
            .map(|i| {
                let p = (i % 3) as i32;
                let late = if i % 37 == 0 { -200_000 } else { 0 };
                obs(&format!("c{p}-{}", (i * 7) % 11), T0 + i * 1_500 + late, i as f64, p, i / 3)
            })
            .collect();
        events.chunks(47).map(<[Observation]>::to_vec).collect()
    }

    fn restored(parts: &[i32]) -> LocalState {
        let s = LocalState::new(spec());
        for &p in parts {
            s.restore("tx", p, Vec::new()).unwrap();
        }
        s
    }

    #[test]
    fn answers_equal_one_embedded_store() {
        let local = restored(&[0, 1, 2]);
        let one = EmbeddedStore::new(spec());
        for batch in stream() {
            let a = local.observe(&batch).unwrap().outcome;
            let b = one.observe_now(&batch).unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn a_partition_not_restored_is_refused_and_nothing_is_applied() {
        let local = restored(&[0]);
        let err = local.observe(&[obs("a", T0, 1.0, 0, 0), obs("b", T0, 1.0, 1, 0)]).unwrap_err();
        assert!(err.to_string().contains("tx[1] is not restored"), "{err}");
        assert_eq!(local.entity_count(), 0);
    }

    #[test]
    fn restoring_from_the_changelog_continues_exactly() {
        // One process runs the whole stream; another runs its first half, writes its
        // changelog (every batch's records, in order), dies; a third restores from that
        // changelog and runs the second half: its answers equal the first process's.
        let batches = stream();
        let whole = restored(&[0, 1, 2]);
        let expected: Vec<ObserveOutcome> = batches.iter().map(|b| whole.observe(b).unwrap().outcome).collect();

        let first = restored(&[0, 1, 2]);
        let mut log: HashMap<i32, Vec<(Vec<u8>, Option<Vec<u8>>)>> = HashMap::new();
        let half = batches.len() / 2;
        for batch in &batches[..half] {
            let done = first.observe(batch).unwrap();
            for c in &done.changes {
                log.entry(c.partition).or_default().push((c.key(), Some(c.blob.clone())));
            }
            for (p, w) in &done.watermarks {
                log.entry(*p).or_default().push((changelog::watermark_key(), Some(changelog::watermark_value(*w))));
            }
        }
        let second = LocalState::new(spec());
        for p in 0..3 {
            let report = second.restore("tx", p, log.remove(&p).unwrap_or_default()).unwrap();
            assert_eq!(report.corrupt + report.unknown_kind, 0);
        }
        assert_eq!(second.entity_count(), first.entity_count());
        for (batch, expected) in batches[half..].iter().zip(&expected[half..]) {
            assert_eq!(&second.observe(batch).unwrap().outcome, expected);
        }
        // A replay of the first half is fenced: nothing changes, nothing to write.
        let replay = second.observe(&batches[0]).unwrap();
        assert!(replay.changes.is_empty());
        assert_eq!(replay.outcome.replayed as usize, batches[0].len());
    }

    #[test]
    fn changes_carry_the_highest_offset_and_late_events_move_the_fence() {
        let local = restored(&[0]);
        let done = local.observe(&[obs("a", T0 + 120_000, 1.0, 0, 5), obs("a", T0, 2.0, 0, 6), obs("b", T0 + 120_001, 1.0, 0, 7)]).unwrap();
        assert_eq!(done.outcome.late_total(), 1);
        let mut versions: Vec<(String, i64)> = done.changes.iter().map(|c| (c.id.clone(), c.version)).collect();
        versions.sort();
        assert_eq!(versions, vec![("a".to_string(), 6), ("b".to_string(), 7)]);
        let snapshot = local.snapshot().unwrap();
        let mut versions: Vec<(String, i64)> = snapshot.iter().map(|c| (c.id.clone(), c.version)).collect();
        versions.sort();
        assert_eq!(versions, vec![("a".to_string(), 6), ("b".to_string(), 7)]);
    }

    #[test]
    fn corrupt_and_foreign_records_are_counted_not_fatal() {
        let local = LocalState::new(spec());
        let report = local
            .restore(
                "tx",
                0,
                vec![
                    (changelog::state_key("card", "a"), Some(b"garbage".to_vec())),
                    (changelog::state_key("gone_kind", "a"), Some(b"x".to_vec())),
                    (changelog::state_key("card", "b"), None),
                ],
            )
            .unwrap();
        assert_eq!((report.records, report.corrupt, report.unknown_kind, report.entities), (3, 1, 1, 1));
        assert!(local.restore("tx", 1, vec![(b"zz".to_vec(), None)]).is_err(), "a key that is no changelog key");
    }

    #[test]
    fn quiet_entities_are_evicted_and_a_tombstone_keeps_them_out_of_a_restore() {
        let local = restored(&[0]);
        let hour = 3_600_000;
        local.observe(&[obs("old", T0, 1.0, 0, 0), obs("new", T0 + 2 * hour, 1.0, 0, 1)]).unwrap();
        assert_eq!(local.evict(3 * hour).unwrap(), vec![]);
        assert_eq!(local.evict(hour).unwrap(), vec![(0, "card".to_string(), "old".to_string())]);
        assert_eq!(local.entity_count(), 1);
        // The one left is untouched: its next event counts on from its state.
        let next = local.observe(&[obs("new", T0 + 2 * hour + 1_000, 2.0, 0, 2)]).unwrap();
        assert_eq!(next.outcome.results[0].values[..2], [2.0, 3.0]);
        // A restore: the state, then its tombstone: absent.
        let other = LocalState::new(spec());
        let state = local.snapshot().unwrap().remove(0);
        other.restore("tx", 0, vec![(state.key(), Some(state.blob.clone())), (state.key(), None)]).unwrap();
        assert_eq!(other.entity_count(), 0);
    }

    #[test]
    fn release_forgets_a_partition() {
        let local = restored(&[0, 1]);
        local.observe(&[obs("a", T0, 1.0, 0, 0), obs("b", T0, 1.0, 1, 0)]).unwrap();
        local.release("tx", 0);
        assert_eq!(local.owned(), vec![("tx".to_string(), 1)]);
        assert_eq!(local.entity_count(), 1);
    }
}
