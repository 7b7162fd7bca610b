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

/// A recommendation-style interaction (`interaction.avsc`), weir's second example
/// schema. weir's pipeline does not need this type (its feature definitions read the
/// fields by path); the generator behind `weir produce --kind interactions` and the tests
/// write and read interactions through it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub event_id: String,
    pub user: User,
    pub item: Item,
    pub action: Action,
    /// Time spent on the item's page, ms; `None` when the client did not measure it.
    pub dwell_ms: Option<i64>,
    /// `web`, `ios` or `android`.
    pub device: String,
    /// Event time, milliseconds since the Unix epoch.
    pub event_time: i64,
}

/// Who acted (`interaction.avsc`, record `User`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// `new`, `casual` or `loyal`.
    pub segment: String,
}

/// What was acted on (`interaction.avsc`, record `Item`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub category: String,
    /// Listed price in the major unit, >= 0.
    pub price: f64,
}

/// What the user did (`interaction.avsc`, enum `Action`): serialized as the Avro enum's
/// symbol (and as that string in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    View,
    Click,
    AddToCart,
}

impl Action {
    /// The Avro symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Click => "click",
            Action::AddToCart => "add_to_cart",
        }
    }
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

/// weir's verdict on one scored event (`score-v3.avsc`). Versions 1 and 2 (`score.avsc`,
/// `score-v2.avsc`: a `card_id` and a binary `score`) decode into it through
/// [`crate::score_versions::ScoreDecoder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub event_id: String,
    /// The entity key the event was scored for: the value of the configured score key,
    /// whatever the event's schema calls that field.
    pub key: String,
    pub event_time: i64,
    pub model_name: String,
    pub model_version: String,
    /// The model's answer.
    pub output: ModelOutput,
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

impl Score {
    /// The one number that stands for the answer: the positive class's probability of a
    /// binary model, a regression's value, the most likely class's probability of a
    /// multi-class model. Score drift and decisions are computed on it.
    pub fn value(&self) -> f64 {
        self.output.value()
    }

    /// The positive class's probability, for a binary model only: what label-based
    /// evaluation (AUC, log loss) needs.
    pub fn probability(&self) -> Option<f64> {
        match self.output {
            ModelOutput::Binary(BinaryOutput { probability }) => Some(probability),
            _ => None,
        }
    }
}

/// A model's answer for one event: the Avro union of `score-v3.avsc`'s `output`. Each
/// variant is named after its union member, which is how the Avro (de)serializer picks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelOutput {
    #[serde(rename = "io.weir.events.BinaryOutput", alias = "BinaryOutput")]
    Binary(BinaryOutput),
    #[serde(rename = "io.weir.events.MultiClassOutput", alias = "MultiClassOutput")]
    MultiClass(MultiClassOutput),
    #[serde(rename = "io.weir.events.RegressionOutput", alias = "RegressionOutput")]
    Regression(RegressionOutput),
}

impl ModelOutput {
    /// A binary classifier's answer.
    pub fn binary(probability: f64) -> Self {
        ModelOutput::Binary(BinaryOutput { probability })
    }

    /// Whether the answer is one a model can give: probabilities finite and in [0, 1]
    /// (and at least one class), a regression value finite.
    pub fn is_valid(&self) -> bool {
        let probability = |p: f64| p.is_finite() && (0.0..=1.0).contains(&p);
        match self {
            ModelOutput::Binary(b) => probability(b.probability),
            ModelOutput::MultiClass(m) => !m.classes.is_empty() && m.classes.iter().all(|c| probability(c.probability)),
            ModelOutput::Regression(r) => r.value.is_finite(),
        }
    }

    /// See [`Score::value`].
    pub fn value(&self) -> f64 {
        match self {
            ModelOutput::Binary(b) => b.probability,
            ModelOutput::Regression(r) => r.value,
            ModelOutput::MultiClass(m) => m.classes.iter().map(|c| c.probability).fold(f64::NAN, f64::max),
        }
    }
}

/// A binary classifier's answer (`score-v3.avsc`, `BinaryOutput`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinaryOutput {
    /// Probability of the positive class, in [0, 1].
    pub probability: f64,
}

/// A multi-class classifier's answer (`score-v3.avsc`, `MultiClassOutput`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiClassOutput {
    /// Every class with its probability, in the model's class order.
    pub classes: Vec<ClassProbability>,
}

/// One class of a [`MultiClassOutput`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassProbability {
    pub label: String,
    pub probability: f64,
}

