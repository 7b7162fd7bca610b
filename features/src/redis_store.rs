//! The online feature store on Redis.
//!
//! Key layout (documented for users in the README), for entity kind `card`, id `c42` and
//! prefix `weir`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `weir:{card:c42}` | hash | `count_<w>`, `amount_sum_<w>` per window as of the newest event, `event_time_max`: readable with `redis-cli HGETALL` |
//! | `weir:{card:c42}:state` | hash | the window state, binary: `h` the header (fingerprint, newest event time, per window the newest pane and running count and sum) as little-endian doubles; one field per ring slot written so far (pane, count, sum), named by 3 bytes: window number from 1, slot / 256, slot % 256; `f:<topic>:<partition>` the replay fence, highest applied offset as text ([`crate::windows`] documents the cells) |
//!
//! The `{card:c42}` hash tag puts both keys of an entity in one Redis Cluster slot, so the
//! script that updates them is atomic there too.
//!
//! **Redis Cluster** ([`RedisStore::connect_cluster`]): the redis crate's cluster pipeline
//! sends a pipeline to the node of its first key and refuses one whose keys lie in several
//! slots (`CrossSlot`). So a micro-batch is split into one pipeline per hash slot (in
//! practice per entity), keeping the batch order within each, and all of them are sent at
//! once: the cluster connection multiplexes them over one connection per node, so the
//! batch still costs about one round trip. Entities are independent, so the order between
//! slots does not matter; within an entity it is kept. A group that fails (a node down, a
//! slot moved) fails the batch, and its replay is safe: observations already applied in
//! other groups are fenced off and answer as `Replayed`. Both keys get a TTL of the longest window
//! plus lateness plus slack, refreshed at least once per micro-batch that touches them.
//!
//! Each observation is one `EVALSHA` of `apply_observation.lua`; a micro-batch is one
//! pipeline, so one round trip. The script checks the fence, reads the header and the
//! ring slots it needs (one `HMGET`; a second only for panes sliding out or an
//! out-of-order answer), writes what changed (one `HSET`), and answers the aggregates as
//! of the event time, all atomically: an event is either wholly applied with its fence or
//! not at all, which is what makes a replay after a crash count every event exactly
//! once. The readable hash is rewritten by the entity's last observation in each batch
//! (whatever its status), so after a batch it matches the state.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Client, Cmd, FromRedisValue, Pipeline, RedisError, RedisResult};

use weir_schemas::StoreError;
use weir_schemas::store::{Applied, FeatureStore, Observation, ObservationResult};

use crate::windows::{EntityState, WindowSpec, layout_fingerprint, value_names, header_cells};

const APPLY_SCRIPT: &str = include_str!("apply_observation.lua");

/// Key names for one entity kind under a prefix.
#[derive(Debug, Clone)]
pub struct KeySpace {
    pub prefix: String,
    pub entity_kind: String,
}

impl KeySpace {
    /// The readable feature hash of an entity.
    pub fn features_key(&self, entity: &str) -> String {
        format!("{}:{{{}:{}}}", self.prefix, self.entity_kind, entity)
    }

