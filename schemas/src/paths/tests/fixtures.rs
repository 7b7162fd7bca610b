//! Shared test data: a schema with every Avro type and values of it built with
//! apache-avro (independently of the decoder), and the example events' expected values.

use std::collections::HashMap as StdHashMap;
use std::sync::Arc;

use apache_avro::types::Value;

use crate::events::Transaction;
use crate::record::FieldValue;
use crate::wire::{LocalSchemaRegistry, SchemaRegistry};

pub(super) fn registry() -> Arc<dyn SchemaRegistry> {
    Arc::new(LocalSchemaRegistry::embedded().expect("embedded registry parses"))
}

pub(super) fn s(v: &str) -> FieldValue {
    FieldValue::Str(v.to_string())
}

/// Every Avro type: primitives, named types, containers, unions, logical types, a
/// recursive record; `tail` comes last so that any skip that is off by a byte shows.
pub(super) const ALL_TYPES: &str = r#"{"type": "record", "name": "All", "namespace": "t", "fields": [
    {"name": "n", "type": "null"},
    {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "by", "type": "bytes"},
    {"name": "s", "type": "string"},
    {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["red", "green", "blue"]}},
    {"name": "fx", "type": {"type": "fixed", "name": "Three", "size": 3}},
    {"name": "arr", "type": {"type": "array", "items": "long"}},
    {"name": "arr_rec", "type": {"type": "array", "items": {"type": "record", "name": "Pair", "fields": [
        {"name": "k", "type": "string"}, {"name": "v", "type": "double"}]}}},
    {"name": "arr_arr", "type": {"type": "array", "items": {"type": "array", "items": "string"}}},
    {"name": "arr_null", "type": {"type": "array", "items": "null"}},
    {"name": "m", "type": {"type": "map", "values": "int"}},
    {"name": "m_rec", "type": {"type": "map", "values": "Pair"}},
    {"name": "u", "type": ["null", "string", "long", "Pair"]},
    {"name": "u2", "type": ["null", "string", "long", "double", "boolean", "bytes", "Color", "Three", "float", "int"]},
    {"name": "opt_l", "type": ["null", "long"]},
    {"name": "opt_rec", "type": ["null", {"type": "record", "name": "Inner", "fields": [
        {"name": "x", "type": "long"},
        {"name": "y", "type": "string"},
        {"name": "deep", "type": ["null", {"type": "record", "name": "Deep", "fields": [{"name": "z", "type": "int"}]}]}]}]},
    {"name": "rec", "type": "Inner"},
    {"name": "date", "type": {"type": "int", "logicalType": "date"}},
    {"name": "tmillis", "type": {"type": "int", "logicalType": "time-millis"}},
    {"name": "tmicros", "type": {"type": "long", "logicalType": "time-micros"}},
    {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "dec_b", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "dec_f", "type": {"type": "fixed", "name": "Dec", "size": 4, "logicalType": "decimal", "precision": 8, "scale": 2}},
    {"name": "uuid", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "dur", "type": {"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}},
    {"name": "tree", "type": {"type": "record", "name": "Node", "fields": [
        {"name": "value", "type": "long"},
        {"name": "children", "type": {"type": "array", "items": "Node"}},
        {"name": "next", "type": ["null", "Node"]}]}},
    {"name": "tail", "type": "long"}
]}"#;

/// Every scalar path of [`ALL_TYPES`].
pub(super) const ALL_PATHS: &[&str] = &[
    "n", "b", "i", "l", "f", "d", "by", "s", "e", "fx", "u2", "opt_l", "opt_rec.x", "opt_rec.y",
    "opt_rec.deep.z", "rec.x", "rec.y", "rec.deep.z", "date", "tmillis", "tmicros", "ts_ms", "ts_us",
    "dec_b", "dec_f", "uuid", "dur", "tree.value", "tree.next.value", "tree.next.next.value", "tail",
];

