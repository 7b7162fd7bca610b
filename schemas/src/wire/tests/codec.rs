//! The typed codec: round trips of every event, older writers read by newer readers,
//! apache-avro reading what weir writes, and every bad input classified, never a panic.

use std::collections::BTreeMap;
use std::sync::Arc;

use apache_avro::types::Value;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ErrorClass;
use crate::events::{DeadLetter, DriftAlert, FeatureValue, Label, ModelOutput, Reason, Score, Transaction};
use crate::score_versions::ScoreDecoder;
use crate::wire::{subjects, unframe, write_header, Decoder, Encoder, LocalSchemaRegistry, SchemaRegistry, HEADER_LEN};

fn registry() -> Arc<dyn SchemaRegistry> {
    Arc::new(LocalSchemaRegistry::embedded().expect("embedded registry parses"))
}

fn tx() -> Transaction {
    Transaction::sample()
}

fn score() -> Score {
    Score {
        event_id: "tx-9".into(),
        key: "card-9".into(),
        event_time: 1_767_225_600_000,
        model_name: "fraud-baseline".into(),
        model_version: "v1".into(),
        output: ModelOutput::binary(0.8125),
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
    round_trip(subjects::SCORE, 9, &score());
    round_trip(
        subjects::SCORE,
        9,
        &Score { features: vec![], reasons: vec![], attributes: Default::default(), ..score() },
    );
}

/// Scores written by weir before reason codes existed (schema id 3) still decode, into
/// the current shape (`card_id` as the key, `score` as a binary output).
#[test]
fn score_v1_decodes_into_the_current_score() {
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
        card_id: s.key.clone(),
        event_time: s.event_time,
        model_name: s.model_name.clone(),
        model_version: s.model_version.clone(),
        score: s.value(),
        decision: s.decision.clone(),
        features: s.features.clone(),
        scored_at: s.scored_at,
    };
    let reg = registry();
    let bytes = Encoder::for_schema(reg.by_id(3).unwrap()).encode(&v1).unwrap();
    let back = ScoreDecoder::new(reg).unwrap().decode(&bytes).unwrap();
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
    assert_eq!(string(&f["key"]), s.key);
    assert_eq!(long(&f["event_time"]), s.event_time);
    assert_eq!(string(&f["model_name"]), s.model_name);
    assert_eq!(string(&f["model_version"]), s.model_version);
    let Value::Union(0, binary) = &f["output"] else { panic!("output: {:?}", f["output"]) };
    assert_eq!(double(&record_fields(binary.as_ref().clone())["probability"]), s.value());
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
