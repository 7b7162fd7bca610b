//! The typed events. Field names and order follow the `.avsc` files in `schemas/avro/`;
//! decoding goes by field name, so a newer writer with extra fields still decodes.

use serde::{Deserialize, Serialize};

/// A payment event to score (`transaction.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub event_id: String,
    pub card_id: String,
    pub merchant_id: String,
    pub device_id: String,
    pub amount: f64,
    pub currency: String,
    pub country: String,
    pub channel: String,
    pub customer_segment: String,
    /// Event time, milliseconds since the Unix epoch.
    pub event_time: i64,
}

/// The truth about a scored event, arriving later (`label.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub event_id: String,
    pub card_id: String,
    pub is_fraud: bool,
    pub event_time: i64,
    pub label_time: i64,
}

/// One named feature value, as carried in a [`Score`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureValue {
    pub name: String,
    pub value: f64,
}

/// One reason code: a feature and how much it pushed the score (`score-v2.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub feature: String,
    /// The feature's value in the scored event.
    pub value: f64,
    /// Signed contribution to the score's log-odds.
    pub contribution: f64,
}

/// weir's verdict on one transaction (`score-v2.avsc`; version 1, `score.avsc`, still
/// decodes into it with no reasons and no attributes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub event_id: String,
    pub card_id: String,
    pub event_time: i64,
    pub model_name: String,
    pub model_version: String,
    pub score: f64,
    pub decision: String,
    pub features: Vec<FeatureValue>,
    /// Top contributing features, largest absolute contribution first.
    #[serde(default)]
    pub reasons: Vec<Reason>,
    pub scored_at: i64,
    /// Categorical attributes of the event (customer segment, channel, ...) that the
    /// monitor groups drift and fairness by.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// A message weir could not process (`dead-letter.avsc`). On the dead-letter topic the
/// value is the original bytes and these fields travel as headers; see [`dead_letter_headers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub error_class: String,
    pub error_message: String,
    #[serde(with = "opt_bytes")]
    pub key: Option<Vec<u8>>,
    #[serde(with = "bytes")]
    pub payload: Vec<u8>,
    pub failed_at: i64,
}

/// Header names of a dead letter on the dead-letter topic.
pub mod dead_letter_headers {
    pub const SOURCE_TOPIC: &str = "weir.source.topic";
    pub const SOURCE_PARTITION: &str = "weir.source.partition";
    pub const SOURCE_OFFSET: &str = "weir.source.offset";
    pub const ERROR_CLASS: &str = "weir.error.class";
    pub const ERROR_MESSAGE: &str = "weir.error.message";
    pub const FAILED_AT: &str = "weir.failed_at";
}

/// A drift episode opening or clearing (`drift-alert.avsc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftAlert {
    pub alert_id: String,
    pub state: String,
    pub subject: String,
    pub statistic: String,
    pub value: f64,
    pub threshold: f64,
    pub window_start: i64,
    pub window_end: i64,
    pub severity: String,
    pub model_version: Option<String>,
    pub raised_at: i64,
}

/// Avro `bytes` through serde: serialize as bytes, not as a sequence of u8.
mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_byte_buf(V)
    }
}

mod opt_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    // Transparent: a newtype struct would reach the Avro deserializer as a newtype, which
    // it cannot feed from a `bytes` value ("expected tuple struct Wrapped").
    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(transparent)]
    struct Wrapped(#[serde(with = "super::bytes")] Vec<u8>);

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&Wrapped(b.clone())),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
    }
}