/// [`ALL_TYPES`] without logical types, for apache-avro's writer: the same bytes on the
/// wire, and apache-avro's writer then takes plain values (it reads a `uuid` on a fixed
/// as length-prefixed, which is why the decoder walks `serde_avro_fast`'s schema).
pub(super) fn plain_schema(avsc: &str) -> apache_avro::Schema {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                o.remove("logicalType");
                o.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut json: serde_json::Value = serde_json::from_str(avsc).unwrap();
    strip(&mut json);
    apache_avro::Schema::parse(&json).unwrap()
}

pub(super) fn rec(fields: Vec<(&str, Value)>) -> Value {
    Value::Record(fields.into_iter().map(|(n, v)| (n.to_string(), v)).collect())
}

pub(super) fn node(value: i64, children: Vec<Value>, next: Option<Value>) -> Value {
    rec(vec![
        ("value", Value::Long(value)),
        ("children", Value::Array(children)),
        ("next", match next {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(n) => Value::Union(1, Box::new(n)),
        }),
    ])
}

pub(super) fn pair(k: &str, v: f64) -> Value {
    rec(vec![("k", Value::String(k.into())), ("v", Value::Double(v))])
}

pub(super) fn inner(x: i64, y: &str, z: Option<i32>) -> Value {
    let deep = match z {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(z) => Value::Union(1, Box::new(rec(vec![("z", Value::Int(z))]))),
    };
    rec(vec![("x", Value::Long(x)), ("y", Value::String(y.into())), ("deep", deep)])
}

pub(super) const UUID: &str = "123e4567-e89b-12d3-a456-426614174000";

/// A full value of [`ALL_TYPES`] and the expected value of each of [`ALL_PATHS`].
pub(super) fn rich() -> (Value, Vec<FieldValue>) {
    let value = rec(vec![
        ("n", Value::Null),
        ("b", Value::Boolean(true)),
        ("i", Value::Int(-123_456)),
        ("l", Value::Long(i64::MIN)),
        ("f", Value::Float(1.5)),
        ("d", Value::Double(-2.25e300)),
        ("by", Value::Bytes(vec![0, 255, 7])),
        ("s", Value::String("héllo".into())),
        ("e", Value::Enum(1, "green".into())),
        ("fx", Value::Fixed(3, vec![1, 2, 3])),
        ("arr", Value::Array(vec![Value::Long(1), Value::Long(-1), Value::Long(i64::MAX)])),
        ("arr_rec", Value::Array(vec![pair("a", 1.0), pair("b", 2.0)])),
        (
            "arr_arr",
            Value::Array(vec![
                Value::Array(vec![Value::String("x".into())]),
                Value::Array(vec![]),
                Value::Array(vec![Value::String("y".into()), Value::String("zz".into())]),
            ]),
        ),
        ("arr_null", Value::Array(vec![Value::Null, Value::Null, Value::Null])),
        ("m", Value::Map(StdHashMap::from([("a".into(), Value::Int(1)), ("b".into(), Value::Int(-2))]))),
        ("m_rec", Value::Map(StdHashMap::from([("p".into(), pair("q", 0.5))]))),
        ("u", Value::Union(3, Box::new(pair("in-union", 3.0)))),
        ("u2", Value::Union(6, Box::new(Value::Enum(2, "blue".into())))),
        ("opt_l", Value::Union(1, Box::new(Value::Long(42)))),
        ("opt_rec", Value::Union(1, Box::new(inner(7, "why", Some(-9))))),
        ("rec", inner(8, "", None)),
        ("date", Value::Int(19_000)),
        ("tmillis", Value::Int(3_600_000)),
        ("tmicros", Value::Long(5)),
        ("ts_ms", Value::Long(1_767_225_600_123)),
        ("ts_us", Value::Long(1_767_225_600_123_456)),
        ("dec_b", Value::Bytes(vec![0x01, 0x02])),
        ("dec_f", Value::Fixed(4, vec![0, 0, 1, 0])),
        ("uuid", Value::String(UUID.into())),
        ("dur", Value::Fixed(12, (1..=12).collect())),
        (
            "tree",
            node(
                1,
                vec![node(2, vec![], None), node(3, vec![node(4, vec![], None)], None)],
                Some(node(5, vec![], Some(node(6, vec![], None)))),
            ),
        ),
        ("tail", Value::Long(99)),
    ]);
    let expected = vec![
        FieldValue::Null,
        FieldValue::Bool(true),
        FieldValue::Int(-123_456),
        FieldValue::Int(i64::MIN),
        FieldValue::Float(1.5),
        FieldValue::Float(-2.25e300),
        FieldValue::Bytes(vec![0, 255, 7]),
        s("héllo"),
        s("green"),
        FieldValue::Bytes(vec![1, 2, 3]),
        s("blue"),
        FieldValue::Int(42),
        FieldValue::Int(7),
        s("why"),
        FieldValue::Int(-9),
        FieldValue::Int(8),
        s(""),
        FieldValue::Missing,
        FieldValue::Int(19_000),
        FieldValue::Int(3_600_000),
        FieldValue::Int(5),
        FieldValue::Int(1_767_225_600_123),
        FieldValue::Int(1_767_225_600_123_456),
        FieldValue::Bytes(vec![1, 2]),
        FieldValue::Bytes(vec![0, 0, 1, 0]),
        s(UUID),
        FieldValue::Bytes((1..=12).collect()),
        FieldValue::Int(1),
        FieldValue::Int(5),
        FieldValue::Int(6),
        FieldValue::Int(99),
    ];
    (value, expected)
}

