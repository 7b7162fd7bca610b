//! The embedded, in-process feature store: the engine of [`crate::windows`] on a map, for
//! `weir demo` and tests. Same code, so the same answers as the Redis store, bit for bit.
//! State (and the partition watermarks) lives as long as the process.

use std::sync::Mutex;

use weir_schemas::StoreError;
use weir_schemas::store::{EntityKey, FeatureStore, Observation, ObservationResult, ObserveOutcome};

use crate::probe::{ProbeEntry, ProbeTable};
use crate::windows::{EngineSpec, EntityDef, EntityState, PartitionWatermarks};

/// The states of one entity kind: a slab, and each id's slot in it. A batch's events find
/// their slots once, in the prefetch pipeline, and are applied through the slot: one table
/// lookup per event.
#[derive(Default)]
struct KindStates {
    slots: SlotTable,
    /// The slab, in chunks of [`STATES_PER_CHUNK`] allocated whole: a new entity never
    /// moves the others (one `Vec` would double by copying every state and faulting in
    /// the pages of the copy, while the batch that brought the new entity waits).
    chunks: Vec<Vec<EntityState>>,
}

/// States per slab chunk: a power of two, so that a slot splits with a shift and a mask.
const STATES_PER_CHUNK: usize = 1 << 10;

impl KindStates {
    fn get(&self, id: &str) -> Option<&EntityState> {
        let id = id.as_bytes();
        self.slots.find(self.slots.hash(id), id).map(|i| self.state(i as usize))
    }

    fn state(&self, slot: usize) -> &EntityState {
        &self.chunks[slot / STATES_PER_CHUNK][slot % STATES_PER_CHUNK]
    }

    fn state_mut(&mut self, slot: usize) -> &mut EntityState {
        &mut self.chunks[slot / STATES_PER_CHUNK][slot % STATES_PER_CHUNK]
    }

    /// The slot of `id` (whose [`SlotTable::hash`] is `hash`), created empty if it has
    /// none yet.
    fn slot(&mut self, def: &EntityDef, hash: u64, id: &str) -> usize {
        if let Some(i) = self.slots.find(hash, id.as_bytes()) {
            return i as usize;
        }
        let i = self.slots.len();
        if i.is_multiple_of(STATES_PER_CHUNK) {
            self.chunks.push(Vec::with_capacity(STATES_PER_CHUNK));
        }
        self.chunks[i / STATES_PER_CHUNK].push(EntityState::new(def));
        self.slots.insert(hash, EntityId::new(id), i as u32);
        i
    }
}

/// Each entity id's slot in the slab: a [`ProbeTable`] whose entries hold the id itself
/// (inline up to [`EntityId::INLINE`] bytes), a tag of its hash and its slot. A batch
/// hashes each id some events ahead of its lookup and prefetches the entry the lookup will
/// read, so that the lookup finds its cold table line loaded. Hashed with foldhash, seeded
/// per table like std's SipHash, so ids crafted to collide cannot lengthen the probes of
/// another process's table. Entities are never removed.
#[derive(Default)]
struct SlotTable {
    entries: ProbeTable<SlotEntry>,
    hasher: foldhash::fast::RandomState,
}

/// One [`SlotTable`] entry: 32 bytes, two per cache line.
struct SlotEntry {
    id: EntityId,
    /// The hash's high half: most entries that share a probe run differ here, so the id
    /// bytes are compared only on a match.
    tag: u32,
    /// The slot plus one; 0 marks a free entry.
    slot: u32,
}

impl ProbeEntry for SlotEntry {
    const EMPTY: SlotEntry = SlotEntry { id: EntityId::EMPTY, tag: 0, slot: 0 };
    fn is_empty(&self) -> bool {
        self.slot == 0
    }
}