    /// The internal window state of an entity.
    pub fn state_key(&self, entity: &str) -> String {
        format!("{}:{{{}:{}}}:state", self.prefix, self.entity_kind, entity)
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

    async fn query_pipeline<T: FromRedisValue>(&self, pipe: &Pipeline) -> RedisResult<T> {
        match self.clone() {
            Connection::Single(mut c) => pipe.query_async(&mut c).await,
            Connection::Cluster(mut c) => pipe.query_async(&mut c).await,
        }
    }
}

pub struct RedisStore {
    connection: Connection,
    keys: KeySpace,
    windows: Vec<WindowSpec>,
    script: String,
    script_sha: String,
    /// Field names of the readable hash, in value order.
    value_fields: Vec<String>,
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// The script with this configuration's constants in front of it.
fn script_for(windows: &[WindowSpec], lateness_ms: i64, ttl_ms: i64) -> String {
    let list =
        |f: &dyn Fn(&WindowSpec) -> String| windows.iter().map(f).collect::<Vec<_>>().join(", ");
    format!(
        "local CONFIG = {{ lateness = {lateness_ms}, ttl = '{ttl_ms}', fingerprint = {fingerprint},\n  \
         header = {header}, header_format = '<{header_format}', values_format = '<{values_format}',\n  windows = {{ {windows} }} }}\n{APPLY_SCRIPT}",
        fingerprint = layout_fingerprint(windows),
        header = header_cells(windows),
        header_format = "d".repeat(header_cells(windows)),
        values_format = "d".repeat(2 * windows.len()),
        windows = list(&|w| format!(
            "{{ count_field = 'count_{}', sum_field = 'amount_sum_{}', pane_ms = {}, panes = {}, slots = {} }}",
            w.name, w.name, w.pane_ms, w.panes, w.slots
        )),
    )
}

impl RedisStore {
    /// Connects (with automatic reconnection) and loads the script.
    pub async fn connect(
        url: &str,
        keys: KeySpace,
        windows: Vec<WindowSpec>,
        lateness_ms: i64,
        ttl_ms: i64,
    ) -> Result<Self, StoreError> {
        let client = Client::open(url)
            .map_err(|e| StoreError::Protocol(format!("bad redis url {url:?}: {e}")))?;
        let connection = ConnectionManager::new(client).await.map_err(unavailable)?;
        Self::with_connection(Connection::Single(connection), keys, windows, lateness_ms, ttl_ms).await
    }

    /// Connects to a Redis Cluster through any of `seeds` (`redis://host:port` of some of
    /// its nodes; the client discovers the rest and follows slot moves) and loads the
    /// script on every master.
    pub async fn connect_cluster(
        seeds: &[String],
        keys: KeySpace,
        windows: Vec<WindowSpec>,
        lateness_ms: i64,
        ttl_ms: i64,
    ) -> Result<Self, StoreError> {
        let client = ClusterClient::new(seeds.iter().map(String::as_str))
            .map_err(|e| StoreError::Protocol(format!("bad redis cluster seeds {seeds:?}: {e}")))?;
        let connection = client.get_async_connection().await.map_err(unavailable)?;
        Self::with_connection(Connection::Cluster(connection), keys, windows, lateness_ms, ttl_ms).await
    }

    async fn with_connection(
        connection: Connection,
        keys: KeySpace,
        windows: Vec<WindowSpec>,
        lateness_ms: i64,
        ttl_ms: i64,
    ) -> Result<Self, StoreError> {
        let script = script_for(&windows, lateness_ms, ttl_ms);
        let script_sha = redis::Script::new(&script).get_hash().to_string();
        let value_fields = value_names(&windows);
        let store = RedisStore {
            connection,
            keys,
            windows,
            script,
            script_sha,
            value_fields,
        };
        store.load_script().await?;
        Ok(store)
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.connection, Connection::Cluster(_))
    }

    /// Loads the script (on a cluster: on every master, the client fans `SCRIPT LOAD` out).
    async fn load_script(&self) -> Result<(), StoreError> {
        let sha: String = self
            .connection
            .query(redis::cmd("SCRIPT").arg("LOAD").arg(&self.script))
            .await
            .map_err(unavailable)?;
        if sha != self.script_sha {
            return Err(StoreError::Protocol(format!(
                "redis returned script sha {sha}, expected {}",
                self.script_sha
            )));
        }
        Ok(())
    }

    /// One pipeline of the observations `indices` of `batch` (in that order).
    fn pipeline(&self, batch: &[Observation], indices: impl Iterator<Item = usize>) -> redis::Pipeline {
        // The last observation of each entity in the batch rewrites its readable hash.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
        for (i, obs) in batch.iter().enumerate() {
            last.insert(&obs.entity, i);
        }
        let mut pipe = redis::pipe();
        for i in indices {
            let obs = &batch[i];
            pipe.cmd("EVALSHA")
                .arg(&self.script_sha)
                .arg(2)
                .arg(self.keys.state_key(&obs.entity))
                .arg(self.keys.features_key(&obs.entity))
                .arg(obs.event_time_ms)
                .arg(format!("{:?}", obs.value))
                .arg(format!("f:{}:{}", obs.position.topic, obs.position.partition))
                .arg(obs.position.offset)
                .arg(if last.get(obs.entity.as_str()) == Some(&i) { "1" } else { "0" });
        }
        pipe
    }

