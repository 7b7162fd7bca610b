//! The online feature store on Redis.
//!
//! Key layout (documented for users in the README), for entity kind `card`, id `c42` and
//! prefix `weir`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `weir:{card:c42}` | hash | `count_<w>`, `amount_sum_<w>` per window as of the newest event, `event_time_max` |
//! | `weir:{card:c42}:state` | hash | the pane ring (`w:<w>:<slot>` = `pane|count|sum`), `max_t`, and the replay fences `f:<topic>:<partition>` = highest applied offset |
//!
//! The `{card:c42}` hash tag puts both keys of an entity in one Redis Cluster slot, so the
//! script that updates them is atomic there too. Both keys get a TTL of the longest window
//! plus lateness plus slack, refreshed on every write.
//!
//! Each observation is one `EVALSHA` of `apply_observation.lua`; a micro-batch is one
//! pipeline, so one round trip. The script checks the fence, updates the panes and the
//! readable hash, and answers the aggregates as of the event time, all atomically: an
//! event is either wholly applied with its fence or not at all, which is what makes a
//! replay after a crash count every event exactly once.

use redis::aio::ConnectionManager;
use redis::{Client, RedisError};

use weir_schemas::store::{Applied, FeatureStore, Observation, ObservationResult};
use weir_schemas::StoreError;

use crate::windows::{value_names, WindowSpec};

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

pub struct RedisStore {
    connection: ConnectionManager,
    keys: KeySpace,
    windows: Vec<WindowSpec>,
    lateness_ms: i64,
    ttl_ms: i64,
    script_sha: String,
    /// Field names of the readable hash, in value order.
    value_fields: Vec<String>,
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
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
        let client = Client::open(url).map_err(|e| StoreError::Protocol(format!("bad redis url {url:?}: {e}")))?;
        let connection = ConnectionManager::new(client).await.map_err(unavailable)?;
        let script_sha = redis::Script::new(APPLY_SCRIPT).get_hash().to_string();
        let value_fields = value_names(&windows);
        let store = RedisStore { connection, keys, windows, lateness_ms, ttl_ms, script_sha, value_fields };
        store.load_script().await?;
        Ok(store)
    }

    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    async fn load_script(&self) -> Result<(), StoreError> {
        let mut con = self.connection.clone();
        let sha: String = redis::cmd("SCRIPT").arg("LOAD").arg(APPLY_SCRIPT).query_async(&mut con).await.map_err(unavailable)?;
        if sha != self.script_sha {
            return Err(StoreError::Protocol(format!("redis returned script sha {sha}, expected {}", self.script_sha)));
        }
        Ok(())
    }

    fn pipeline(&self, batch: &[Observation]) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        for obs in batch {
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(&self.script_sha)
                .arg(2)
                .arg(self.keys.state_key(&obs.entity))
                .arg(self.keys.features_key(&obs.entity))
                .arg(obs.event_time_ms)
                .arg(format!("{:?}", obs.value))
                .arg(format!("f:{}:{}", obs.position.topic, obs.position.partition))
                .arg(obs.position.offset)
                .arg(self.lateness_ms)
                .arg(self.ttl_ms)
                .arg(self.windows.len());
            for w in &self.windows {
                cmd.arg(&w.name).arg(w.pane_ms).arg(w.panes).arg(w.slots);
            }
        }
        pipe
    }

    fn parse_reply(&self, reply: Vec<String>) -> Result<ObservationResult, StoreError> {
        let mut it = reply.into_iter();
        let applied = match it.next().as_deref() {
            Some("applied") => Applied::Applied,
            Some("replayed") => Applied::Replayed,
            Some("late") => Applied::Late,
            other => return Err(StoreError::Protocol(format!("unexpected script status {other:?}"))),
        };
        let values = it
            .map(|s| s.parse::<f64>().map_err(|_| StoreError::Protocol(format!("non-numeric value {s:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if values.len() != self.value_fields.len() {
            return Err(StoreError::Protocol(format!(
                "script returned {} values, expected {}",
                values.len(),
                self.value_fields.len()
            )));
        }
        Ok(ObservationResult { applied, values })
    }
}

impl FeatureStore for RedisStore {
    async fn observe(&self, batch: &[Observation]) -> Result<Vec<ObservationResult>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut con = self.connection.clone();
        let pipe = self.pipeline(batch);
        let replies: Vec<Vec<String>> = match pipe.query_async(&mut con).await {
            Ok(r) => r,
            // A restarted Redis forgets scripts. Nothing was applied (EVALSHA failed before
            // running), so load it and send the batch again.
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.load_script().await?;
                pipe.query_async(&mut con).await.map_err(unavailable)?
            }
            Err(e) => return Err(unavailable(e)),
        };
        replies.into_iter().map(|r| self.parse_reply(r)).collect()
    }

    async fn read(&self, entity: &str) -> Result<Option<Vec<f64>>, StoreError> {
        let mut con = self.connection.clone();
        let values: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.keys.features_key(entity))
            .arg(&self.value_fields)
            .query_async(&mut con)
            .await
            .map_err(unavailable)?;
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        values
            .into_iter()
            .zip(&self.value_fields)
            .map(|(v, name)| match v {
                Some(s) => s.parse::<f64>().map_err(|_| StoreError::Protocol(format!("field {name} holds {s:?}"))),
                None => Err(StoreError::Protocol(format!("field {name} is missing"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
