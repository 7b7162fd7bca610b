//! The online feature store on Redis: a transactional state store. All aggregation runs
//! in Rust ([`crate::windows`], the code the embedded store runs); Redis keeps each
//! entity's state as one versioned blob and writes it back only if nobody else did since.
//!
//! ## Key layout
//!
//! For prefix `weir`, entity kind `card`, id `c42` (documented for users in the README):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `weir:{card:c42}` | hash | the entity's values as of its newest event, named like its features without the `card_` prefix (`count_1m`, `amount_sum_1m`, …), plus `event_time_max` (ms): readable with `redis-cli HGETALL` |
//! | `weir:{card:c42}:state` | hash | `v` the state version (`<incarnation>:<counter>`, the incarnation the server clock in µs when the entity was created: versions never repeat), `s` the state blob ([`EntityState::to_bytes`]: windows, panes, recent times, distinct occurrences or sketches, replay fences) |
//! | `weir:{wm}:<topic>:<partition>` | string | the partition's watermark, ms ([`crate::windows::PartitionWatermarks`]) |
//!
//! The `{card:c42}` hash tag puts both keys of an entity in one Redis Cluster slot, so
//! the script that writes them is atomic there too. Every key gets a time-to-live of the
//! longest window plus lateness plus slack, refreshed on every write: a watermark lives as
//! long as the states written with it, so a partition idle for longer leaves nothing behind
//! (and a replay that late finds neither, consistently).
//!
//! ## A micro-batch
//!
//! 1. One round trip: `HMGET v s` of every entity the batch touches that is not in the
//!    state cache (below), and the watermark of every partition in it (pipelined; on a
//!    cluster, one pipeline per hash slot, all sent at once).
//! 2. In Rust: every observation in batch order, each entity's from its cached or read
//!    state: fence, lateness, windows, answers.
//! 3. One round trip: per entity a compare-and-set, in one Lua script call per up to
//!    32 entities of one hash slot: if `v` still is the version the state was computed
//!    from, write `s`, the next version, the readable hash, and both TTLs. An entity
//!    whose observations were all replays is not written.
//! 4. An entity whose `v` moved (another process wrote it: a merchant is fed by several
//!    partitions, so by several consumers; or a zombie owner of a revoked partition) is
//!    read again and its observations recomputed from the new state, then written with
//!    the same check; at most [`MAX_CAS_ATTEMPTS`] times, then the batch fails with a
//!    retryable error.
//! 5. Only when every entity was written: each partition's watermark is raised (to the
//!    max of the stored one and this batch's), one round trip.
//!
//! ## A corrupt state
//!
//! A state blob that does not decode ([`EntityState::from_bytes`] fails: a bit flip, a
//! foreign write, a blob from a newer weir) would otherwise fail every batch that touches
//! the entity, on every restart, and with it every partition. Instead, when a batch reads
//! one, the store logs it (error level, with the key), copies the bad bytes aside to
//! `<state key>:quarantine` (`weir:{card:c42}:state:quarantine`, same hash slot, kept for
//! [`QUARANTINE_TTL_MS`]), counts it ([`RedisStore::corrupt_states`] and
//! `ObserveOutcome::corrupt_states`, which `weir run` exports as
//! `weir_store_state_corrupt_total`), and starts the entity from an empty state written
//! over the corrupt one by the usual compare-and-set. So that entity's windows restart
//! empty (its history before the reset is lost: its aggregates undercount until the
//! longest window has passed), and the partition keeps moving. Reads for serving treat a
//! corrupt state as no state, counted the same way, and leave it for the writer.
//!
//! ## The state cache
//!
//! A process that owns a partition is almost always the only writer of the entities it
//! feeds, so reading back the state it wrote one batch ago is wasted work: a round trip of
//! blobs and a decode per entity. The store keeps the states it wrote, decoded, with the
//! version each was written as (bounded, least recently used dropped;
//! [`RedisStore::with_state_cache`]). A cached state is used only through the
//! compare-and-set on its version: if anyone else wrote the entity since (a shared
//! merchant, the other owner around a rebalance) or its keys expired, the write is refused
//! and the entity is read and recomputed as in step 4. So the cache changes the cost, never
//! the result. The watermarks are read every batch regardless (another process may have
//! owned the partition in between).
//!
//! ## Why a replay is exact
//!
//! An entity's state and its replay fences (highest offset applied per source partition)
//! are one blob, written by one script: an observation is in the state exactly when its
//! offset is under the fence. The consumer stores offsets to Kafka only after `observe`
//! returned (all entity writes and the watermarks done), so after a crash everything not
//! acknowledged is read again, and whatever of it reached Redis is fenced off (answered as
//! `Replayed`, with the values as of its time) and the rest applied: every event counts
//! exactly once. The compare-and-set makes a write computed from a stale read impossible,
//! so two processes (a rebalance's old and new owner, or the feeders of a shared entity)
//! never lose each other's updates.
//!
//! Lateness is decided against the entity's newest event and its partition's watermark.
//! The stored watermark only ever covers batches whose every entity write succeeded, and
//! a replay starts at or before the first event not acknowledged and sees every event in
//! between again, so at each event the replay's watermark is the clean pass's:
//! `max(stored, events before it on the partition) - lateness`. The same events are late.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Client, Cmd, FromRedisValue, Pipeline, RedisError, RedisResult, Value};