impl SlotTable {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn hash(&self, id: &[u8]) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, id)
    }

    /// Starts loading the entry a lookup of `hash` reads first.
    fn prefetch(&self, hash: u64) {
        self.entries.prefetch(hash);
    }

    fn find(&self, hash: u64, id: &[u8]) -> Option<u32> {
        let tag = (hash >> 32) as u32;
        let i = self.entries.probe(hash, |e| e.tag == tag && e.id.as_bytes() == id);
        self.entries.entry(i).slot.checked_sub(1)
    }

    /// Adds `id`, which the table does not hold. (The tags keep only half of each hash:
    /// growing hashes the ids again.)
    fn insert(&mut self, hash: u64, id: EntityId, slot: u32) {
        let hasher = &self.hasher;
        self.entries.reserve_one(|e| std::hash::BuildHasher::hash_one(hasher, e.id.as_bytes()));
        let i = self.entries.probe(hash, |_| false);
        self.entries.put(i, SlotEntry { id, tag: (hash >> 32) as u32, slot: slot + 1 });
    }
}

/// An entity id in a [`SlotTable`] entry: up to [`EntityId::INLINE`] bytes inside the
/// entry itself, so that checking a cold entry against the event's id reads the entry's
/// own cache line, not a separate string (which would be a second dependent miss after
/// the table's).
enum EntityId {
    /// A short id's bytes, zero-padded (the length keeps ids that differ only in trailing
    /// zero bytes apart).
    Inline { len: u8, bytes: [u8; EntityId::INLINE] },
    Heap(Box<[u8]>),
}

impl EntityId {
    const INLINE: usize = 22;
    /// The empty id, in empty [`SlotTable`] entries.
    const EMPTY: EntityId = EntityId::Inline { len: 0, bytes: [0; EntityId::INLINE] };

    fn new(id: &str) -> Self {
        let id = id.as_bytes();
        if id.len() <= Self::INLINE {
            let mut bytes = [0; Self::INLINE];
            bytes[..id.len()].copy_from_slice(id);
            EntityId::Inline { len: id.len() as u8, bytes }
        } else {
            EntityId::Heap(id.into())
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            EntityId::Inline { len, bytes } => &bytes[..usize::from(*len)],
            EntityId::Heap(bytes) => bytes,
        }
    }
}

/// Events between the stages of a batch's pipeline (see `observe`): each stage starts
/// loading what the next one will read this many events later, an event's work or more
/// after, time enough for a miss to memory; few enough events
/// that what arrived is still in cache when it is used.
const PIPELINE_LAG: usize = 4;

/// Events a pipeline's hashes and slots are kept for: from their first stage to their
/// last (a power of two, for the ring's index).
const PIPELINE_RING: usize = 4 * PIPELINE_LAG;

struct Inner {
    /// Per entity kind, in the order of the spec's definitions.
    kinds: Vec<KindStates>,
    watermarks: PartitionWatermarks,
}

impl Inner {
    fn get(&self, spec: &EngineSpec, kind: &str, id: &str) -> Option<&EntityState> {
        self.kinds[spec.index(kind).ok()?].get(id)
    }
}

pub struct EmbeddedStore {
    spec: EngineSpec,
    inner: Mutex<Inner>,
}

impl EmbeddedStore {
    pub fn new(spec: EngineSpec) -> Self {
        let watermarks = PartitionWatermarks::new(spec.lateness_ms);
        let kinds = spec.entities.iter().map(|_| KindStates::default()).collect();
        EmbeddedStore { spec, inner: Mutex::new(Inner { kinds, watermarks }) }
    }

    pub fn spec(&self) -> &EngineSpec {
        &self.spec
    }

    pub fn entity_count(&self) -> usize {
        self.inner.lock().map(|m| m.kinds.iter().map(|k| k.slots.len()).sum()).unwrap_or(0)
    }

    /// A copy of an entity's state (tests compare it with the Redis store's).
    pub fn state(&self, kind: &str, entity: &str) -> Option<EntityState> {
        self.inner.lock().ok()?.get(&self.spec, kind, entity).cloned()
    }