/// The same schema with nulls, empties and extremes.
pub(super) fn sparse() -> (Value, Vec<FieldValue>) {
    let null = || Value::Union(0, Box::new(Value::Null));
    let value = rec(vec![
        ("n", Value::Null),
        ("b", Value::Boolean(false)),
        ("i", Value::Int(i32::MIN)),
        ("l", Value::Long(0)),
        ("f", Value::Float(f32::MAX)),
        ("d", Value::Double(f64::INFINITY)),
        ("by", Value::Bytes(vec![])),
        ("s", Value::String(String::new())),
        ("e", Value::Enum(0, "red".into())),
        ("fx", Value::Fixed(3, vec![0, 0, 0])),
        ("arr", Value::Array(vec![])),
        ("arr_rec", Value::Array(vec![])),
        ("arr_arr", Value::Array(vec![])),
        ("arr_null", Value::Array(vec![])),
        ("m", Value::Map(StdHashMap::new())),
        ("m_rec", Value::Map(StdHashMap::new())),
        ("u", null()),
        ("u2", null()),
        ("opt_l", null()),
        ("opt_rec", null()),
        ("rec", inner(i64::MAX, "r", Some(i32::MAX))),
        ("date", Value::Int(0)),
        ("tmillis", Value::Int(0)),
        ("tmicros", Value::Long(-1)),
        ("ts_ms", Value::Long(i64::MAX)),
        ("ts_us", Value::Long(i64::MIN)),
        ("dec_b", Value::Bytes(vec![])),
        ("dec_f", Value::Fixed(4, vec![255; 4])),
        ("uuid", Value::String(UUID.into())),
        ("dur", Value::Fixed(12, vec![0; 12])),
        ("tree", node(0, vec![], None)),
        ("tail", Value::Long(-1)),
    ]);
    let m = FieldValue::Missing;
    let expected = vec![
        FieldValue::Null,
        FieldValue::Bool(false),
        FieldValue::Int(i64::from(i32::MIN)),
        FieldValue::Int(0),
        FieldValue::Float(f64::from(f32::MAX)),
        FieldValue::Float(f64::INFINITY),
        FieldValue::Bytes(vec![]),
        s(""),
        s("red"),
        FieldValue::Bytes(vec![0, 0, 0]),
        FieldValue::Null,
        FieldValue::Null,
        m.clone(),
        m.clone(),
        m.clone(),
        FieldValue::Int(i64::MAX),
        s("r"),
        FieldValue::Int(i64::from(i32::MAX)),
        FieldValue::Int(0),
        FieldValue::Int(0),
        FieldValue::Int(-1),
        FieldValue::Int(i64::MAX),
        FieldValue::Int(i64::MIN),
        FieldValue::Bytes(vec![]),
        FieldValue::Bytes(vec![255; 4]),
        s(UUID),
        FieldValue::Bytes(vec![0; 12]),
        FieldValue::Int(0),
        m.clone(),
        m,
        FieldValue::Int(-1),
    ];
    (value, expected)
}