use weir_schemas::StoreError;
use weir_schemas::store::{Applied, EntityKey, FeatureStore, Observation, ObservationResult, ObserveOutcome};

use crate::windows::{EngineSpec, EntityDef, EntityState, PartitionWatermarks};

mod serving;
mod state_cache;
pub use serving::ServingWrite;
use state_cache::StateCache;

/// Compare-and-set attempts per entity per batch before giving up (retryable).
pub const MAX_CAS_ATTEMPTS: usize = 8;

/// How long the bad bytes of a corrupt state are kept aside (7 days), for inspection.
pub const QUARANTINE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// Entities whose states a store keeps decoded in memory by default ([`RedisStore::with_state_cache`]).
pub const DEFAULT_STATE_CACHE_ENTITIES: usize = 100_000;

/// The compare-and-set of several entities (one hash slot) in one call, each on its own:
/// KEYS per entity its state hash and readable hash. ARGV: the TTL in ms, then per entity
/// the version its state was computed from (`''` for none), the new blob, the number `n`
/// of readable values, and `n` field/value pairs. Returns per entity the version written,
/// or nil when its version moved (that entity untouched).
///
/// A version is `<incarnation>:<counter>`; a new entity's incarnation is the server's
/// clock in microseconds. So versions never repeat, even when an entity's keys expire (or
/// are flushed, or lost in a failover) and it is created again: a state cached under an
/// old version can never pass the check against a new incarnation (with a plain counter
/// restarting at 1 it could, and the other writer's events would be silently dropped).
const CAS_SCRIPT: &str = r#"
local ttl = ARGV[1]
local out = {}
local a = 2
for i = 1, #KEYS, 2 do
  local n = tonumber(ARGV[a + 2])
  local v = redis.call('HGET', KEYS[i], 'v')
  if (v or '') == ARGV[a] then
    local nv
    if v then
      local inc, c = string.match(v, '^(.*):(%d+)$')
      if inc then nv = inc .. ':' .. tostring(tonumber(c) + 1) else nv = v .. ':1' end
    else
      local t = redis.call('TIME')
      nv = t[1] .. string.format('%06d', tonumber(t[2])) .. ':1'
    end
    redis.call('HSET', KEYS[i], 'v', nv, 's', ARGV[a + 1])
    redis.call('PEXPIRE', KEYS[i], ttl)
    if n > 0 then
      redis.call('HSET', KEYS[i + 1], unpack(ARGV, a + 3, a + 2 + 2 * n))
      redis.call('PEXPIRE', KEYS[i + 1], ttl)
    end
    out[#out + 1] = nv
  else
    out[#out + 1] = false
  end
  a = a + 3 + 2 * n
end
return out
"#;

/// Entities per compare-and-set call: enough to spread the call's fixed cost, few enough
/// that one call holds Redis (single-threaded) for well under a millisecond.
const CAS_ENTITIES_PER_CALL: usize = 32;

/// KEYS: a watermark key. ARGV: the new watermark, the TTL in ms. Keeps the larger, and
/// refreshes the TTL either way.
const WATERMARK_SCRIPT: &str = r#"
local old = tonumber(redis.call('GET', KEYS[1]))
if not old or tonumber(ARGV[1]) > old then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"#;

/// Appends an entity's readable hash to a script call: the number `n` of fields, then
/// `n` field/value pairs (its values as of its newest event, and `event_time_max`); `0`
/// for an entity with no event yet.
pub(crate) fn push_readable(cmd: &mut Cmd, def: &EntityDef, state: &EntityState) {
    push_values(cmd, def, state.current_values(def).as_deref(), state.max_event_time().unwrap_or_default());
}

/// [`push_readable`] from the values themselves.
pub(crate) fn push_values(cmd: &mut Cmd, def: &EntityDef, values: Option<&[f64]>, event_time_max: i64) {
    match values {
        Some(values) => {
            cmd.arg(values.len() + 1);
            // Shortest text that reads back as the same double (ryu: faster than
            // `Display`; `1.0`, `2.5e-7`).
            let mut text = ryu::Buffer::new();
            for (name, v) in def.value_names().iter().zip(values) {
                cmd.arg(name).arg(text.format(*v));
            }
            cmd.arg("event_time_max").arg(event_time_max);
        }
        None => {
            cmd.arg(0);
        }
    }
}

/// Key names under a prefix.
#[derive(Debug, Clone)]
pub struct KeySpace {
    pub prefix: String,
}

impl KeySpace {
    pub fn new(prefix: &str) -> Self {
        KeySpace { prefix: prefix.to_string() }
    }

    /// The readable hash of an entity.
    pub fn features_key(&self, kind: &str, id: &str) -> String {
        format!("{}:{{{kind}:{id}}}", self.prefix)
    }

    /// The state hash of an entity.
    pub fn state_key(&self, kind: &str, id: &str) -> String {
        format!("{}:{{{kind}:{id}}}:state", self.prefix)
    }

    /// Where the bad bytes of a corrupt state are copied (same hash slot as the state).
    pub fn quarantine_key(&self, kind: &str, id: &str) -> String {
        format!("{}:{{{kind}:{id}}}:state:quarantine", self.prefix)
    }

    /// Present while Redis holds the serving copy written by the processes that keep
    /// state locally: its absence tells them Redis lost data (module `serving`).
    pub fn serving_marker_key(&self) -> String {
        format!("{}:{{serving}}:marker", self.prefix)
    }

    /// The watermark of a source partition.
    pub fn watermark_key(&self, topic: &str, partition: i32) -> String {
        format!("{}:{{wm}}:{topic}:{partition}", self.prefix)
    }
}

/// A single Redis (reconnecting) or a Redis Cluster (the client follows the slot map).
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        match self.clone() {
            Connection::Single(mut c) => cmd.query_async(&mut c).await,
            Connection::Cluster(mut c) => cmd.query_async(&mut c).await,
        }
    }

    async fn query_pipeline(&self, pipe: &Pipeline) -> RedisResult<Vec<Value>> {
        match self.clone() {
            Connection::Single(mut c) => pipe.query_async(&mut c).await,
            Connection::Cluster(mut c) => pipe.query_async(&mut c).await,
        }
    }
}

