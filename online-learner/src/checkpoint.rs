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
}

#[derive(Clone)]
pub struct RedisCheckpoint {
    conn: ConnectionManager,
    state_key: String,
    scores_key: String,
    labels_key: String,
    joined_key: String,
    eval_key: String,
}

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
        })
    }

    pub fn state_key(&self) -> &str {
        &self.state_key
    }

    /// Reads the whole checkpoint in one transaction.
    pub async fn load(&self) -> Result<Restored> {
        let mut conn = self.conn.clone();
        type Raw = (Option<String>, Vec<(String, String)>, Vec<(String, String)>, Vec<(String, i64)>, Vec<String>);
        let (state, scores, labels, joined, eval): Raw = redis::pipe()
                .atomic()
                .get(&self.state_key)
                .hgetall(&self.scores_key)
                .hgetall(&self.labels_key)
                .hgetall(&self.joined_key)
                .lrange(&self.eval_key, 0, -1)
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
        Ok(Restored { state, scores, labels, joined, eval })
    }

    /// Writes one batch's commit atomically: either all of it (state with its offsets,
    /// join changes, evaluation entries) or, if the process dies first, none of it.
    pub async fn commit(&self, c: &Commit) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic().set(&self.state_key, &c.state_json).ignore();
        for (key, changes) in [(&self.scores_key, &c.scores), (&self.labels_key, &c.labels), (&self.joined_key, &c.joined)] {
            let puts: Vec<(&str, &str)> =
                changes.iter().filter_map(|(id, v)| v.as_deref().map(|v| (id.as_str(), v))).collect();
            let dels: Vec<&str> = changes.iter().filter(|(_, v)| v.is_none()).map(|(id, _)| id.as_str()).collect();
            if !puts.is_empty() {
                pipe.hset_multiple(key, &puts).ignore();
            }
            if !dels.is_empty() {
                pipe.hdel(key, dels).ignore();
            }
        }
        if !c.eval.is_empty() {
            pipe.rpush(&self.eval_key, &c.eval).ignore();
            pipe.ltrim(&self.eval_key, -(c.eval_capacity as isize), -1).ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(|e| Error::redis("writing the learner checkpoint", e))
    }

    /// Removes the checkpoint (a fresh start).
    pub async fn clear(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        conn.del::<_, ()>(&[&self.state_key, &self.scores_key, &self.labels_key, &self.joined_key, &self.eval_key])
            .await
            .map_err(|e| Error::redis("clearing the learner checkpoint", e))
    }
}
