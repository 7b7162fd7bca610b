//! The Confluent wire format and the schema registry seam.
//!
//! Every value weir reads or writes on Kafka is framed the Confluent way:
//!
//! ```text
//! byte 0      magic, always 0
//! bytes 1..5  schema id, u32 big-endian
//! bytes 5..   Avro binary datum written with that schema
//! ```
//!
//! Schema ids resolve through a [`SchemaRegistry`]. [`LocalSchemaRegistry`] reads an
//! id → `.avsc` map (the default one, `schemas/avro/registry.json`, is compiled in); a
//! client for the Confluent REST API implements the same trait.
//!
//! Decoding is by the *writer's* schema (the one the id names) into the typed struct, field
//! by name, with `serde_avro_fast` on the hot path. At start-up every writer schema of a
//! subject is checked with `apache-avro`'s resolution rules against weir's reader schema,
//! so a writer weir cannot read is refused per event as [`ErrorClass::UnknownSchema`]
//! instead of half-decoding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{EventError, Result, SchemaError};

pub const MAGIC_BYTE: u8 = 0;
pub const HEADER_LEN: usize = 5;

/// Splits a framed message into its schema id and Avro body.
pub fn unframe(bytes: &[u8]) -> std::result::Result<(u32, &[u8]), EventError> {
    if bytes.len() < HEADER_LEN {
        return Err(EventError::malformed(format!(
            "message of {} bytes is shorter than the 5-byte confluent header",
            bytes.len()
        )));
    }
    if bytes[0] != MAGIC_BYTE {
        return Err(EventError::malformed(format!("magic byte is {:#04x}, expected 0x00", bytes[0])));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}

/// Appends the 5-byte Confluent header for `schema_id` to `out`.
pub fn write_header(out: &mut Vec<u8>, schema_id: u32) {
    out.push(MAGIC_BYTE);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Subjects weir itself reads and writes.
pub mod subjects {
    pub const TRANSACTION: &str = "transaction";
    pub const LABEL: &str = "label";
    pub const SCORE: &str = "score";
    pub const DEAD_LETTER: &str = "dead-letter";
    pub const DRIFT_ALERT: &str = "drift-alert";
    /// The second example schema (`interaction.avsc`): recommendation-style events.
    pub const INTERACTION: &str = "interaction";
}

/// One registered schema, parsed once for both Avro libraries.
#[derive(Debug)]
pub struct RegisteredSchema {
    pub id: u32,
    pub subject: String,
    /// The `.avsc` text as registered.
    pub text: String,
    /// For the hot path (`serde_avro_fast`).
    pub fast: serde_avro_fast::Schema,
    /// For resolution checks (`apache-avro`).
    pub canonical: apache_avro::Schema,
}

/// Where schema ids come from. The seam for a Confluent schema-registry client.
pub trait SchemaRegistry: Send + Sync {
    /// The writer schema with this id, or [`ErrorClass::UnknownSchema`].
    fn by_id(&self, id: u32) -> std::result::Result<Arc<RegisteredSchema>, EventError>;
    /// The schema weir writes for `subject` (the highest id registered for it).
    fn latest(&self, subject: &str) -> Result<Arc<RegisteredSchema>>;
    /// All schemas registered for `subject`.
    fn versions(&self, subject: &str) -> Vec<Arc<RegisteredSchema>>;
}

/// An id → `.avsc` map held in memory.
#[derive(Debug, Default)]
pub struct LocalSchemaRegistry {
    by_id: BTreeMap<u32, Arc<RegisteredSchema>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    #[allow(dead_code)]
    doc: Option<String>,
    schemas: Vec<MapEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MapEntry {
    id: u32,
    subject: String,
    file: String,
}

/// The schema files shipped with weir, compiled in so that the binary runs anywhere.
const EMBEDDED: &[(&str, &str)] = &[
    ("registry.json", include_str!("../avro/registry.json")),
    ("transaction.avsc", include_str!("../avro/transaction.avsc")),
    ("transaction-v2.avsc", include_str!("../avro/transaction-v2.avsc")),
    ("label.avsc", include_str!("../avro/label.avsc")),
    ("score.avsc", include_str!("../avro/score.avsc")),
    ("score-v2.avsc", include_str!("../avro/score-v2.avsc")),
    ("dead-letter.avsc", include_str!("../avro/dead-letter.avsc")),
    ("drift-alert.avsc", include_str!("../avro/drift-alert.avsc")),
    ("interaction.avsc", include_str!("../avro/interaction.avsc")),
];

impl LocalSchemaRegistry {
    /// weir's own schemas (`schemas/avro/registry.json`), compiled in.
    pub fn embedded() -> Result<Self> {
        let lookup = |name: &str| {
            EMBEDDED
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| SchemaError::Map { path: "embedded".into(), message: format!("no file {name}") })
        };
        Self::from_map_text("embedded registry.json", &lookup("registry.json")?, lookup)
    }

    /// Reads a map file like `schemas/avro/registry.json`; `.avsc` paths are relative to it.
    pub fn from_map_file(path: &Path) -> Result<Self> {
        let io = |p: &Path, source| SchemaError::Io { path: p.display().to_string(), source };
        let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
        Self::from_map_text(&path.display().to_string(), &text, |file| {
            let p = dir.join(file);
            std::fs::read_to_string(&p).map_err(|e| io(&p, e))
        })
    }

    fn from_map_text(
        map_name: &str,
        map_text: &str,
        mut read: impl FnMut(&str) -> Result<String>,
    ) -> Result<Self> {
        let map: MapFile = serde_json::from_str(map_text)
            .map_err(|e| SchemaError::Map { path: map_name.to_string(), message: e.to_string() })?;
        let mut registry = LocalSchemaRegistry::default();
        for entry in map.schemas {
            let text = read(&entry.file)?;
            registry.register(entry.id, &entry.subject, &entry.file, text)?;
        }
        Ok(registry)
    }

    /// Adds one schema. `origin` names it in errors (a file name).
    pub fn register(&mut self, id: u32, subject: &str, origin: &str, text: String) -> Result<()> {
        if self.by_id.contains_key(&id) {
            return Err(SchemaError::DuplicateId { id });
        }
        let parse_err = |message: String| SchemaError::Parse { id, file: origin.to_string(), message };
        let fast: serde_avro_fast::Schema = text.parse().map_err(|e| parse_err(format!("{e}")))?;
        let canonical = apache_avro::Schema::parse_str(&text).map_err(|e| parse_err(e.to_string()))?;
        let schema = RegisteredSchema { id, subject: subject.to_string(), text, fast, canonical };
        self.by_id.insert(id, Arc::new(schema));
        Ok(())
    }
}

impl SchemaRegistry for LocalSchemaRegistry {
    fn by_id(&self, id: u32) -> std::result::Result<Arc<RegisteredSchema>, EventError> {
        self.by_id
            .get(&id)
            .cloned()
            .ok_or_else(|| EventError::unknown_schema(format!("schema id {id} is not registered")))
    }

    fn latest(&self, subject: &str) -> Result<Arc<RegisteredSchema>> {
        self.by_id
            .values()
            .filter(|s| s.subject == subject)
            .max_by_key(|s| s.id)
            .cloned()
            .ok_or_else(|| SchemaError::MissingSubject { subject: subject.to_string() })
    }

    fn versions(&self, subject: &str) -> Vec<Arc<RegisteredSchema>> {
        self.by_id.values().filter(|s| s.subject == subject).cloned().collect()
    }
}

/// Decodes framed values of one subject into `T`.
///
/// Built once per subject: it resolves, with `apache-avro`, which registered writer schemas
/// the reader schema can read, and refuses the others per event with a message saying why.
pub struct Decoder<T> {
    subject: String,
    registry: Arc<dyn SchemaRegistry>,
    /// Writer ids checked at construction: `Ok` readable, `Err` the reason it is not.
    checked: BTreeMap<u32, std::result::Result<Arc<RegisteredSchema>, String>>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Decoder<T> {
    /// `reader` is the schema the typed struct `T` follows (normally `registry.latest(subject)`
    /// or the first version weir shipped).
    pub fn new(registry: Arc<dyn SchemaRegistry>, subject: &str, reader: &RegisteredSchema) -> Self {
        let mut checked = BTreeMap::new();
        for writer in registry.versions(subject) {
            let verdict = match apache_avro::schema_compatibility::SchemaCompatibility::can_read(
                &writer.canonical,
                &reader.canonical,
            ) {
                Ok(()) => Ok(writer.clone()),
                Err(e) => Err(format!(
                    "schema id {} of subject {subject} cannot be read as schema id {}: {e}",
                    writer.id, reader.id
                )),
            };
            checked.insert(writer.id, verdict);
        }
        Decoder { subject: subject.to_string(), registry, checked, _t: std::marker::PhantomData }
    }

    /// Decodes one framed value. Never panics, whatever the bytes.
    pub fn decode(&self, bytes: &[u8]) -> std::result::Result<T, EventError> {
        let (id, body) = unframe(bytes)?;
        let writer = match self.checked.get(&id) {
            Some(Ok(writer)) => writer.clone(),
            Some(Err(reason)) => return Err(EventError::unknown_schema(reason.clone())),
            None => {
                // Registered later, or for another subject.
                let writer = self.registry.by_id(id)?;
                return Err(EventError::unknown_schema(format!(
                    "schema id {id} belongs to subject {}, expected {}",
                    writer.subject, self.subject
                )));
            }
        };
        serde_avro_fast::from_datum_slice::<T>(body, &writer.fast).map_err(|e| {
            EventError::malformed(format!("avro body does not decode with schema id {id}: {e}"))
        })
    }
}

/// Encodes values of one subject with weir's current schema for it.
pub struct Encoder {
    schema: Arc<RegisteredSchema>,
}

impl Encoder {
    pub fn new(registry: &dyn SchemaRegistry, subject: &str) -> Result<Self> {
        Ok(Encoder { schema: registry.latest(subject)? })
    }

    pub fn for_schema(schema: Arc<RegisteredSchema>) -> Self {
        Encoder { schema }
    }

    pub fn schema_id(&self) -> u32 {
        self.schema.id
    }

    /// Header + Avro body, appended to `out`.
    pub fn encode_into<T: Serialize>(&self, value: &T, out: &mut Vec<u8>) -> Result<()> {
        write_header(out, self.schema.id);
        let mut config = serde_avro_fast::ser::SerializerConfig::new(&self.schema.fast);
        let buf = std::mem::take(out);
        *out = serde_avro_fast::to_datum(value, buf, &mut config).map_err(|e| SchemaError::Encode {
            what: std::any::type_name::<T>(),
            id: self.schema.id,
            message: e.to_string(),
        })?;
        Ok(())
    }

    pub fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(128);
        self.encode_into(value, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;
    use crate::events::{DeadLetter, DriftAlert, FeatureValue, Label, Reason, Score, Transaction};
    use apache_avro::types::Value;
    use proptest::prelude::*;

    fn registry() -> Arc<dyn SchemaRegistry> {
        Arc::new(LocalSchemaRegistry::embedded().expect("embedded registry parses"))
    }

    fn tx() -> Transaction {
        Transaction::sample()
    }

    fn score() -> Score {
        Score {
            event_id: "tx-9".into(),
            card_id: "card-9".into(),
            event_time: 1_767_225_600_000,
            model_name: "fraud-baseline".into(),
            model_version: "v1".into(),
            score: 0.8125,
            decision: "decline".into(),
            features: vec![
                FeatureValue { name: "amount_log".into(), value: 4.5 },
                FeatureValue { name: "hour_of_day".into(), value: 23.0 },
                FeatureValue { name: "card_count_1m".into(), value: -0.0 },
            ],
            reasons: vec![Reason { feature: "amount_log".into(), value: 4.5, contribution: 1.25 }],
            scored_at: 1_767_225_600_456,
            attributes: [("customer_segment".to_string(), "premium".to_string())].into_iter().collect(),
        }
    }

    fn decoder<T: DeserializeOwned>(reg: &Arc<dyn SchemaRegistry>, subject: &str, reader_id: u32) -> Decoder<T> {
        Decoder::new(reg.clone(), subject, &reg.by_id(reader_id).unwrap())
    }

    /// Encodes with weir's current schema for `subject`, checks the Confluent header and
    /// decodes it back with `reader_id` as the reader.
    fn round_trip<T>(subject: &str, reader_id: u32, value: &T) -> T
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let reg = registry();
        let encoder = Encoder::new(reg.as_ref(), subject).unwrap();
        let expected_id = reg.latest(subject).unwrap().id;
        assert_eq!(encoder.schema_id(), expected_id);
        let bytes = encoder.encode(value).unwrap();
        let mut header = vec![0u8];
        header.extend_from_slice(&expected_id.to_be_bytes());
        assert_eq!(&bytes[..HEADER_LEN], &header[..], "confluent header of {subject}");
        let back = decoder::<T>(&reg, subject, reader_id).decode(&bytes).unwrap();
        assert_eq!(&back, value);
        back
    }

    #[test]
    fn embedded_registry_has_every_subject() {
        let reg = registry();
        for (id, subject) in [
            (1, subjects::TRANSACTION),
            (2, subjects::LABEL),
            (3, subjects::SCORE),
            (4, subjects::DEAD_LETTER),
            (5, subjects::DRIFT_ALERT),
            (6, subjects::TRANSACTION),
            (7, subjects::SCORE),
            (8, subjects::INTERACTION),
        ] {
            assert_eq!(reg.by_id(id).unwrap().subject, subject, "id {id}");
        }
        assert_eq!(reg.latest(subjects::TRANSACTION).unwrap().id, 6);
        let ids: Vec<u32> = reg.versions(subjects::TRANSACTION).iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![1, 6]);
        assert!(matches!(reg.latest("nope"), Err(SchemaError::MissingSubject { .. })));
        assert!(reg.versions("nope").is_empty());
    }

    #[test]
    fn header_round_trip() {
        let mut out = vec![0xaa];
        write_header(&mut out, 0x0102_0304);
        assert_eq!(out, vec![0xaa, 0, 1, 2, 3, 4]);
        out.push(9);
        assert_eq!(unframe(&out[1..]).unwrap(), (0x0102_0304, &[9u8][..]));
        assert_eq!(unframe(&[0, 0, 0, 0, 1]).unwrap(), (1, &[][..]));
    }

    #[test]
    fn transaction_round_trip_v1_and_v2_readers() {
        round_trip(subjects::TRANSACTION, 1, &tx());
        round_trip(subjects::TRANSACTION, 6, &tx());
    }

    #[test]
    fn transaction_encoded_with_v1_schema_round_trips() {
        let reg = registry();
        let encoder = Encoder::for_schema(reg.by_id(1).unwrap());
        let bytes = encoder.encode(&tx()).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
        assert_eq!(decoder::<Transaction>(&reg, subjects::TRANSACTION, 1).decode(&bytes).unwrap(), tx());
    }

    #[test]
    fn label_round_trip() {
        for is_fraud in [true, false] {
            round_trip(
                subjects::LABEL,
                2,
                &Label {
                    event_id: "tx-1".into(),
                    card_id: "card-1".into(),
                    is_fraud,
                    event_time: 1_767_225_600_000,
                    label_time: 1_767_225_660_000,
                },
            );
        }
    }

    #[test]
    fn score_round_trip_with_and_without_features() {
        round_trip(subjects::SCORE, 7, &score());
        round_trip(
            subjects::SCORE,
            7,
            &Score { features: vec![], reasons: vec![], attributes: Default::default(), ..score() },
        );
    }

    /// Scores written by weir before reason codes existed (schema id 3) still decode.
    #[test]
    fn score_v1_decodes_with_the_v2_reader() {
        #[derive(Serialize)]
        struct ScoreV1 {
            event_id: String,
            card_id: String,
            event_time: i64,
            model_name: String,
            model_version: String,
            score: f64,
            decision: String,
            features: Vec<FeatureValue>,
            scored_at: i64,
        }
        let s = score();
        let v1 = ScoreV1 {
            event_id: s.event_id.clone(),
            card_id: s.card_id.clone(),
            event_time: s.event_time,
            model_name: s.model_name.clone(),
            model_version: s.model_version.clone(),
            score: s.score,
            decision: s.decision.clone(),
            features: s.features.clone(),
            scored_at: s.scored_at,
        };
        let reg = registry();
        let bytes = Encoder::for_schema(reg.by_id(3).unwrap()).encode(&v1).unwrap();
        let back = decoder::<Score>(&reg, subjects::SCORE, 7).decode(&bytes).unwrap();
        assert_eq!(back, Score { reasons: vec![], attributes: Default::default(), ..s });
    }

    #[test]
    fn dead_letter_round_trip_with_and_without_key() {
        let dl = DeadLetter {
            source_topic: "transactions".into(),
            source_partition: 3,
            source_offset: 1_234_567_890_123,
            error_class: "Malformed".into(),
            error_message: "magic byte is 0x07, expected 0x00".into(),
            key: Some(b"card-00001".to_vec()),
            payload: vec![7, 0, 0, 0, 1, 0xff, 0x00, 0x80],
            failed_at: 1_767_225_600_000,
        };
        round_trip(subjects::DEAD_LETTER, 4, &dl);
        round_trip(subjects::DEAD_LETTER, 4, &DeadLetter { key: None, payload: vec![], ..dl.clone() });
        round_trip(subjects::DEAD_LETTER, 4, &DeadLetter { key: Some(vec![]), ..dl });
    }

    #[test]
    fn drift_alert_round_trip_with_and_without_model_version() {
        let alert = DriftAlert {
            alert_id: "a-1".into(),
            state: "firing".into(),
            subject: "amount_log".into(),
            statistic: "psi".into(),
            value: 0.31,
            threshold: 0.2,
            window_start: 1_767_225_600_000,
            window_end: 1_767_229_200_000,
            severity: "warning".into(),
            model_version: Some("fraud-baseline/v1".into()),
            raised_at: 1_767_229_200_500,
        };
        round_trip(subjects::DRIFT_ALERT, 5, &alert);
        round_trip(subjects::DRIFT_ALERT, 5, &DriftAlert { model_version: None, ..alert });
    }

    fn record_fields(value: Value) -> BTreeMap<String, Value> {
        match value {
            Value::Record(fields) => fields.into_iter().collect(),
            other => panic!("expected a record, got {other:?}"),
        }
    }

    fn apache_decode(reg: &Arc<dyn SchemaRegistry>, bytes: &[u8]) -> BTreeMap<String, Value> {
        let (id, body) = unframe(bytes).unwrap();
        let schema = &reg.by_id(id).unwrap().canonical;
        let mut reader = body;
        let value = apache_avro::from_avro_datum(schema, &mut reader, None).expect("apache-avro decodes");
        assert!(reader.is_empty(), "apache-avro left {} bytes unread", reader.len());
        record_fields(value)
    }

    fn long(v: &Value) -> i64 {
        match v {
            Value::Long(x) | Value::TimestampMillis(x) => *x,
            other => panic!("expected a long, got {other:?}"),
        }
    }

    fn string(v: &Value) -> &str {
        match v {
            Value::String(s) => s,
            other => panic!("expected a string, got {other:?}"),
        }
    }

    fn double(v: &Value) -> f64 {
        match v {
            Value::Double(x) => *x,
            other => panic!("expected a double, got {other:?}"),
        }
    }

    /// weir's encoder (serde_avro_fast) against an independent Avro implementation.
    #[test]
    fn apache_avro_reads_weir_transactions() {
        let reg = registry();
        let t = tx();
        for encoder in [
            Encoder::new(reg.as_ref(), subjects::TRANSACTION).unwrap(),
            Encoder::for_schema(reg.by_id(1).unwrap()),
        ] {
            let f = apache_decode(&reg, &encoder.encode(&t).unwrap());
            assert_eq!(string(&f["event_id"]), t.event_id);
            assert_eq!(string(&f["card_id"]), t.card_id);
            assert_eq!(string(&f["merchant_id"]), t.merchant_id);
            assert_eq!(string(&f["device_id"]), t.device_id);
            assert_eq!(double(&f["amount"]), t.amount);
            assert_eq!(string(&f["currency"]), t.currency);
            assert_eq!(string(&f["country"]), t.country);
            assert_eq!(string(&f["channel"]), t.channel);
            assert_eq!(string(&f["customer_segment"]), t.customer_segment);
            assert_eq!(long(&f["event_time"]), t.event_time);
            if encoder.schema_id() == 6 {
                // The v2 fields a v1 struct does not have are written as null.
                assert_eq!(f.len(), 12);
                for name in ["ip_country", "mcc"] {
                    assert!(matches!(&f[name], Value::Union(0, inner) if **inner == Value::Null), "{name}: {:?}", f[name]);
                }
            } else {
                assert_eq!(f.len(), 10);
            }
        }
    }

    #[test]
    fn apache_avro_reads_weir_scores() {
        let reg = registry();
        let s = score();
        let bytes = Encoder::new(reg.as_ref(), subjects::SCORE).unwrap().encode(&s).unwrap();
        let f = apache_decode(&reg, &bytes);
        assert_eq!(string(&f["event_id"]), s.event_id);
        assert_eq!(string(&f["card_id"]), s.card_id);
        assert_eq!(long(&f["event_time"]), s.event_time);
        assert_eq!(string(&f["model_name"]), s.model_name);
        assert_eq!(string(&f["model_version"]), s.model_version);
        assert_eq!(double(&f["score"]), s.score);
        assert_eq!(string(&f["decision"]), s.decision);
        assert_eq!(long(&f["scored_at"]), s.scored_at);
        let Value::Array(items) = &f["features"] else { panic!("features: {:?}", f["features"]) };
        assert_eq!(items.len(), s.features.len());
        for (item, expected) in items.iter().zip(&s.features) {
            let item = record_fields(item.clone());
            assert_eq!(string(&item["name"]), expected.name);
            assert_eq!(double(&item["value"]).to_bits(), expected.value.to_bits());
        }
    }

    #[test]
    fn apache_avro_reads_weir_dead_letters() {
        let reg = registry();
        let dl = DeadLetter {
            source_topic: "t".into(),
            source_partition: -1,
            source_offset: 5,
            error_class: "Invalid".into(),
            error_message: "m".into(),
            key: Some(vec![1, 2, 3]),
            payload: vec![0, 255],
            failed_at: 9,
        };
        let bytes = Encoder::new(reg.as_ref(), subjects::DEAD_LETTER).unwrap().encode(&dl).unwrap();
        let f = apache_decode(&reg, &bytes);
        assert_eq!(f["source_partition"], Value::Int(-1));
        assert_eq!(f["key"], Value::Union(1, Box::new(Value::Bytes(vec![1, 2, 3]))));
        assert_eq!(f["payload"], Value::Bytes(vec![0, 255]));
        let none = Encoder::new(reg.as_ref(), subjects::DEAD_LETTER)
            .unwrap()
            .encode(&DeadLetter { key: None, ..dl })
            .unwrap();
        assert_eq!(apache_decode(&reg, &none)["key"], Value::Union(0, Box::new(Value::Null)));
    }

    /// Transaction v2, as a newer producer would have it.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct TransactionV2 {
        event_id: String,
        card_id: String,
        merchant_id: String,
        device_id: String,
        amount: f64,
        currency: String,
        country: String,
        channel: String,
        customer_segment: String,
        event_time: i64,
        ip_country: Option<String>,
        mcc: Option<i32>,
    }

    fn v2_of(t: &Transaction, ip_country: Option<&str>, mcc: Option<i32>) -> TransactionV2 {
        TransactionV2 {
            event_id: t.event_id.clone(),
            card_id: t.card_id.clone(),
            merchant_id: t.merchant_id.clone(),
            device_id: t.device_id.clone(),
            amount: t.amount,
            currency: t.currency.clone(),
            country: t.country.clone(),
            channel: t.channel.clone(),
            customer_segment: t.customer_segment.clone(),
            event_time: t.event_time,
            ip_country: ip_country.map(str::to_string),
            mcc,
        }
    }

    #[test]
    fn v2_writer_decodes_into_v1_transaction() {
        let reg = registry();
        let encoder = Encoder::for_schema(reg.by_id(6).unwrap());
        let v1 = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1);
        let v2 = decoder::<TransactionV2>(&reg, subjects::TRANSACTION, 6);
        for (ip, mcc) in [(Some("BR"), Some(5411)), (None, Some(-1)), (Some(""), None), (None, None)] {
            let value = v2_of(&tx(), ip, mcc);
            let bytes = encoder.encode(&value).unwrap();
            assert_eq!(&bytes[..5], &[0, 0, 0, 0, 6]);
            assert_eq!(v1.decode(&bytes).unwrap(), tx(), "ip {ip:?} mcc {mcc:?}");
            assert_eq!(v2.decode(&bytes).unwrap(), value);
            // And apache-avro sees the optional fields.
            let f = apache_decode(&reg, &bytes);
            match ip {
                Some(ip) => assert_eq!(f["ip_country"], Value::Union(1, Box::new(Value::String(ip.into())))),
                None => assert_eq!(f["ip_country"], Value::Union(0, Box::new(Value::Null))),
            }
            match mcc {
                Some(m) => assert_eq!(f["mcc"], Value::Union(1, Box::new(Value::Int(m)))),
                None => assert_eq!(f["mcc"], Value::Union(0, Box::new(Value::Null))),
            }
        }
    }

    const TRANSACTION_AMOUNT_AS_STRING: &str = r#"{
      "type": "record", "name": "Transaction", "namespace": "io.weir.events",
      "fields": [
        {"name": "event_id", "type": "string"},
        {"name": "card_id", "type": "string"},
        {"name": "merchant_id", "type": "string"},
        {"name": "device_id", "type": "string"},
        {"name": "amount", "type": "string"},
        {"name": "currency", "type": "string"},
        {"name": "country", "type": "string"},
        {"name": "channel", "type": "string"},
        {"name": "customer_segment", "type": "string"},
        {"name": "event_time", "type": "long"}
      ]
    }"#;

    #[derive(serde::Serialize)]
    struct TransactionStringAmount {
        event_id: String,
        card_id: String,
        merchant_id: String,
        device_id: String,
        amount: String,
        currency: String,
        country: String,
        channel: String,
        customer_segment: String,
        event_time: i64,
    }

    #[test]
    fn incompatible_writer_is_unknown_schema_naming_the_id() {
        let mut local = LocalSchemaRegistry::embedded().unwrap();
        local.register(99, subjects::TRANSACTION, "bad.avsc", TRANSACTION_AMOUNT_AS_STRING.to_string()).unwrap();
        let reg: Arc<dyn SchemaRegistry> = Arc::new(local);
        let t = tx();
        let bad = TransactionStringAmount {
            event_id: t.event_id.clone(),
            card_id: t.card_id.clone(),
            merchant_id: t.merchant_id.clone(),
            device_id: t.device_id.clone(),
            amount: "123.45".into(),
            currency: t.currency.clone(),
            country: t.country.clone(),
            channel: t.channel.clone(),
            customer_segment: t.customer_segment.clone(),
            event_time: t.event_time,
        };
        let bytes = Encoder::for_schema(reg.by_id(99).unwrap()).encode(&bad).unwrap();
        let dec = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1);
        let err = dec.decode(&bytes).unwrap_err();
        assert_eq!(err.class, ErrorClass::UnknownSchema, "{err}");
        assert!(err.message.contains("schema id 99"), "{}", err.message);
        assert_eq!(err.field, None);
        // The compatible versions still decode through the same decoder.
        let good = Encoder::new(reg.as_ref(), subjects::TRANSACTION).unwrap();
        assert_eq!(good.schema_id(), 99, "latest is the highest id");
        let v1 = Encoder::for_schema(reg.by_id(1).unwrap()).encode(&t).unwrap();
        assert_eq!(dec.decode(&v1).unwrap(), t);
        let v2 = Encoder::for_schema(reg.by_id(6).unwrap()).encode(&t).unwrap();
        assert_eq!(dec.decode(&v2).unwrap(), t);
    }

    #[test]
    fn another_subjects_id_is_unknown_schema() {
        let reg = registry();
        let label = Label { event_id: "e".into(), card_id: "c".into(), is_fraud: true, event_time: 1, label_time: 2 };
        let bytes = Encoder::new(reg.as_ref(), subjects::LABEL).unwrap().encode(&label).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 2]);
        let err = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1).decode(&bytes).unwrap_err();
        assert_eq!(err.class, ErrorClass::UnknownSchema);
        assert!(err.message.contains("schema id 2") && err.message.contains("label"), "{}", err.message);
    }

    #[test]
    fn unregistered_id_is_unknown_schema() {
        let reg = registry();
        let dec = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1);
        let body = Encoder::for_schema(reg.by_id(1).unwrap()).encode(&tx()).unwrap()[5..].to_vec();
        for id in [0u32, 8, 900_001, u32::MAX] {
            let mut bytes = Vec::new();
            write_header(&mut bytes, id);
            bytes.extend_from_slice(&body);
            let err = dec.decode(&bytes).unwrap_err();
            assert_eq!(err.class, ErrorClass::UnknownSchema, "id {id}: {err}");
            assert!(err.message.contains(&format!("schema id {id}")), "{}", err.message);
        }
    }

    #[test]
    fn short_or_wrong_magic_is_malformed() {
        let reg = registry();
        let dec = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1);
        for short in [&[][..], &[0][..], &[0, 0, 0, 0][..]] {
            let err = dec.decode(short).unwrap_err();
            assert_eq!(err.class, ErrorClass::Malformed, "{short:?}");
            assert!(err.message.contains(&format!("{} bytes", short.len())), "{}", err.message);
        }
        let mut bytes = Encoder::for_schema(reg.by_id(1).unwrap()).encode(&tx()).unwrap();
        for magic in [1u8, 0x7f, 0xff] {
            bytes[0] = magic;
            let err = dec.decode(&bytes).unwrap_err();
            assert_eq!(err.class, ErrorClass::Malformed);
            assert!(err.message.contains(&format!("{magic:#04x}")), "{}", err.message);
        }
    }

    #[test]
    fn truncated_body_is_malformed() {
        let reg = registry();
        let dec = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1);
        for id in [1, 6] {
            let bytes = Encoder::for_schema(reg.by_id(id).unwrap()).encode(&tx()).unwrap();
            // Every cut that keeps the header but loses at least one byte of the body.
            for cut in HEADER_LEN..bytes.len() {
                let err = dec.decode(&bytes[..cut]).unwrap_err();
                assert_eq!(err.class, ErrorClass::Malformed, "id {id} cut {cut}: {err}");
                assert!(err.message.contains(&format!("schema id {id}")), "{}", err.message);
            }
        }
    }

    #[test]
    fn garbage_body_is_malformed() {
        let reg = registry();
        let dec = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1);
        // zig-zag 0x01 = -1: a negative string length.
        let err = dec.decode(&[0, 0, 0, 0, 1, 0x01, 0x41]).unwrap_err();
        assert_eq!(err.class, ErrorClass::Malformed);
        // A huge string length must not allocate or panic.
        let err = dec.decode(&[0, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f]).unwrap_err();
        assert_eq!(err.class, ErrorClass::Malformed);
    }

    fn temp_dir(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weir-schemas-{tag}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            crate::now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const LABEL_AVSC: &str = include_str!("../avro/label.avsc");

    #[test]
    fn from_map_file_reads_relative_files() {
        let dir = temp_dir("ok");
        let _c = Cleanup(dir.clone());
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/label.avsc"), LABEL_AVSC).unwrap();
        std::fs::write(
            dir.join("map.json"),
            r#"{"doc": "x", "schemas": [{"id": 42, "subject": "label", "file": "sub/label.avsc"}]}"#,
        )
        .unwrap();
        let reg = LocalSchemaRegistry::from_map_file(&dir.join("map.json")).unwrap();
        assert_eq!(reg.by_id(42).unwrap().subject, "label");
        assert_eq!(reg.latest("label").unwrap().id, 42);
        assert_eq!(reg.by_id(2).unwrap_err().class, ErrorClass::UnknownSchema);
    }

    #[test]
    fn from_map_file_duplicate_id() {
        let dir = temp_dir("dup");
        let _c = Cleanup(dir.clone());
        std::fs::write(dir.join("label.avsc"), LABEL_AVSC).unwrap();
        std::fs::write(
            dir.join("map.json"),
            r#"{"schemas": [{"id": 2, "subject": "label", "file": "label.avsc"},
                            {"id": 2, "subject": "label", "file": "label.avsc"}]}"#,
        )
        .unwrap();
        let err = LocalSchemaRegistry::from_map_file(&dir.join("map.json")).unwrap_err();
        assert!(matches!(err, SchemaError::DuplicateId { id: 2 }), "{err}");
        assert!(err.to_string().contains("schema id 2"), "{err}");
    }

    #[test]
    fn from_map_file_parse_error_names_the_file() {
        let dir = temp_dir("parse");
        let _c = Cleanup(dir.clone());
        std::fs::write(dir.join("broken.avsc"), r#"{"type": "record", "name": "X", "fields": [{"name": "a"}]}"#).unwrap();
        std::fs::write(
            dir.join("map.json"),
            r#"{"schemas": [{"id": 9, "subject": "x", "file": "broken.avsc"}]}"#,
        )
        .unwrap();
        let err = LocalSchemaRegistry::from_map_file(&dir.join("map.json")).unwrap_err();
        match &err {
            SchemaError::Parse { id, file, .. } => {
                assert_eq!(*id, 9);
                assert_eq!(file, "broken.avsc");
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
        assert!(err.to_string().contains("broken.avsc"), "{err}");
        std::fs::write(dir.join("broken.avsc"), "not json at all").unwrap();
        let err = LocalSchemaRegistry::from_map_file(&dir.join("map.json")).unwrap_err();
        assert!(matches!(&err, SchemaError::Parse { file, .. } if file == "broken.avsc"), "{err}");
    }

    #[test]
    fn from_map_file_missing_files_are_io_errors() {
        let dir = temp_dir("missing");
        let _c = Cleanup(dir.clone());
        let missing_map = dir.join("no-such-map.json");
        let err = LocalSchemaRegistry::from_map_file(&missing_map).unwrap_err();
        assert!(matches!(&err, SchemaError::Io { path, .. } if path.contains("no-such-map.json")), "{err}");

        std::fs::write(
            dir.join("map.json"),
            r#"{"schemas": [{"id": 1, "subject": "transaction", "file": "gone.avsc"}]}"#,
        )
        .unwrap();
        let err = LocalSchemaRegistry::from_map_file(&dir.join("map.json")).unwrap_err();
        assert!(matches!(&err, SchemaError::Io { path, .. } if path.ends_with("gone.avsc")), "{err}");
    }

    #[test]
    fn from_map_file_bad_map_is_map_error() {
        let dir = temp_dir("map");
        let _c = Cleanup(dir.clone());
        for text in ["{", r#"{"schemas": [], "extra": 1}"#, r#"{"schemas": [{"id": -1, "subject": "a", "file": "b"}]}"#] {
            std::fs::write(dir.join("map.json"), text).unwrap();
            let err = LocalSchemaRegistry::from_map_file(&dir.join("map.json")).unwrap_err();
            assert!(matches!(&err, SchemaError::Map { path, .. } if path.ends_with("map.json")), "{text}: {err}");
        }
    }

    #[test]
    fn shipped_map_file_matches_embedded() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("avro/registry.json");
        let from_file = LocalSchemaRegistry::from_map_file(&path).unwrap();
        let embedded = LocalSchemaRegistry::embedded().unwrap();
        for id in 1..=8 {
            let (a, b) = (from_file.by_id(id).unwrap(), embedded.by_id(id).unwrap());
            assert_eq!((&a.subject, &a.text), (&b.subject, &b.text), "id {id}");
        }
        assert!(from_file.by_id(9).is_err() && embedded.by_id(9).is_err());
    }

    fn arb_transaction() -> impl Strategy<Value = Transaction> {
        (
            (any::<String>(), any::<String>(), any::<String>(), any::<String>()),
            prop_oneof![any::<f64>().prop_filter("finite", |a| a.is_finite()), Just(0.0), Just(-0.0)],
            (any::<String>(), any::<String>(), any::<String>(), any::<String>()),
            any::<i64>(),
        )
            .prop_map(|((event_id, card_id, merchant_id, device_id), amount, (currency, country, channel, customer_segment), event_time)| {
                Transaction {
                    event_id,
                    card_id,
                    merchant_id,
                    device_id,
                    amount,
                    currency,
                    country,
                    channel,
                    customer_segment,
                    event_time,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let reg = registry();
            let dec = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1);
            let _ = dec.decode(&bytes);
        }

        #[test]
        fn decode_never_panics_after_a_valid_header(
            id in prop_oneof![Just(1u32), Just(6u32)],
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let reg = registry();
            let dec = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1);
            let mut bytes = Vec::new();
            write_header(&mut bytes, id);
            bytes.extend_from_slice(&body);
            if let Err(e) = dec.decode(&bytes) {
                prop_assert_eq!(e.class, ErrorClass::Malformed, "{}", e);
            }
        }

        #[test]
        fn arbitrary_transactions_round_trip(t in arb_transaction(), v1_writer in any::<bool>()) {
            let reg = registry();
            let encoder = if v1_writer {
                Encoder::for_schema(reg.by_id(1).unwrap())
            } else {
                Encoder::new(reg.as_ref(), subjects::TRANSACTION).unwrap()
            };
            let bytes = encoder.encode(&t).unwrap();
            let back = decoder::<Transaction>(&reg, subjects::TRANSACTION, 1).decode(&bytes).unwrap();
            prop_assert_eq!(back.amount.to_bits(), t.amount.to_bits());
            prop_assert_eq!(back, t);
        }
    }
}