/// A regression model's answer (`score-v3.avsc`, `RegressionOutput`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegressionOutput {
    pub value: f64,
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
    /// Present, `true`, when the value is a truncated copy of the original payload (the
    /// whole one did not fit the producer's `message.max.bytes`). The original is still
    /// on the source topic at the source partition and offset.
    pub const PAYLOAD_TRUNCATED: &str = "weir.payload.truncated";
    /// With [`PAYLOAD_TRUNCATED`]: the original payload's length in bytes.
    pub const PAYLOAD_ORIGINAL_BYTES: &str = "weir.payload.original_bytes";
    /// Present, `true`, when the key is a truncated copy of the original key.
    pub const KEY_TRUNCATED: &str = "weir.key.truncated";
    /// With [`KEY_TRUNCATED`]: the original key's length in bytes.
    pub const KEY_ORIGINAL_BYTES: &str = "weir.key.original_bytes";
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

#[cfg(test)]
mod interaction_tests {
    use std::sync::Arc;

    use apache_avro::types::Value;

    use super::*;
    use crate::wire::{subjects, Decoder, Encoder, LocalSchemaRegistry, SchemaRegistry, HEADER_LEN};

    fn interaction(action: Action, dwell_ms: Option<i64>) -> Interaction {
        Interaction {
            event_id: "ix-2a-00000001".into(),
            user: User { id: "u-00042".into(), country: "FR".into(), segment: "loyal".into() },
            item: Item { id: "i-0007".into(), category: "books".into(), price: 12.5 },
            action,
            dwell_ms,
            device: "ios".into(),
            event_time: 1_767_225_600_123,
        }
    }

    /// The typed struct writes what `interaction.avsc` says (checked by apache-avro, an
    /// independent reader) and reads back through weir's decoder.
    #[test]
    fn interaction_round_trips_through_interaction_avsc() {
        let reg: Arc<dyn SchemaRegistry> = Arc::new(LocalSchemaRegistry::embedded().unwrap());
        let encoder = Encoder::new(reg.as_ref(), subjects::INTERACTION).unwrap();
        assert_eq!(encoder.schema_id(), 8);
        let schema = reg.by_id(8).unwrap();
        let decoder = Decoder::<Interaction>::new(reg.clone(), subjects::INTERACTION, &schema);
        for (action, symbol, index) in [(Action::View, "view", 0), (Action::Click, "click", 1), (Action::AddToCart, "add_to_cart", 2)] {
            for dwell in [None, Some(0), Some(18_250)] {
                let ix = interaction(action, dwell);
                let bytes = encoder.encode(&ix).unwrap();
                assert_eq!(&bytes[..HEADER_LEN], &[0, 0, 0, 0, 8]);
                assert_eq!(decoder.decode(&bytes).unwrap(), ix);

                let value = apache_avro::from_avro_datum(&schema.canonical, &mut &bytes[HEADER_LEN..], None).unwrap();
                let Value::Record(fields) = value else { panic!("not a record: {value:?}") };
                let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
                assert_eq!(field("action"), Value::Enum(index, symbol.into()));
                assert_eq!(action.as_str(), symbol);
                let expected_dwell = match dwell {
                    None => Value::Union(0, Box::new(Value::Null)),
                    Some(d) => Value::Union(1, Box::new(Value::Long(d))),
                };
                assert_eq!(field("dwell_ms"), expected_dwell);
                assert_eq!(field("event_time"), Value::TimestampMillis(1_767_225_600_123));
                let Value::Record(user) = field("user") else { panic!("user is not a record") };
                assert_eq!(user[0], ("id".to_string(), Value::String("u-00042".into())));
                let Value::Record(item) = field("item") else { panic!("item is not a record") };
                assert_eq!(item[2], ("price".to_string(), Value::Double(12.5)));
            }
        }
    }

    #[test]
    fn action_is_its_symbol_in_json() {
        let v = serde_json::to_value(interaction(Action::AddToCart, None)).unwrap();
        assert_eq!(v["action"], "add_to_cart");
        assert_eq!(v["dwell_ms"], serde_json::Value::Null);
        assert_eq!(v["user"]["id"], "u-00042");
        let back: Interaction = serde_json::from_value(v).unwrap();
        assert_eq!(back.action, Action::AddToCart);
    }
}

#[cfg(test)]
impl Transaction {
    /// One fixed transaction for the crate's unit tests.
    pub(crate) fn sample() -> Transaction {
        Transaction {
            event_id: "tx-1".into(),
            card_id: "card-00042".into(),
            merchant_id: "m-0007".into(),
            device_id: "dev-00042-1".into(),
            amount: 123.45,
            currency: "EUR".into(),
            country: "FR".into(),
            channel: "ecom".into(),
            customer_segment: "premium".into(),
            event_time: 1_767_225_600_123,
        }
    }
}
