//! `[state]`: where the entity state of the input's partitions lives.

use serde::{Deserialize, Serialize};

/// Where entity state lives (`[state]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `local`: the states of the partitions this process owns live in the process (the
    /// embedded engine), their changes go to a compacted changelog topic
    /// (`kafka.topics.changelog`) with the batch's scores, and Redis, when `[redis]` is
    /// set, holds a serving copy written behind the critical path. Entity kinds keyed like
    /// the input (`key` equal to `input.primary_key`, so that the input topic's partitions
    /// split them) are kept this way; the others stay on the Redis compare-and-set path
    /// (and need `[redis]`). `redis`: every state in Redis, read and written back with a
    /// compare-and-set each batch. Default `local`.
    #[serde(default)]
    pub mode: StateMode,
    /// How long restoring a partition waits for a transaction still open on its changelog
    /// partition (a process that died mid-batch, until the broker aborts it), ms. Default
    /// 30000.
    #[serde(default = "default_restore_wait_ms")]
    pub restore_wait_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateMode {
    #[default]
    Local,
    Redis,
}

fn default_restore_wait_ms() -> u64 {
    30_000
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig { mode: StateMode::default(), restore_wait_ms: default_restore_wait_ms() }
    }
}

impl StateConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !(1_000..=600_000).contains(&self.restore_wait_ms) {
            p.push(format!("state.restore_wait_ms must be in 1000..=600000, got {}", self.restore_wait_ms));
        }
        p
    }
}