pub(super) fn encode(avsc: &str, value: Value) -> Vec<u8> {
    apache_avro::to_avro_datum(&plain_schema(avsc), value).expect("test value matches its schema")
}

pub(super) fn set_field(value: &mut Value, name: &str, to: Value) {
    let Value::Record(fields) = value else { panic!("not a record") };
    fields.iter_mut().find(|(n, _)| n == name).expect("field exists").1 = to;
}

pub(super) fn tx() -> Transaction {
    Transaction::sample()
}

pub(super) const TX_PATHS: [&str; 12] = [
    "event_id", "card_id", "merchant_id", "device_id", "amount", "currency", "country", "channel",
    "customer_segment", "event_time", "ip_country", "mcc",
];

pub(super) fn tx_values(t: &Transaction) -> Vec<FieldValue> {
    vec![
        s(&t.event_id),
        s(&t.card_id),
        s(&t.merchant_id),
        s(&t.device_id),
        FieldValue::Float(t.amount),
        s(&t.currency),
        s(&t.country),
        s(&t.channel),
        s(&t.customer_segment),
        FieldValue::Int(t.event_time),
    ]
}

/// The example interaction, built independently of the decoder.
#[derive(Debug, Clone)]
pub(super) struct Interaction {
    pub(super) event_id: String,
    pub(super) user: (String, String, String),
    pub(super) item: (String, String, f64),
    pub(super) action: u32,
    pub(super) dwell_ms: Option<i64>,
    pub(super) device: String,
    pub(super) event_time: i64,
}

pub(super) const ACTIONS: [&str; 3] = ["view", "click", "add_to_cart"];

pub(super) fn interaction_value(i: &Interaction) -> Value {
    rec(vec![
        ("event_id", Value::String(i.event_id.clone())),
        (
            "user",
            rec(vec![
                ("id", Value::String(i.user.0.clone())),
                ("country", Value::String(i.user.1.clone())),
                ("segment", Value::String(i.user.2.clone())),
            ]),
        ),
        (
            "item",
            rec(vec![
                ("id", Value::String(i.item.0.clone())),
                ("category", Value::String(i.item.1.clone())),
                ("price", Value::Double(i.item.2)),
            ]),
        ),
        ("action", Value::Enum(i.action, ACTIONS[i.action as usize].into())),
        ("dwell_ms", match i.dwell_ms {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(d) => Value::Union(1, Box::new(Value::Long(d))),
        }),
        ("device", Value::String(i.device.clone())),
        ("event_time", Value::TimestampMillis(i.event_time)),
    ])
}

pub(super) fn tx_v2_value(t: &Transaction, ip_country: Option<&str>, mcc: Option<i32>) -> Value {
    rec(vec![
        ("event_id", Value::String(t.event_id.clone())),
        ("card_id", Value::String(t.card_id.clone())),
        ("merchant_id", Value::String(t.merchant_id.clone())),
        ("device_id", Value::String(t.device_id.clone())),
        ("amount", Value::Double(t.amount)),
        ("currency", Value::String(t.currency.clone())),
        ("country", Value::String(t.country.clone())),
        ("channel", Value::String(t.channel.clone())),
        ("customer_segment", Value::String(t.customer_segment.clone())),
        ("event_time", Value::TimestampMillis(t.event_time)),
        ("ip_country", match ip_country {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(c) => Value::Union(1, Box::new(Value::String(c.into()))),
        }),
        ("mcc", match mcc {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(m) => Value::Union(1, Box::new(Value::Int(m))),
        }),
    ])
}