    /// The watermark of a source partition, if an event was seen on it.
    pub fn watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.inner.lock().ok()?.watermarks.watermark(topic, partition)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner.lock().map_err(|_| StoreError::Protocol("embedded store lock poisoned".into()))
    }

    /// Calls `f` with an entity's definition and state, if the entity is known.
    pub fn with_state<R>(&self, kind: &str, id: &str, f: impl FnOnce(&EntityDef, &EntityState) -> R) -> Option<R> {
        let k = self.spec.index(kind).ok()?;
        let inner = self.inner.lock().ok()?;
        inner.kinds[k].get(id).map(|s| f(&self.spec.entities[k], s))
    }

    /// Calls `f` with every entity held: its kind's definition, its id and its state.
    pub fn for_each_state(&self, mut f: impl FnMut(&EntityDef, &str, &EntityState)) -> Result<(), StoreError> {
        let inner = self.lock()?;
        for (def, states) in self.spec.entities.iter().zip(&inner.kinds) {
            for entry in states.slots.entries.iter() {
                let id = String::from_utf8_lossy(entry.id.as_bytes());
                f(def, &id, states.state(entry.slot as usize - 1));
            }
        }
        Ok(())
    }

    /// Keeps only the entities `keep` says yes to, and returns the others' (kind, id).
    /// Rebuilds the slot tables of the kinds that lost entities: O(entities), for an
    /// occasional sweep, not per batch.
    pub fn retain(&self, mut keep: impl FnMut(&EntityDef, &EntityState) -> bool) -> Result<Vec<(String, String)>, StoreError> {
        let mut inner = self.lock()?;
        let mut removed = Vec::new();
        for (def, states) in self.spec.entities.iter().zip(inner.kinds.iter_mut()) {
            let gone: Vec<u32> =
                states.slots.entries.iter().filter(|e| !keep(def, states.state(e.slot as usize - 1))).map(|e| e.slot).collect();
            if gone.is_empty() {
                continue;
            }
            let mut rebuilt = KindStates::default();
            let entries: Vec<(String, usize)> = states
                .slots
                .entries
                .iter()
                .map(|e| (String::from_utf8_lossy(e.id.as_bytes()).into_owned(), e.slot as usize - 1))
                .collect();
            let gone: std::collections::HashSet<u32> = gone.into_iter().collect();
            let mut old = std::mem::take(states);
            for (id, slot) in entries {
                if gone.contains(&(slot as u32 + 1)) {
                    removed.push((def.kind.clone(), id));
                    continue;
                }
                let state = std::mem::replace(old.state_mut(slot), EntityState::new(def));
                let hash = rebuilt.slots.hash(id.as_bytes());
                let at = rebuilt.slot(def, hash, &id);
                *rebuilt.state_mut(at) = state;
            }
            *states = rebuilt;
        }
        Ok(removed)
    }

    /// Puts `state` in place of whatever `kind`/`id` held (restoring a store from a copy of
    /// its states, such as a changelog).
    pub fn put_state(&self, kind: &str, id: &str, state: EntityState) -> Result<(), StoreError> {
        let k = self.spec.index(kind)?;
        let mut inner = self.lock()?;
        let states = &mut inner.kinds[k];
        let hash = states.slots.hash(id.as_bytes());
        let slot = states.slot(&self.spec.entities[k], hash, id);
        *states.state_mut(slot) = state;
        Ok(())
    }

    /// Raises a source partition's watermark to at least `watermark` (restoring it).
    pub fn raise_watermark(&self, topic: &str, partition: i32, watermark: i64) -> Result<(), StoreError> {
        self.lock()?.watermarks.raise(topic, partition, watermark);
        Ok(())
    }

    /// [`FeatureStore::observe`], without the future: the embedded store never waits.
    pub fn observe_now(&self, batch: &[Observation]) -> Result<ObserveOutcome, StoreError> {
        // Every kind is known before anything is applied: a bad batch changes nothing.
        let mut kind_of: Vec<usize> = Vec::with_capacity(batch.len());
        for obs in batch {
            // Batches are mostly one kind: compare with the previous event's first.
            match kind_of.last() {
                Some(&k) if self.spec.entities[k].kind == obs.kind => kind_of.push(k),
                _ => kind_of.push(self.spec.index(&obs.kind)?),
            }
        }
        let mut inner = self.lock()?;
        let inner = &mut *inner;
        let floors = inner.watermarks.floors(batch);
        let mut results = Vec::with_capacity(batch.len());
        // A software pipeline over the batch, four stages PIPELINE_LAG events apart, so
        // that each cold line an event needs (a quiet entity's state is cold on each of its
        // events) is loading while earlier events are applied, a few misses in flight at
        // every moment, none waited for: (1) hash the id and prefetch its table entry;
        // (2) look the slot up (creating the state) and prefetch the state's own lines;
        // (3) prefetch what its lists point to; (4) apply the event. (Running each stage
        // over a long run of events before the next would put more misses in flight at
        // once than the CPU tracks, then wait.)
        let mut hashes = [0u64; PIPELINE_RING];
        let mut slots = [0usize; PIPELINE_RING];
        let n = batch.len();
        let stage = |i: usize, lag: usize| i.checked_sub(lag).filter(|&e| e < n);
        for i in 0..n + 3 * PIPELINE_LAG {
            if let Some(e) = stage(i, 0) {
                let table = &inner.kinds[kind_of[e]].slots;
                hashes[e % PIPELINE_RING] = table.hash(batch[e].entity.as_bytes());
                table.prefetch(hashes[e % PIPELINE_RING]);
            }
            if let Some(e) = stage(i, PIPELINE_LAG) {
                let k = kind_of[e];
                let states = &mut inner.kinds[k];
                let slot = states.slot(&self.spec.entities[k], hashes[e % PIPELINE_RING], &batch[e].entity);
                states.state(slot).prefetch_lines();
                slots[e % PIPELINE_RING] = slot;
            }
            if let Some(e) = stage(i, 2 * PIPELINE_LAG) {
                inner.kinds[kind_of[e]].state(slots[e % PIPELINE_RING]).prefetch(&batch[e]);
            }
            if let Some(e) = stage(i, 3 * PIPELINE_LAG) {
                let k = kind_of[e];
                let state = inner.kinds[k].state_mut(slots[e % PIPELINE_RING]);
                results.push(state.apply(&self.spec.entities[k], &batch[e], floors[e]));
            }
        }
        Ok(ObserveOutcome::from_results(batch, results))
    }
}

