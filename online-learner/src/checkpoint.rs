//! The learner's checkpoint in Redis: model, counters, consumed offsets, join buffers and
//! evaluation ring, written together in one MULTI/EXEC transaction per batch.
//!
//! Keys (hash tag `{<name>}` keeps them in one Redis Cluster slot, so the transaction is
//! legal there too):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `<prefix>:learner:{<name>}:state` | string | [`LearnerState`] as JSON: model (FTRL z/n, scaler), counters, offsets, watermark, promotion state |
//! | `<prefix>:learner:{<name>}:scores` | hash | event id → pending score (served score, model version, feature values) |
//! | `<prefix>:learner:{<name>}:labels` | hash | event id → label waiting for its score |
//! | `<prefix>:learner:{<name>}:joined` | hash | event id → event time of pairs already learned (duplicate guard) |
//! | `<prefix>:learner:{<name>}:eval` | list | the last `max(windows)` evaluation entries |
//! | `<prefix>:learner:{<name>}:compare` | list | the promotion comparison window: the last `compare_labels` entries served by the champion |
//! | `<prefix>:learner:{<name>}:fence` | string | fencing token: incremented by every lease acquisition |
//! | `<prefix>:learner:{<name>}:lease` | string | `<token> <holder>`, with a `lease_ms` expiry: who runs this learner |
//!
//! **One writer per learner name.** A process first takes the lease ([`RedisCheckpoint::acquire`]:
//! `SET NX PX`, and `INCR fence` for its token, in one script). The checkpoint write is a
//! Lua script (atomic like MULTI/EXEC) that first compares the fence with the writer's
//! token and writes nothing if another process has acquired since: a holder that was
//! paused or cut off past its lease — and so replaced — can never overwrite the newer
//! holder's checkpoint, even if it wakes up mid-batch. The fence is never cleared, so a
//! token is never handed out twice.
//!
//! No TTL: the bounded wait is enforced by event-time eviction inside the transaction,
//! which counts what it drops; a Redis TTL would drop entries silently and unevenly.

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use weir_schemas::events::Label;

use crate::error::{Error, Result};
use crate::eval::Entry;
use crate::join::PendingScore;
use crate::learner::{Commit, LearnerState, FORMAT};

/// What a restore reads back.
pub struct Restored {
    pub state: Option<LearnerState>,
    pub scores: Vec<(String, PendingScore)>,
    pub labels: Vec<(String, Label)>,
    pub joined: Vec<(String, i64)>,
    pub eval: Vec<Entry>,
    pub compare: Vec<Entry>,
}

#[derive(Clone)]
pub struct RedisCheckpoint {
    conn: ConnectionManager,
    state_key: String,
    scores_key: String,
    labels_key: String,
    joined_key: String,
    eval_key: String,
    compare_key: String,
    fence_key: String,
    lease_key: String,
    /// The fencing token and lease value of this process, once acquired.
    held: Option<Held>,
}

#[derive(Clone)]
struct Held {
    token: u64,
    value: String,
    ttl_ms: u64,
}

/// What [`RedisCheckpoint::acquire`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Acquire {
    /// This process holds the lease with this fencing token.
    Acquired(u64),
    /// Another process holds it (`<token> <holder>`), for `ttl_ms` more at most.
    Held { by: String, ttl_ms: i64 },
}

const ACQUIRE: &str = r"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, redis.call('GET', KEYS[2]), tostring(redis.call('PTTL', KEYS[2]))}
end
local token = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], token .. ' ' .. ARGV[1], 'PX', ARGV[2])
return {1, tostring(token), ''}
";

/// Renews the lease if the fence still carries our token (recreating it if it expired
/// while no one else acquired: then no one else can have written either).
const RENEW: &str = r"
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then return {0, tostring(current)} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {1, current}
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
";

/// The fenced checkpoint write. KEYS: fence, lease, state, scores, labels, joined, eval,
/// compare. ARGV: token, lease value, lease ms, state JSON, eval capacity, then for each
/// of the three hashes `nput ndel` followed by `nput` field/value pairs and `ndel`
/// fields, then `neval` followed by the evaluation entries, then `reset capacity ncompare`
/// followed by the comparison window's new entries.
const COMMIT: &str = r"
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then return {0, tostring(current)} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
local i = 6
for k = 4, 6 do
  local nput = tonumber(ARGV[i]); local ndel = tonumber(ARGV[i + 1]); i = i + 2
  for _ = 1, nput do redis.call('HSET', KEYS[k], ARGV[i], ARGV[i + 1]); i = i + 2 end
  for _ = 1, ndel do redis.call('HDEL', KEYS[k], ARGV[i]); i = i + 1 end