pub struct RedisStore {
    connection: Connection,
    keys: KeySpace,
    spec: EngineSpec,
    ttl_ms: i64,
    cas_sha: String,
    watermark_sha: String,
    serving_sha: String,
    watermarks: Mutex<PartitionWatermarks>,
    /// Compare-and-set writes refused because the entity changed since it was read.
    conflicts: AtomicU64,
    /// States that did not decode (module docs: "A corrupt state").
    corrupt: AtomicU64,
    /// States this store wrote last, decoded (module docs: "The state cache").
    cache: Mutex<StateCache>,
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// One entity touched by a batch: its key, definition, the batch indices of its
/// observations, and the version and state it is computed from (cached or read; `None`
/// before either).
struct Touched<'a> {
    kind: &'a str,
    id: &'a str,
    def: &'a EntityDef,
    indices: Vec<usize>,
    base: Option<(String, EntityState)>,
    /// Whether `base` came from the state cache (not checked against Redis yet).
    cached: bool,
}

impl RedisStore {
    /// Connects (with automatic reconnection) and loads the scripts.
    pub async fn connect(url: &str, keys: KeySpace, spec: EngineSpec, ttl_ms: i64) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::Protocol(format!("bad redis url {url:?}: {e}")))?;
        let connection = ConnectionManager::new(client).await.map_err(unavailable)?;
        Self::with_connection(Connection::Single(connection), keys, spec, ttl_ms).await
    }

    /// Connects to a Redis Cluster through any of `seeds` (`redis://host:port` of some of
    /// its nodes; the client discovers the rest and follows slot moves) and loads the
    /// scripts on every master.
    pub async fn connect_cluster(seeds: &[String], keys: KeySpace, spec: EngineSpec, ttl_ms: i64) -> Result<Self, StoreError> {
        let client = ClusterClient::new(seeds.iter().map(String::as_str))
            .map_err(|e| StoreError::Protocol(format!("bad redis cluster seeds {seeds:?}: {e}")))?;
        let connection = client.get_async_connection().await.map_err(unavailable)?;
        Self::with_connection(Connection::Cluster(connection), keys, spec, ttl_ms).await
    }

    async fn with_connection(connection: Connection, keys: KeySpace, spec: EngineSpec, ttl_ms: i64) -> Result<Self, StoreError> {
        let watermarks = Mutex::new(PartitionWatermarks::new(spec.lateness_ms));
        let store = RedisStore {
            connection,
            keys,
            spec,
            ttl_ms,
            cas_sha: redis::Script::new(CAS_SCRIPT).get_hash().to_string(),
            watermark_sha: redis::Script::new(WATERMARK_SCRIPT).get_hash().to_string(),
            serving_sha: redis::Script::new(serving::SERVING_SCRIPT).get_hash().to_string(),
            watermarks,
            conflicts: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            cache: Mutex::new(StateCache::new(DEFAULT_STATE_CACHE_ENTITIES)),
        };
        store.load_scripts().await?;
        Ok(store)
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    pub fn spec(&self) -> &EngineSpec {
        &self.spec
    }

    /// Entity writes refused so far because another process wrote the entity between this
    /// store's read and write (each was recomputed and written again).
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Corrupt entity states met so far (quarantined and reset by writes, treated as
    /// absent by reads).
    pub fn corrupt_states(&self) -> u64 {
        self.corrupt.load(Ordering::Relaxed)
    }

    /// Keeps up to `entities` states decoded in memory between batches (0: none), instead
    /// of [`DEFAULT_STATE_CACHE_ENTITIES`].
    pub fn with_state_cache(self, entities: usize) -> Self {
        if let Ok(mut cache) = self.cache.lock() {
            *cache = StateCache::new(entities);
        }
        self
    }

    /// (hits, misses) of the state cache so far: entities a batch found decoded in memory,
    /// and those it had to read from Redis.
    pub fn state_cache_stats(&self) -> (u64, u64) {
        self.cache.lock().map(|c| (c.hits, c.misses)).unwrap_or_default()
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    /// Loads the scripts (on a cluster: on every master, the client fans `SCRIPT LOAD` out).
    async fn load_scripts(&self) -> Result<(), StoreError> {
        for (script, sha) in
            [(CAS_SCRIPT, &self.cas_sha), (WATERMARK_SCRIPT, &self.watermark_sha), (serving::SERVING_SCRIPT, &self.serving_sha)]
        {
            let got: String = self.connection.query(redis::cmd("SCRIPT").arg("LOAD").arg(script)).await.map_err(unavailable)?;
            if &got != sha {
                return Err(StoreError::Protocol(format!("redis returned script sha {got}, expected {sha}")));
            }
        }
        Ok(())
    }

    /// Runs `cmds` (each with the key that routes it) in one round trip: one pipeline, or
    /// on a cluster one per hash slot, all at once. Replies in `cmds` order. Takes the
    /// commands by value: they carry state blobs, and are moved into the pipelines, not
    /// copied.
    async fn run(&self, cmds: Vec<(String, Cmd)>) -> Result<Vec<Value>, StoreError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let n = cmds.len();
        let groups: Vec<Vec<usize>> = match &self.connection {
            Connection::Single(_) => vec![(0..n).collect()],
            Connection::Cluster(_) => {
                let mut by_slot: HashMap<Slot, Vec<usize>> = HashMap::new();
                for (i, (key, _)) in cmds.iter().enumerate() {
                    by_slot.entry(Slot::for_key(key)).or_default().push(i);
                }
                by_slot.into_values().collect()
            }
        };
        let mut cmds: Vec<Option<Cmd>> = cmds.into_iter().map(|(_, c)| Some(c)).collect();
        let pipes: Vec<Pipeline> = groups
            .iter()
            .map(|g| {
                let mut pipe = redis::pipe();
                for &i in g {
                    if let Some(cmd) = cmds[i].take() {
                        pipe.add_command(cmd);
                    }
                }
                pipe
            })
            .collect();
        match self.send(&groups, &pipes, n).await {
            // A restarted Redis (or a promoted replica) forgets scripts. EVALSHA failed
            // before running; the scripts are compare-and-set or idempotent, so sending the
            // whole round again is safe.
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.load_scripts().await?;
                self.send(&groups, &pipes, n).await.map_err(unavailable)
            }
            Err(e) => Err(unavailable(e)),
            Ok(v) => Ok(v),
        }
    }

    /// Sends the pipelines at once; the `n` replies in the order of the commands.
    async fn send(&self, groups: &[Vec<usize>], pipes: &[Pipeline], n: usize) -> RedisResult<Vec<Value>> {
        let answers = futures::future::try_join_all(pipes.iter().map(|p| self.connection.query_pipeline(p))).await?;
        let mut replies = vec![Value::Nil; n];
        for (group, answer) in groups.iter().zip(answers) {
            if answer.len() != group.len() {
                return Err(RedisError::from((
                    redis::ErrorKind::Client,
                    "pipeline reply count",
                    format!("{} replies to {} commands", answer.len(), group.len()),
                )));
            }
            for (&i, reply) in group.iter().zip(answer) {
                replies[i] = reply;
            }
        }
        Ok(replies)
    }

    fn read_cmd(&self, kind: &str, id: &str) -> (String, Cmd) {
        let key = self.keys.state_key(kind, id);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&key).arg("v").arg("s");
        (key, cmd)
    }

    /// Parses an `HMGET v s` reply: (version, blob).
    fn parse_state(reply: Value) -> Result<(String, Option<Vec<u8>>), StoreError> {
        let (v, s): (Option<String>, Option<Vec<u8>>) =
            redis::from_redis_value(reply).map_err(|e| StoreError::Protocol(format!("state read: {e}")))?;
        Ok((v.unwrap_or_default(), s))
    }

    /// Decodes a state read for a write. A blob that does not decode is counted, logged
    /// with its key, and a command copying it to its quarantine key is added to
    /// `quarantine`; the entity starts from an empty state (module docs: "A corrupt
    /// state").
    fn decode_for_write(&self, kind: &str, id: &str, def: &EntityDef, blob: Option<Vec<u8>>, quarantine: &mut Vec<(String, Cmd)>) -> EntityState {
        let Some(b) = blob else { return EntityState::new(def) };
        match EntityState::from_bytes(def, &b) {
            Ok(state) => state,
            Err(e) => {
                let key = self.keys.state_key(kind, id);
                let aside = self.keys.quarantine_key(kind, id);
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%key, quarantine = %aside, bytes = b.len(), error = %weir_schemas::bounded::cap(e),
                    "corrupt entity state: copied aside, entity reset to an empty state (its windows restart empty)");
                let mut cmd = redis::cmd("SET");
                cmd.arg(&aside).arg(b).arg("PX").arg(QUARANTINE_TTL_MS);
                quarantine.push((aside, cmd));
                EntityState::new(def)
            }
        }
    }

    /// Decodes a state read for serving: a corrupt one is counted, logged and read as
    /// absent (the next write quarantines and resets it).
    fn decode_for_read(&self, kind: &str, id: &str, def: &EntityDef, blob: Vec<u8>) -> Option<EntityState> {
        match EntityState::from_bytes(def, &blob) {
            Ok(state) => Some(state),
            Err(e) => {
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                tracing::error!(key = %self.keys.state_key(kind, id), bytes = blob.len(), error = %weir_schemas::bounded::cap(e),
                    "corrupt entity state read as absent");
                None
            }
        }
    }

    /// The state of one entity, or `None` if unknown, expired or corrupt. One round trip.
    pub async fn read_state(&self, kind: &str, id: &str) -> Result<Option<EntityState>, StoreError> {
        let def = self.spec.def(kind)?;
        let reply = self.run(vec![self.read_cmd(kind, id)]).await?.pop().unwrap_or(Value::Nil);
        let (_, blob) = Self::parse_state(reply)?;
        Ok(blob.and_then(|b| self.decode_for_read(kind, id, def, b)))
    }

    /// The states of `entities` in one round trip.
    async fn read_states(&self, entities: &[EntityKey]) -> Result<Vec<Option<EntityState>>, StoreError> {
        let cmds: Vec<(String, Cmd)> = entities.iter().map(|e| self.read_cmd(&e.kind, &e.id)).collect();
        let replies = self.run(cmds).await?;
        entities
            .iter()
            .zip(replies)
            .map(|(e, reply)| {
                let def = self.spec.def(&e.kind)?;
                let (_, blob) = Self::parse_state(reply)?;
                Ok(blob.and_then(|b| self.decode_for_read(&e.kind, &e.id, def, b)))
            })
            .collect()
    }

    /// The compare-and-set calls for `writes` (entity, version computed from, new state):
    /// per hash slot (all one slot on a single Redis), [`CAS_ENTITIES_PER_CALL`] entities
    /// per call. Each call comes with the positions in `writes` it answers for.
    fn write_cmds(&self, touched: &[Touched<'_>], writes: &[(usize, String, EntityState)]) -> (Vec<(String, Cmd)>, Vec<Vec<usize>>) {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        if self.is_cluster() {
            let mut by_slot: HashMap<Slot, usize> = HashMap::new();
            for (w, (k, _, _)) in writes.iter().enumerate() {
                let t = &touched[*k];
                let slot = Slot::for_key(self.keys.state_key(t.kind, t.id));
                let g = *by_slot.entry(slot).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[g].push(w);
            }
        } else {
            groups.push((0..writes.len()).collect());
        }
        let (mut calls, mut answers_for) = (Vec::new(), Vec::new());
        for group in groups {
            for chunk in group.chunks(CAS_ENTITIES_PER_CALL) {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(&self.cas_sha).arg(2 * chunk.len());
                let mut route = String::new();
                for &w in chunk {
                    let t = &touched[writes[w].0];
                    let key = self.keys.state_key(t.kind, t.id);
                    cmd.arg(&key).arg(self.keys.features_key(t.kind, t.id));
                    if route.is_empty() {
                        route = key;
                    }
                }
                cmd.arg(self.ttl_ms);
                for &w in chunk {
                    let (k, version, state) = &writes[w];
                    let def = touched[*k].def;
                    cmd.arg(version.as_str()).arg(state.to_bytes(def));
                    push_readable(&mut cmd, def, state);
                }
                calls.push((route, cmd));
                answers_for.push(chunk.to_vec());
            }
        }
        (calls, answers_for)
    }

    fn lock_cache(&self) -> Result<std::sync::MutexGuard<'_, StateCache>, StoreError> {
        self.cache.lock().map_err(|_| StoreError::Protocol("state cache lock poisoned".into()))
    }
}