    /// Sends one pipeline of `EVALSHA`s.
    async fn send(&self, pipe: &Pipeline) -> Result<Vec<Vec<u8>>, StoreError> {
        match self.connection.query_pipeline(pipe).await {
            Ok(r) => Ok(r),
            // A restarted Redis (or a promoted replica) forgets scripts. Nothing was
            // applied (EVALSHA failed before running), so load it and send again.
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.load_script().await?;
                self.connection.query_pipeline(pipe).await.map_err(unavailable)
            }
            // The script refused state written under other window settings: stop.
            Err(e) if e.to_string().contains("other window settings") => Err(StoreError::Protocol(e.to_string())),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn parse_reply(&self, reply: &[u8]) -> Result<ObservationResult, StoreError> {
        let applied = match reply.first() {
            Some(b'a') => Applied::Applied,
            Some(b'r') => Applied::Replayed,
            Some(b'l') => Applied::Late,
            other => {
                return Err(StoreError::Protocol(format!(
                    "unexpected script status {other:?}"
                )));
            }
        };
        let body = &reply[1..];
        if body.len() != self.value_fields.len() * 8 {
            return Err(StoreError::Protocol(format!(
                "script returned {} bytes of values, expected {}",
                body.len(),
                self.value_fields.len() * 8
            )));
        }
        let values = body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        Ok(ObservationResult { applied, values })
    }

    /// The entity's whole window state (for request-time reads as of any time, and for
    /// tests), or `None` if unknown or expired. One round trip.
    pub async fn read_state(&self, entity: &str) -> Result<Option<EntityState>, StoreError> {
        let fields: Vec<(Vec<u8>, Vec<u8>)> =
            self.connection.query(redis::cmd("HGETALL").arg(self.keys.state_key(entity))).await.map_err(unavailable)?;
        if fields.is_empty() {
            return Ok(None);
        }
        EntityState::from_hash_fields(&self.windows, &fields).map(Some).map_err(StoreError::Protocol)
    }
}

impl FeatureStore for RedisStore {
    async fn observe(&self, batch: &[Observation]) -> Result<Vec<ObservationResult>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let replies = match &self.connection {
            Connection::Single(_) => self.send(&self.pipeline(batch, 0..batch.len())).await?,
            Connection::Cluster(_) => {
                // One pipeline per hash slot, in batch order within it; all sent at once.
                let mut groups: HashMap<Slot, Vec<usize>> = HashMap::new();
                for (i, obs) in batch.iter().enumerate() {
                    let slot = Slot::for_key(self.keys.state_key(&obs.entity));
                    groups.entry(slot).or_default().push(i);
                }
                let groups: Vec<Vec<usize>> = groups.into_values().collect();
                let pipes: Vec<Pipeline> =
                    groups.iter().map(|g| self.pipeline(batch, g.iter().copied())).collect();
                let answers = futures::future::try_join_all(pipes.iter().map(|p| self.send(p))).await?;
                let mut replies = vec![Vec::new(); batch.len()];
                for (group, answer) in groups.iter().zip(answers) {
                    if answer.len() != group.len() {
                        return Err(StoreError::Protocol(format!(
                            "redis answered {} replies to a pipeline of {}",
                            answer.len(),
                            group.len()
                        )));
                    }
                    for (&i, reply) in group.iter().zip(answer) {
                        replies[i] = reply;
                    }
                }
                replies
            }
        };
        replies.iter().map(|r| self.parse_reply(r)).collect()
    }

    /// One `HGETALL` of the state hash; the windows are computed here, by the same code as
    /// the embedded store.
    async fn read_at(&self, entity: &str, as_of_ms: i64) -> Result<Option<Vec<f64>>, StoreError> {
        Ok(self.read_state(entity).await?.map(|s| s.values_at(&self.windows, as_of_ms)))
    }

    async fn read(&self, entity: &str) -> Result<Option<Vec<f64>>, StoreError> {
        let values: Vec<Option<String>> = self
            .connection
            .query(redis::cmd("HMGET").arg(self.keys.features_key(entity)).arg(&self.value_fields))
            .await
            .map_err(unavailable)?;
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        values
            .into_iter()
            .zip(&self.value_fields)
            .map(|(v, name)| match v {
                Some(s) => s
                    .parse::<f64>()
                    .map_err(|_| StoreError::Protocol(format!("field {name} holds {s:?}"))),
                None => Err(StoreError::Protocol(format!("field {name} is missing"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