end
local neval = tonumber(ARGV[i]); i = i + 1
if neval > 0 then
  for _ = 1, neval do redis.call('RPUSH', KEYS[7], ARGV[i]); i = i + 1 end
  redis.call('LTRIM', KEYS[7], -tonumber(ARGV[5]), -1)
end
local reset = ARGV[i]; local cap = tonumber(ARGV[i + 1]); local ncompare = tonumber(ARGV[i + 2]); i = i + 3
if reset == '1' then redis.call('DEL', KEYS[8]) end
if ncompare > 0 then
  for _ = 1, ncompare do redis.call('RPUSH', KEYS[8], ARGV[i]); i = i + 1 end
  redis.call('LTRIM', KEYS[8], -cap, -1)
end
return {1, current}
";

impl RedisCheckpoint {
    pub async fn connect(url: &str, prefix: &str, name: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| Error::redis(format!("opening {url}"), e))?;
        let conn = ConnectionManager::new(client).await.map_err(|e| Error::redis(format!("connecting to {url}"), e))?;
        let base = format!("{prefix}:learner:{{{name}}}");
        Ok(RedisCheckpoint {
            conn,
            state_key: format!("{base}:state"),
            scores_key: format!("{base}:scores"),
            labels_key: format!("{base}:labels"),
            joined_key: format!("{base}:joined"),
            eval_key: format!("{base}:eval"),
            compare_key: format!("{base}:compare"),
            fence_key: format!("{base}:fence"),
            lease_key: format!("{base}:lease"),
            held: None,
        })
    }

    pub fn state_key(&self) -> &str {
        &self.state_key
    }

    /// Reads the whole checkpoint in one transaction.
    pub async fn load(&self) -> Result<Restored> {
        let mut conn = self.conn.clone();
        type Raw =
            (Option<String>, Vec<(String, String)>, Vec<(String, String)>, Vec<(String, i64)>, Vec<String>, Vec<String>);
        let (state, scores, labels, joined, eval, compare): Raw = redis::pipe()
                .atomic()
                .get(&self.state_key)
                .hgetall(&self.scores_key)
                .hgetall(&self.labels_key)
                .hgetall(&self.joined_key)
                .lrange(&self.eval_key, 0, -1)
                .lrange(&self.compare_key, 0, -1)
                .query_async(&mut conn)
                .await
                .map_err(|e| Error::redis("reading the learner checkpoint", e))?;
        let bad = |key: &str, e: serde_json::Error| Error::Checkpoint { key: key.to_string(), message: e.to_string() };
        let state = match state {
            Some(text) => {
                let s: LearnerState = serde_json::from_str(&text).map_err(|e| bad(&self.state_key, e))?;
                if s.format != FORMAT {
                    return Err(Error::Checkpoint {
                        key: self.state_key.clone(),
                        message: format!("format {} is not this learner's {FORMAT}", s.format),
                    });
                }
                Some(s)
            }
            None => None,
        };
        let scores = scores
            .into_iter()
            .map(|(id, v)| Ok((id, serde_json::from_str(&v).map_err(|e| bad(&self.scores_key, e))?)))
            .collect::<Result<_>>()?;
        let labels = labels
            .into_iter()
            .map(|(id, v)| Ok((id, serde_json::from_str(&v).map_err(|e| bad(&self.labels_key, e))?)))
            .collect::<Result<_>>()?;
        let eval = eval
            .iter()
            .map(|v| serde_json::from_str(v).map_err(|e| bad(&self.eval_key, e)))
            .collect::<Result<_>>()?;
        let compare = compare
            .iter()
            .map(|v| serde_json::from_str(v).map_err(|e| bad(&self.compare_key, e)))
            .collect::<Result<_>>()?;
        Ok(Restored { state, scores, labels, joined, eval, compare })
    }

    /// Tries once to take the learner's lease for `holder` (a free-form id for logs).
    pub async fn acquire(&mut self, holder: &str, ttl_ms: u64) -> Result<Acquire> {
        let mut conn = self.conn.clone();
        let (ok, a, b): (i64, String, String) = redis::Script::new(ACQUIRE)
            .key(&self.fence_key)
            .key(&self.lease_key)
            .arg(holder)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::redis("acquiring the learner lease", e))?;
        if ok == 1 {
            let token: u64 = a.parse().map_err(|_| Error::Checkpoint { key: self.fence_key.clone(), message: format!("fencing token {a:?} is not a number") })?;
            self.held = Some(Held { token, value: format!("{token} {holder}"), ttl_ms });
            Ok(Acquire::Acquired(token))
        } else {
            Ok(Acquire::Held { by: a, ttl_ms: b.parse().unwrap_or(-1) })
        }
    }

    /// The fencing token this process holds, if any.
    pub fn token(&self) -> Option<u64> {
        self.held.as_ref().map(|h| h.token)
    }

    fn held(&self) -> Result<&Held> {
        self.held.as_ref().ok_or(Error::LeaseLost { token: 0, current: "not acquired".into() })
    }

    /// Extends the lease; [`Error::LeaseLost`] if another process has acquired since.
    pub async fn renew(&self) -> Result<()> {
        let h = self.held()?;
        let mut conn = self.conn.clone();
        let (ok, current): (i64, String) = redis::Script::new(RENEW)
            .key(&self.fence_key)
            .key(&self.lease_key)
            .arg(h.token)
            .arg(&h.value)
            .arg(h.ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::redis("renewing the learner lease", e))?;
        if ok == 1 { Ok(()) } else { Err(Error::LeaseLost { token: h.token, current }) }
    }

    /// Gives the lease up (a clean stop), so a successor need not wait for it to expire.
    pub async fn release(&mut self) -> Result<bool> {
        let Some(h) = self.held.take() else { return Ok(false) };
        let mut conn = self.conn.clone();
        let released: i64 = redis::Script::new(RELEASE)
            .key(&self.fence_key)
            .key(&self.lease_key)
            .arg(h.token)
            .arg(&h.value)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| Error::redis("releasing the learner lease", e))?;
        Ok(released == 1)
    }

    /// Writes one batch's commit atomically — either all of it (state with its offsets,
    /// join changes, evaluation entries) or, if the process dies first, none of it — and
    /// only while this process's token is the newest ([`Error::LeaseLost`] otherwise,
    /// with nothing written). Renews the lease on the way.
    pub async fn commit(&self, c: &Commit) -> Result<()> {
        let h = self.held()?;
        let commit_script = redis::Script::new(COMMIT);
        let mut script = commit_script.prepare_invoke();
        script
            .key(&self.fence_key)
            .key(&self.lease_key)
            .key(&self.state_key)
            .key(&self.scores_key)
            .key(&self.labels_key)
            .key(&self.joined_key)
            .key(&self.eval_key)
            .key(&self.compare_key)
            .arg(h.token)
            .arg(&h.value)
            .arg(h.ttl_ms)
            .arg(&c.state_json)
            .arg(c.eval_capacity);
        for changes in [&c.scores, &c.labels, &c.joined] {
            let puts: Vec<(&str, &str)> =
                changes.iter().filter_map(|(id, v)| v.as_deref().map(|v| (id.as_str(), v))).collect();
            let dels: Vec<&str> = changes.iter().filter(|(_, v)| v.is_none()).map(|(id, _)| id.as_str()).collect();
            script.arg(puts.len()).arg(dels.len());
            for (id, v) in puts {
                script.arg(id).arg(v);
            }
            for id in dels {
                script.arg(id);
            }
        }
        script.arg(c.eval.len());
        for e in &c.eval {
            script.arg(e);
        }
        script.arg(u8::from(c.compare_reset)).arg(c.compare_capacity.max(1)).arg(c.compare.len());
        for e in &c.compare {
            script.arg(e);
        }
        let mut conn = self.conn.clone();
        let (ok, current): (i64, String) =
            script.invoke_async(&mut conn).await.map_err(|e| Error::redis("writing the learner checkpoint", e))?;
        if ok == 1 { Ok(()) } else { Err(Error::LeaseLost { token: h.token, current }) }
    }

    /// Removes the checkpoint (a fresh start).
    pub async fn clear(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(&[
            &self.state_key,
            &self.scores_key,
            &self.labels_key,
            &self.joined_key,
            &self.eval_key,
            &self.compare_key,
        ])
            .await
            .map_err(|e| Error::redis("clearing the learner checkpoint", e))
    }
}