impl FeatureStore for EmbeddedStore {
    async fn observe(&self, batch: &[Observation]) -> Result<ObserveOutcome, StoreError> {
        self.observe_now(batch)
    }

    async fn read(&self, entity: &EntityKey) -> Result<Option<Vec<f64>>, StoreError> {
        let def = self.spec.def(&entity.kind)?;
        let inner = self.lock()?;
        Ok(inner.get(&self.spec, &entity.kind, &entity.id).and_then(|s| s.current_values(def)))
    }

    async fn read_at(&self, entities: &[EntityKey], as_of_ms: i64) -> Result<Vec<Option<Vec<f64>>>, StoreError> {
        let inner = self.lock()?;
        entities
            .iter()
            .map(|e| {
                let def = self.spec.def(&e.kind)?;
                Ok(inner.get(&self.spec, &e.kind, &e.id).map(|s| s.values_at(def, as_of_ms)))
            })
            .collect()
    }

    async fn preview(&self, batch: &[Observation]) -> Result<Vec<ObservationResult>, StoreError> {
        let inner = self.lock()?;
        batch
            .iter()
            .map(|obs| {
                let def = self.spec.def(&obs.kind)?;
                Ok(match inner.get(&self.spec, &obs.kind, &obs.entity) {
                    Some(s) => s.preview(def, obs),
                    None => EntityState::new(def).preview(def, obs),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_schemas::store::{Applied, SourcePosition};

    use crate::config::FeaturesConfig;
    use crate::definitions::FeatureDefinitions;

    const T0: i64 = 1_767_225_600_000;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    fn store() -> EmbeddedStore {
        let defs = FeatureDefinitions::new(&FeaturesConfig::default()).unwrap();
        EmbeddedStore::new(defs.engine_spec().clone())
    }

    fn obs(entity: &str, t: i64, value: f64, partition: i32, offset: i64) -> Observation {
        Observation {
            kind: "card".into(),
            entity: entity.into(),
            event_time_ms: t,
            values: vec![Some(value)],
            distinct: vec![],
            position: SourcePosition { topic: "transactions".into(), partition, offset },
        }
    }

    fn key(id: &str) -> EntityKey {
        EntityKey { kind: "card".into(), id: id.into() }
    }

    fn values(r: &ObserveOutcome) -> Vec<Vec<f64>> {
        r.results.iter().map(|r| r.values.clone()).collect()
    }

    // Default card values: count_1m, amount_sum_1m, count_1h, amount_sum_1h, amount_mean_1h.

    #[test]
    fn a_batch_with_an_unknown_kind_changes_nothing() {
        let s = store();
        let mut stray = obs("a", T0 + 1_000, 1.0, 0, 1);
        stray.kind = "merchant_typo".into();
        let err = block_on(s.observe(&[obs("a", T0, 10.0, 0, 0), stray])).unwrap_err();
        assert!(err.to_string().contains("merchant_typo"), "{err}");
        assert_eq!(s.entity_count(), 0);
        assert_eq!(s.watermark("transactions", 0), None);
        // The good event alone is applied as if the bad batch never came.
        let r = block_on(s.observe(&[obs("a", T0, 10.0, 0, 0)])).unwrap();
        assert_eq!(values(&r), vec![vec![1.0, 10.0, 1.0, 10.0, 10.0]]);
    }

    #[test]
    fn long_batches_with_repeated_entities_equal_one_event_at_a_time() {
        // More events than the prefetch pipeline holds, entities recurring within its reach
        // (a new entity's second event looked up before its first is applied) and beyond.
        let events: Vec<Observation> =
            (0..200).map(|i| obs(&format!("e{}", (i * 7) % 13), T0 + i * 900, i as f64, (i % 3) as i32, i)).collect();
        let whole = store();
        let one_by_one = store();
        let together = values(&block_on(whole.observe(&events)).unwrap());
        let alone: Vec<Vec<f64>> = events.iter().flat_map(|e| values(&block_on(one_by_one.observe(std::slice::from_ref(e))).unwrap())).collect();
        assert_eq!(together, alone);
        assert_eq!(whole.entity_count(), 13);
    }

    #[test]
    fn slot_table_tells_ids_of_one_hash_apart_across_the_tables_end() {
        // Every id with the same hash, so the same home entry (the table's last, so the
        // probe run wraps to its start) and the same tag: only the id bytes tell them apart.
        let mut table = SlotTable::default();
        let last = (table.entries.capacity() - 1) as u64;
        let hash = (0xabcd_u64 << 32) | last;
        let ids = ["a", "b", "a\0", "", &"z".repeat(22), &"z".repeat(23), "ab"];
        assert!(ids.len() * 2 <= table.entries.capacity(), "no growth, which would rehash");
        for (slot, id) in ids.iter().enumerate() {
            assert_eq!(table.find(hash, id.as_bytes()), None, "{id:?} before its insert");
            table.insert(hash, EntityId::new(id), slot as u32);
        }
        for (slot, id) in ids.iter().enumerate() {
            assert_eq!(table.find(hash, id.as_bytes()), Some(slot as u32), "{id:?}");
        }
        assert_eq!(table.find(hash, b"c"), None);
        assert_eq!(table.find(hash ^ (1 << 40), b"a"), None, "another tag");
        assert_eq!(table.len(), ids.len());
    }

    proptest::proptest! {
        #[test]
        fn slot_table_equals_a_map(ids in proptest::collection::vec(proptest::collection::vec(0u8..3, 0..30), 0..400)) {
            // Ids of few letters, short and long (inline and heap), repeats included;
            // enough to grow the table several times.
            let mut table = SlotTable::default();
            let mut map = std::collections::HashMap::new();
            for id in &ids {
                let id = String::from_utf8(id.iter().map(|b| b'a' + b).collect()).unwrap();
                let hash = table.hash(id.as_bytes());
                proptest::prop_assert_eq!(table.find(hash, id.as_bytes()), map.get(&id).copied());
                if !map.contains_key(&id) {
                    let slot = map.len() as u32;
                    table.insert(hash, EntityId::new(&id), slot);
                    map.insert(id, slot);
                }
            }
            proptest::prop_assert_eq!(table.len(), map.len());
            for (id, &slot) in &map {
                proptest::prop_assert_eq!(table.find(table.hash(id.as_bytes()), id.as_bytes()), Some(slot));
            }
        }
    }

    #[test]
    fn ids_short_and_long_each_have_their_own_state() {
        // Ids kept inline in the slot map and ids kept on the heap, around the boundary,
        // and ids that differ only in a trailing zero byte, over more than one slab chunk.
        let mut ids: Vec<String> = ["x", "x\0", "", &"x".repeat(21), &"x".repeat(22), &"x".repeat(23), &"x".repeat(40)]
            .iter()
            .map(|id| id.to_string())
            .collect();
        ids.extend((0..STATES_PER_CHUNK + 10).map(|i| format!("card-{i}-{}", "y".repeat(i % 30))));
        let s = store();
        let batch: Vec<Observation> = ids.iter().enumerate().map(|(i, id)| obs(id, T0, i as f64, 0, i as i64)).collect();
        block_on(s.observe(&batch)).unwrap();
        assert_eq!(s.entity_count(), ids.len());
        let again: Vec<Observation> =
            ids.iter().enumerate().map(|(i, id)| obs(id, T0 + 1_000, 1.0, 0, (ids.len() + i) as i64)).collect();
        let r = block_on(s.observe(&again)).unwrap();
        assert_eq!(s.entity_count(), ids.len());
        for (i, id) in ids.iter().enumerate() {
            let v = i as f64;
            assert_eq!(r.results[i].values, vec![2.0, v + 1.0, 2.0, v + 1.0, (v + 1.0) / 2.0], "{id:?}");
            assert_eq!(block_on(s.read(&key(id))).unwrap(), Some(vec![2.0, v + 1.0, 2.0, v + 1.0, (v + 1.0) / 2.0]));
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
        assert_eq!(
            values(&r),
            vec![
                vec![1.0, 10.0, 1.0, 10.0, 10.0],
                vec![1.0, 1.0, 1.0, 1.0, 1.0],
                vec![2.0, 30.0, 2.0, 30.0, 15.0],
                // b at T0 + 120 s: its first event left the 1m window, not the 1h one.
                vec![1.0, 2.0, 2.0, 3.0, 1.5],
                vec![2.0, 30.0, 2.0, 30.0, 15.0],
            ]
        );
        assert_eq!(
            r.results.iter().map(|r| r.applied).collect::<Vec<_>>(),
            vec![Applied::Applied, Applied::Applied, Applied::Applied, Applied::Applied, Applied::Replayed]
        );
        assert_eq!((r.replayed, r.late_total()), (1, 0));
        assert_eq!(s.entity_count(), 2);
        assert_eq!(block_on(s.read(&key("a"))).unwrap(), Some(vec![2.0, 30.0, 2.0, 30.0, 15.0]));
        assert_eq!(block_on(s.read(&key("b"))).unwrap(), Some(vec![1.0, 2.0, 2.0, 3.0, 1.5]));
        assert_eq!(block_on(s.read(&key("c"))).unwrap(), None);
        assert!(block_on(s.read(&EntityKey { kind: "user".into(), id: "a".into() })).is_err());
    }

    #[test]
    fn batches_accumulate_and_replays_are_fenced_across_batches() {
        let s = store();
        let first = [obs("a", T0, 1.0, 0, 10), obs("a", T0 + 1, 2.0, 0, 11)];
        block_on(s.observe(&first)).unwrap();
        let again = [first[0].clone(), first[1].clone(), obs("a", T0 + 2, 4.0, 0, 12)];
        let r = block_on(s.observe(&again)).unwrap();
        assert_eq!(r.results.iter().map(|r| r.applied).collect::<Vec<_>>(), vec![Applied::Replayed, Applied::Replayed, Applied::Applied]);
        assert_eq!(r.results[2].values[..4], [3.0, 7.0, 3.0, 7.0]);
    }

    #[test]
    fn late_events_are_counted_per_kind_and_read_at_slides() {
        let s = store();
        let r = block_on(s.observe(&[obs("a", T0 + 3_600_000, 1.0, 0, 0), obs("a", T0, 9.0, 0, 1)])).unwrap();
        assert_eq!(r.results[1].applied, Applied::Late);
        assert_eq!(r.results[1].values, vec![0.0; 5]);
        assert_eq!(r.late.get("card"), Some(&1));
        assert_eq!(block_on(s.read(&key("a"))).unwrap(), Some(vec![1.0, 1.0, 1.0, 1.0, 1.0]));
        let at = |t| block_on(s.read_at(&[key("a"), key("b")], t)).unwrap();
        assert_eq!(at(T0 + 3_600_000), vec![Some(vec![1.0, 1.0, 1.0, 1.0, 1.0]), None]);
        assert_eq!(at(T0 + 3_660_000)[0], Some(vec![0.0, 0.0, 1.0, 1.0, 1.0]));
        assert_eq!(at(T0 + 7_200_000)[0], Some(vec![0.0; 5]));
        assert!(block_on(s.observe(&[])).unwrap().results.is_empty());
    }

    #[test]
    fn partition_watermark_makes_events_late_for_every_entity() {
        let s = store();
        // b's first event is 61 s behind what partition 0 has seen (a at T0 + 61 s): late,
        // although b has no events; on partition 1 the same event is fine.
        let r = block_on(s.observe(&[
            obs("a", T0 + 61_000, 1.0, 0, 0),
            obs("b", T0 - 1, 1.0, 0, 1),
            obs("b", T0 + 1_000, 1.0, 0, 2),
            obs("c", T0 - 1, 1.0, 1, 0),
        ]))
        .unwrap();
        let st: Vec<Applied> = r.results.iter().map(|r| r.applied).collect();
        assert_eq!(st, vec![Applied::Applied, Applied::Late, Applied::Applied, Applied::Applied]);
        assert_eq!(s.watermark("transactions", 0), Some(T0 + 1_000));
        assert_eq!(s.watermark("transactions", 1), Some(T0 - 60_001));
        assert_eq!(s.watermark("transactions", 2), None);
    }

    #[test]
    fn preview_includes_the_event_and_writes_nothing() {
        let s = store();
        block_on(s.observe(&[obs("a", T0, 10.0, 0, 0)])).unwrap();
        let p = block_on(s.preview(&[obs("a", T0 + 1_000, 30.0, 0, 0), obs("new", T0, 5.0, 0, 0)])).unwrap();
        assert_eq!(p[0].values, vec![2.0, 40.0, 2.0, 40.0, 20.0]);
        assert_eq!(p[1].values, vec![1.0, 5.0, 1.0, 5.0, 5.0]);
        assert_eq!(block_on(s.read(&key("a"))).unwrap(), Some(vec![1.0, 10.0, 1.0, 10.0, 10.0]));
        assert_eq!(s.entity_count(), 1);
    }
}
