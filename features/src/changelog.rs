//! The changelog's records: how the state of the partitions a process owns is written to
//! a compacted Kafka topic, and read back.
//!
//! The changelog has one partition per input partition, and the state fed by input
//! partition `p` goes to changelog partition `p`, so restoring a partition's state reads
//! one changelog partition. Compaction keeps the newest record per key:
//!
//! | key | value |
//! |---|---|
//! | `s/<kind>/<id>` (`s/card/c42`) | the entity's state ([`EntityState::to_bytes`]; it names its feature set's fingerprint, so a state written under other definitions is refused, not misread) |
//! | `w` | the partition's watermark, 8 bytes big-endian (ms) |
//!
//! Entity kinds are names from the configuration, which never contain `/`; an id may, and
//! is everything after the second `/`.
//!
//! [`EntityState::to_bytes`]: crate::windows::EntityState::to_bytes

/// One entity's state after a batch changed it: what its changelog record and its serving
/// copy are made of.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityChange {
    pub kind: String,
    pub id: String,
    /// The input partition whose events feed it (and its changelog partition).
    pub partition: i32,
    /// The highest input offset its state has applied there: the serving copy's version.
    pub version: i64,
    /// The state, encoded ([`EntityState::to_bytes`]).
    pub blob: Vec<u8>,
    /// Its values as of its newest event (`None` before its first event).
    pub values: Option<Vec<f64>>,
    /// Its newest event time, ms.
    pub event_time_max: i64,
}

impl EntityChange {
    /// Its changelog key.
    pub fn key(&self) -> Vec<u8> {
        state_key(&self.kind, &self.id)
    }
}

/// A changelog key, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangelogKey<'a> {
    /// An entity's state.
    State { kind: &'a str, id: &'a str },
    /// The partition's watermark.
    Watermark,
}

const STATE_PREFIX: &[u8] = b"s/";
const WATERMARK: &[u8] = b"w";

/// The key of an entity's state.
pub fn state_key(kind: &str, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(STATE_PREFIX.len() + kind.len() + 1 + id.len());
    key.extend_from_slice(STATE_PREFIX);
    key.extend_from_slice(kind.as_bytes());
    key.push(b'/');
    key.extend_from_slice(id.as_bytes());
    key
}

/// The key of the partition's watermark.
pub fn watermark_key() -> Vec<u8> {
    WATERMARK.to_vec()
}

/// A watermark's value.
pub fn watermark_value(watermark_ms: i64) -> Vec<u8> {
    watermark_ms.to_be_bytes().to_vec()
}

/// Reads a key; an error names what is wrong with it.
pub fn parse_key(key: &[u8]) -> Result<ChangelogKey<'_>, String> {
    if key == WATERMARK {
        return Ok(ChangelogKey::Watermark);
    }
    let rest = key
        .strip_prefix(STATE_PREFIX)
        .ok_or_else(|| format!("changelog key {:?} is neither a state nor a watermark", String::from_utf8_lossy(&key[..key.len().min(64)])))?;
    let rest = std::str::from_utf8(rest).map_err(|_| "changelog key is not UTF-8".to_string())?;
    let (kind, id) = rest.split_once('/').ok_or_else(|| format!("changelog key {rest:?} has no entity id"))?;
    Ok(ChangelogKey::State { kind, id })
}

/// Reads a watermark's value.
pub fn parse_watermark(value: &[u8]) -> Result<i64, String> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| format!("changelog watermark of {} bytes, expected 8", value.len()))?;
    Ok(i64::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_ids_may_hold_slashes() {
        for (kind, id) in [("card", "c42"), ("merchant", "a/b/c"), ("user", ""), ("card", "ünï")] {
            assert_eq!(parse_key(&state_key(kind, id)).unwrap(), ChangelogKey::State { kind, id });
        }
        assert_eq!(parse_key(&watermark_key()).unwrap(), ChangelogKey::Watermark);
        assert_eq!(parse_watermark(&watermark_value(-5)).unwrap(), -5);
        assert_eq!(parse_watermark(&watermark_value(1_767_225_600_000)).unwrap(), 1_767_225_600_000);
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        assert!(parse_key(b"x/card/1").unwrap_err().contains("neither"));
        assert!(parse_key(b"s/card").unwrap_err().contains("no entity id"));
        assert!(parse_key(b"s/\xff/1").unwrap_err().contains("UTF-8"));
        assert!(parse_watermark(b"1234").unwrap_err().contains("4 bytes"));
    }
}