impl FeatureStore for RedisStore {
    async fn observe(&self, batch: &[Observation]) -> Result<ObserveOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(ObserveOutcome::default());
        }
        // The entities touched, in order of first appearance.
        let mut touched: Vec<Touched<'_>> = Vec::new();
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, obs) in batch.iter().enumerate() {
            let def = self.spec.def(&obs.kind)?;
            let at = *index.entry((&obs.kind, &obs.entity)).or_insert_with(|| {
                touched.push(Touched { kind: &obs.kind, id: &obs.entity, def, indices: Vec::new(), base: None, cached: false });
                touched.len() - 1
            });
            touched[at].indices.push(i);
        }
        let partitions = {
            let mut p: Vec<(&str, i32)> = Vec::new();
            for obs in batch {
                let key = (obs.position.topic.as_str(), obs.position.partition);
                if !p.contains(&key) {
                    p.push(key);
                }
            }
            p
        };

        // The states this store wrote last; the compare-and-set finds out if one is stale.
        {
            let mut cache = self.lock_cache()?;
            for t in &mut touched {
                t.base = cache.take(t.kind, t.id);
                t.cached = t.base.is_some();
            }
        }

        // Round trip 1: the states not cached, and the partitions' watermarks (always: another
        // process may have owned a partition in between).
        let missing: Vec<usize> = (0..touched.len()).filter(|&k| touched[k].base.is_none()).collect();
        let mut cmds: Vec<(String, Cmd)> = missing.iter().map(|&k| self.read_cmd(touched[k].kind, touched[k].id)).collect();
        for (topic, partition) in &partitions {
            let key = self.keys.watermark_key(topic, *partition);
            let mut cmd = redis::cmd("GET");
            cmd.arg(&key);
            cmds.push((key, cmd));
        }
        let mut replies = self.run(cmds).await?;
        let wm_replies = replies.split_off(missing.len());
        let mut quarantine = Vec::new();
        for (&k, reply) in missing.iter().zip(replies) {
            let (version, blob) = Self::parse_state(reply)?;
            let t = &touched[k];
            let state = self.decode_for_write(t.kind, t.id, t.def, blob, &mut quarantine);
            touched[k].base = Some((version, state));
        }
        // The bad bytes are aside before the compare-and-set writes over them (it still
        // checks the version read, so a concurrent writer is not overwritten).
        let mut corrupt_states = quarantine.len() as u64;
        self.run(std::mem::take(&mut quarantine)).await?;
        let floors = {
            let mut wm = self.watermarks.lock().map_err(|_| StoreError::Protocol("watermark lock poisoned".into()))?;
            for ((topic, partition), reply) in partitions.iter().zip(wm_replies) {
                let stored: Option<i64> = redis::from_redis_value(reply).map_err(|e| StoreError::Protocol(format!("watermark read: {e}")))?;
                if let Some(w) = stored {
                    wm.raise(topic, *partition, w);
                }
            }
            wm.floors(batch)
        };

        // Compute, write with a compare-and-set, recompute and retry the conflicts.
        let mut results: Vec<Option<ObservationResult>> = vec![None; batch.len()];
        // Per entity, once settled: the version Redis holds and the state it holds.
        let mut settled: Vec<Option<(String, EntityState)>> = (0..touched.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..touched.len()).collect();
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let mut writes: Vec<(usize, String, EntityState)> = Vec::new();
            // Cached entities with nothing to write (all replays): their answers came from
            // the cached state, so check its version is still Redis's (else recompute).
            let mut checks: Vec<(usize, String, EntityState)> = Vec::new();
            for &k in &pending {
                let t = &mut touched[k];
                let (version, mut state) = t.base.take().ok_or_else(|| StoreError::Protocol("an entity has no state to compute from".into()))?;
                let mut changed = false;
                for &i in &t.indices {
                    let r = state.apply(t.def, &batch[i], floors[i]);
                    changed |= r.applied != Applied::Replayed;
                    results[i] = Some(r);
                }
                if changed {
                    writes.push((k, version, state));
                } else if t.cached {
                    checks.push((k, version, state));
                } else {
                    settled[k] = Some((version, state));
                }
            }
            let (mut cmds, answers_for) = self.write_cmds(&touched, &writes);
            let calls = cmds.len();
            for (k, _, _) in &checks {
                let key = self.keys.state_key(touched[*k].kind, touched[*k].id);
                let mut cmd = redis::cmd("HGET");
                cmd.arg(&key).arg("v");
                cmds.push((key, cmd));
            }
            let mut replies = self.run(cmds).await?;
            let check_replies = replies.split_off(calls);
            let mut written: Vec<Option<String>> = vec![None; writes.len()];
            for (answers_for, reply) in answers_for.iter().zip(replies) {
                let versions: Vec<Option<String>> =
                    redis::from_redis_value(reply).map_err(|e| StoreError::Protocol(format!("state write: {e}")))?;
                if versions.len() != answers_for.len() {
                    return Err(StoreError::Protocol(format!("state write: {} answers for {} entities", versions.len(), answers_for.len())));
                }
                for (&w, version) in answers_for.iter().zip(versions) {
                    written[w] = version;
                }
            }
            let mut conflicts = Vec::new();
            for ((k, _, state), written) in writes.into_iter().zip(written) {
                match written {
                    Some(version) => settled[k] = Some((version, state)),
                    None => conflicts.push(k),
                }
            }
            for ((k, version, state), reply) in checks.into_iter().zip(check_replies) {
                let held: Option<String> = redis::from_redis_value(reply).map_err(|e| StoreError::Protocol(format!("version check: {e}")))?;
                if held.unwrap_or_default() == version {
                    settled[k] = Some((version, state));
                } else {
                    conflicts.push(k);
                }
            }
            if conflicts.is_empty() {
                pending.clear();
                break;
            }
            self.conflicts.fetch_add(conflicts.len() as u64, Ordering::Relaxed);
            tracing::debug!(attempt, conflicts = conflicts.len(), "entity states changed under this batch; recomputing them");
            let cmds: Vec<(String, Cmd)> = conflicts.iter().map(|&k| self.read_cmd(touched[k].kind, touched[k].id)).collect();
            for (&k, reply) in conflicts.iter().zip(self.run(cmds).await?) {
                let (version, blob) = Self::parse_state(reply)?;
                let t = &touched[k];
                let state = self.decode_for_write(t.kind, t.id, t.def, blob, &mut quarantine);
                touched[k].base = Some((version, state));
                touched[k].cached = false;
            }
            corrupt_states += quarantine.len() as u64;
            self.run(std::mem::take(&mut quarantine)).await?;
            pending = conflicts;
        }
        if !pending.is_empty() {
            return Err(StoreError::Unavailable(format!(
                "{} entities kept changing under this batch ({MAX_CAS_ATTEMPTS} attempts); retry",
                pending.len()
            )));
        }
        {
            let mut cache = self.lock_cache()?;
            for (t, s) in touched.iter().zip(settled) {
                if let Some((version, state)) = s {
                    cache.put(t.kind, t.id, version, state);
                }
            }
        }

        // Every entity is written: now the watermarks may advance.
        let marks = match self.watermarks.lock() {
            Ok(wm) => wm.of_batch(batch),
            Err(_) => return Err(StoreError::Protocol("watermark lock poisoned".into())),
        };
        let cmds: Vec<(String, Cmd)> = marks
            .iter()
            .map(|(topic, partition, w)| {
                let key = self.keys.watermark_key(topic, *partition);
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(&self.watermark_sha).arg(1).arg(&key).arg(*w).arg(self.ttl_ms);
                (key, cmd)
            })
            .collect();
        self.run(cmds).await?;

        let results = results
            .into_iter()
            .map(|r| r.ok_or_else(|| StoreError::Protocol("an observation got no result".into())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ObserveOutcome { corrupt_states, ..ObserveOutcome::from_results(batch, results) })
    }

    async fn read(&self, entity: &EntityKey) -> Result<Option<Vec<f64>>, StoreError> {
        let def = self.spec.def(&entity.kind)?;
        Ok(self.read_state(&entity.kind, &entity.id).await?.and_then(|s| s.current_values(def)))
    }

    /// One round trip for all of them (pipelined; per slot in parallel on a cluster); the
    /// windows are computed here.
    async fn read_at(&self, entities: &[EntityKey], as_of_ms: i64) -> Result<Vec<Option<Vec<f64>>>, StoreError> {
        let states = self.read_states(entities).await?;
        entities
            .iter()
            .zip(states)
            .map(|(e, s)| {
                let def = self.spec.def(&e.kind)?;
                Ok(s.map(|s| s.values_at(def, as_of_ms)))
            })
            .collect()
    }

    async fn preview(&self, batch: &[Observation]) -> Result<Vec<ObservationResult>, StoreError> {
        let keys: Vec<EntityKey> = batch.iter().map(|o| EntityKey { kind: o.kind.clone(), id: o.entity.clone() }).collect();
        let states = self.read_states(&keys).await?;
        batch
            .iter()
            .zip(states)
            .map(|(obs, s)| {
                let def = self.spec.def(&obs.kind)?;
                Ok(s.unwrap_or_else(|| EntityState::new(def)).preview(def, obs))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
