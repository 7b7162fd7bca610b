//! The serving copy: Redis as the readable copy of state kept in process.
//!
//! With local state ([`crate::local_state`]), the entity states of the partitions a
//! process owns live in that process and their changes go to a changelog topic; Redis
//! only serves reads (`weir serve`, `redis-cli`, anything reading the documented keys).
//! This file writes that copy: the same keys and fields as the compare-and-set path
//! writes (the state hash's `s` blob, the readable hash, both with the store's TTL), so a
//! reader cannot tell which path wrote an entity.
//!
//! Writes come behind the critical path, from a background writer, possibly late and out
//! of order (a retry after an outage, the old owner of a partition still flushing after a
//! rebalance). So each is *versioned*: the version is the highest input offset the state
//! has applied on its partition (an entity's events all come from one input partition, so
//! its offsets only grow), kept in the state hash as `o`, and a write lands only if its
//! version is above the one held. Writing the same version twice is a no-op, so the writer
//! can resend anything.
//!
//! A Redis that lost data (a `FLUSHALL`, a restart without persistence, a failover to a
//! replica that was behind) is noticed through the *marker* key, set once a full copy is
//! written: every round of writes reads it, and a missing marker tells the writer to
//! rewrite every entity from the process's state. On a cluster the marker lives on one
//! node: a node that loses data alone is not noticed that way (its entities come back as
//! their events arrive).

use redis::{Cmd, Value};
use weir_schemas::StoreError;

use crate::changelog::EntityChange;

use super::{push_values, RedisStore};

/// The versioned write of several entities (one hash slot): KEYS per entity its state hash
/// and readable hash. ARGV: the TTL in ms, then per entity its version, its blob, the
/// number `n` of readable values, and `n` field/value pairs. Returns per entity 1 when
/// written, 0 when Redis held that version or a newer one.
pub(super) const SERVING_SCRIPT: &str = r#"
local ttl = ARGV[1]
local out = {}
local a = 2
for i = 1, #KEYS, 2 do
  local n = tonumber(ARGV[a + 2])
  local held = tonumber(redis.call('HGET', KEYS[i], 'o'))
  if held and held >= tonumber(ARGV[a]) then
    out[#out + 1] = 0
  else
    redis.call('HSET', KEYS[i], 'o', ARGV[a], 'v', 'o:' .. ARGV[a], 's', ARGV[a + 1])
    redis.call('PEXPIRE', KEYS[i], ttl)
    if n > 0 then
      redis.call('HSET', KEYS[i + 1], unpack(ARGV, a + 3, a + 2 + 2 * n))
      redis.call('PEXPIRE', KEYS[i + 1], ttl)
    end
    out[#out + 1] = 1
  end
  a = a + 3 + 2 * n
end
return out
"#;

/// Entities per script call (as for the compare-and-set: spread the fixed cost, hold
/// Redis well under a millisecond).
const ENTITIES_PER_CALL: usize = 32;

/// What a round of serving writes did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ServingWrite {
    /// Entities written.
    pub written: usize,
    /// Entities not written: Redis held their version or a newer one.
    pub stale: usize,
    /// The marker was missing before this round: Redis lost data since it was set.
    pub marker_missing: bool,
}

impl RedisStore {
    /// Writes `updates` to the serving copy, each only if newer than what Redis holds, and
    /// reads the marker in the same round trip.
    pub async fn write_serving(&self, updates: &[EntityChange]) -> Result<ServingWrite, StoreError> {
        let marker = self.keys.serving_marker_key();
        let mut marker_cmd = redis::cmd("EXISTS");
        marker_cmd.arg(&marker);
        let mut cmds: Vec<(String, Cmd)> = vec![(marker, marker_cmd)];
        let mut answers_for = Vec::new();
        // Calls group entities of one hash slot (all one on a single Redis).
        let mut groups: Vec<Vec<usize>> = Vec::new();
        if self.is_cluster() {
            let mut by_slot: std::collections::HashMap<redis::cluster_routing::Slot, usize> = Default::default();
            for (u, update) in updates.iter().enumerate() {
                let slot = redis::cluster_routing::Slot::for_key(self.keys.state_key(&update.kind, &update.id));
                let g = *by_slot.entry(slot).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[g].push(u);
            }
        } else {
            groups.push((0..updates.len()).collect());
        }
        for group in groups {
            for chunk in group.chunks(ENTITIES_PER_CALL) {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(&self.serving_sha).arg(2 * chunk.len());
                for &u in chunk {
                    let update = &updates[u];
                    cmd.arg(self.keys.state_key(&update.kind, &update.id)).arg(self.keys.features_key(&update.kind, &update.id));
                }
                cmd.arg(self.ttl_ms);
                for &u in chunk {
                    let update = &updates[u];
                    let def = self.spec.def(&update.kind)?;
                    cmd.arg(update.version).arg(update.blob.as_slice());
                    push_values(&mut cmd, def, update.values.as_deref(), update.event_time_max);
                }
                let first = &updates[chunk[0]];
                cmds.push((self.keys.state_key(&first.kind, &first.id), cmd));
                answers_for.push(chunk.len());
            }
        }
        let mut replies = self.run(cmds).await?.into_iter();
        let exists: i64 = redis::from_redis_value(replies.next().unwrap_or(Value::Nil))
            .map_err(|e| StoreError::Protocol(format!("serving marker: {e}")))?;
        let mut outcome = ServingWrite { marker_missing: exists == 0, ..ServingWrite::default() };
        for (n, reply) in answers_for.into_iter().zip(replies) {
            let flags: Vec<i64> =
                redis::from_redis_value(reply).map_err(|e| StoreError::Protocol(format!("serving write: {e}")))?;
            if flags.len() != n {
                return Err(StoreError::Protocol(format!("serving write: {} answers for {n} entities", flags.len())));
            }
            outcome.written += flags.iter().filter(|&&f| f == 1).count();
            outcome.stale += flags.iter().filter(|&&f| f == 0).count();
        }
        Ok(outcome)
    }

    /// Sets the marker: Redis holds a full serving copy from now on.
    pub async fn set_serving_marker(&self) -> Result<(), StoreError> {
        let key = self.keys.serving_marker_key();
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg(weir_schemas::now_ms());
        self.run(vec![(key, cmd)]).await?;
        Ok(())
    }
}
