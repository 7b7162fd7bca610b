//! [`PathDecoder`]: every type read and skipped, bad paths refused at build, bad bodies
//! malformed with a reason, recursion bounded.

use apache_avro::types::Value;

use super::fixtures::*;
use crate::error::{ErrorClass, PathError};
use crate::paths::PathDecoder;
use crate::record::FieldValue;
use crate::wire::Encoder;

#[test]
fn every_type_is_materialized_and_skipped() {
    for (label, (value, expected)) in [("rich", rich()), ("sparse", sparse())] {
        assert_eq!(expected.len(), ALL_PATHS.len());
        let body = encode(ALL_TYPES, value);
        let all = PathDecoder::from_avsc(ALL_TYPES, ALL_PATHS).unwrap();
        assert_eq!(all.decode(&body).unwrap().values, expected, "{label}: all paths");
        // One path at a time: everything before and after it is skipped.
        for (i, path) in ALL_PATHS.iter().enumerate() {
            let one = PathDecoder::from_avsc(ALL_TYPES, &[path]).unwrap();
            assert_eq!(one.decode(&body).unwrap().values, [expected[i].clone()], "{label}: {path}");
        }
        // Nothing requested: the whole record is skipped, and must end exactly.
        let none = PathDecoder::from_avsc::<&str>(ALL_TYPES, &[]).unwrap();
        assert_eq!(none.decode(&body).unwrap().values, []);
        // In reverse order, with a duplicate: slots follow the list, not the schema.
        let mut rev: Vec<&str> = ALL_PATHS.iter().rev().copied().collect();
        rev.push("s");
        let dec = PathDecoder::from_avsc(ALL_TYPES, &rev).unwrap();
        let mut want: Vec<FieldValue> = expected.iter().rev().cloned().collect();
        want.push(expected[7].clone());
        assert_eq!(dec.decode(&body).unwrap().values, want, "{label}: reversed");
    }
}

#[test]
fn every_branch_of_a_leaf_union() {
    let branches: Vec<(Value, FieldValue)> = vec![
        (Value::Null, FieldValue::Null),
        (Value::String("x".into()), s("x")),
        (Value::Long(-5), FieldValue::Int(-5)),
        (Value::Double(0.25), FieldValue::Float(0.25)),
        (Value::Boolean(true), FieldValue::Bool(true)),
        (Value::Bytes(vec![9]), FieldValue::Bytes(vec![9])),
        (Value::Enum(0, "red".into()), s("red")),
        (Value::Fixed(3, vec![7, 8, 9]), FieldValue::Bytes(vec![7, 8, 9])),
        (Value::Float(-1.5), FieldValue::Float(-1.5)),
        (Value::Int(77), FieldValue::Int(77)),
    ];
    let dec = PathDecoder::from_avsc(ALL_TYPES, &["u2", "tail"]).unwrap();
    for (i, (branch, want)) in branches.into_iter().enumerate() {
        let (mut value, _) = rich();
        set_field(&mut value, "u2", Value::Union(i as u32, Box::new(branch)));
        let got = dec.decode(&encode(ALL_TYPES, value)).unwrap();
        assert_eq!(got.values, [want, FieldValue::Int(99)], "branch {i}");
    }
}

#[test]
fn presence_per_writer() {
    let dec = PathDecoder::from_avsc(ALL_TYPES, &["tail", "nope", "rec.nope", "opt_rec.x"]).unwrap();
    assert_eq!((0..5).map(|i| dec.has_path(i)).collect::<Vec<_>>(), [true, false, false, true, false]);
    assert_eq!(dec.schema_id(), None);
    assert_eq!(dec.paths(), ["tail", "nope", "rec.nope", "opt_rec.x"]);
    let (value, _) = rich();
    let got = dec.decode(&encode(ALL_TYPES, value)).unwrap();
    assert_eq!(got.values, [FieldValue::Int(99), FieldValue::Missing, FieldValue::Missing, FieldValue::Int(7)]);
}

/// Writers may send array and map blocks with a negative count followed by the block's
/// byte size (the Avro spec's fast-skip form); apache-avro's reader checks the bytes.
#[test]
fn negative_block_counts_are_skipped_by_size() {
    const AVSC: &str = r#"{"type": "record", "name": "B", "fields": [
        {"name": "arr", "type": {"type": "array", "items": "long"}},
        {"name": "m", "type": {"type": "map", "values": "string"}},
        {"name": "tail", "type": "long"}]}"#;
    let body = [
        0x03, 0x04, 0x02, 0x01, // arr: count -2, 2 bytes: 1, -1
        0x02, 0xd8, 0x04, // count 1: 300
        0x00, // end of arr
        0x01, 0x0a, 0x02, b'a', 0x04, b'b', b'c', // m: count -1, 5 bytes: "a" -> "bc"
        0x02, 0x02, b'd', 0x00, // count 1: "d" -> ""
        0x00, // end of m
        0x0e, // tail 7
    ];
    let schema = apache_avro::Schema::parse_str(AVSC).unwrap();
    let check = apache_avro::from_avro_datum(&schema, &mut &body[..], None).unwrap();
    let Value::Record(fields) = check else { panic!() };
    assert_eq!(fields[0].1, Value::Array(vec![Value::Long(1), Value::Long(-1), Value::Long(300)]));
    assert_eq!(fields[2].1, Value::Long(7));
    let dec = PathDecoder::from_avsc(AVSC, &["tail"]).unwrap();
    assert_eq!(dec.decode(&body).unwrap().values, [FieldValue::Int(7)]);
    // A block size past the end, or negative, is malformed.
    for (bad, what) in [(&[0x03, 0x40, 0x02][..], "truncated"), (&[0x03, 0x03, 0x02][..], "negative")] {
        let err = dec.decode(bad).unwrap_err();
        assert_eq!(err.class, ErrorClass::Malformed);
        assert!(err.message.contains(what), "{}", err.message);
    }
}

#[test]
fn interaction_nested_paths() {
    let reg = registry();
    let writer = reg.by_id(8).unwrap();
    let paths = [
        "event_id", "user.id", "user.country", "user.segment", "item.id", "item.category", "item.price",
        "action", "dwell_ms", "device", "event_time",
    ];
    let dec = PathDecoder::new(&writer, &paths).unwrap();
    assert_eq!(dec.schema_id(), Some(8));
    for (dwell, want) in [(None, FieldValue::Null), (Some(1500), FieldValue::Int(1500))] {
        let value = interaction_value(&Interaction {
            event_id: "i-1".into(),
            user: ("u-7".into(), "FR".into(), "loyal".into()),
            item: ("it-3".into(), "books".into(), 12.5),
            action: 2,
            dwell_ms: dwell,
            device: "ios".into(),
            event_time: 1_767_225_600_000,
        });
        let body = apache_avro::to_avro_datum(&writer.canonical, value).unwrap();
        let got = dec.decode(&body).unwrap();
        assert_eq!(
            got.values,
            [
                s("i-1"),
                s("u-7"),
                s("FR"),
                s("loyal"),
                s("it-3"),
                s("books"),
                FieldValue::Float(12.5),
                s("add_to_cart"),
                want,
                s("ios"),
                FieldValue::Int(1_767_225_600_000),
            ]
        );
    }
}

#[test]
fn null_record_on_the_path_is_missing_below() {
    let (mut value, _) = rich();
    set_field(&mut value, "opt_rec", Value::Union(1, Box::new(inner(1, "a", None))));
    let dec = PathDecoder::from_avsc(ALL_TYPES, &["opt_rec.deep.z", "opt_rec.y", "tail"]).unwrap();
    let got = dec.decode(&encode(ALL_TYPES, value.clone())).unwrap();
    assert_eq!(got.values, [FieldValue::Missing, s("a"), FieldValue::Int(99)]);
    set_field(&mut value, "opt_rec", Value::Union(0, Box::new(Value::Null)));
    let got = dec.decode(&encode(ALL_TYPES, value)).unwrap();
    assert_eq!(got.values, [FieldValue::Missing, FieldValue::Missing, FieldValue::Int(99)]);
}

#[test]
fn older_writer_lacks_the_field() {
    let reg = registry();
    let t = tx();
    let paths = ["ip_country", "mcc", "amount"];
    let v1 = PathDecoder::new(&reg.by_id(1).unwrap(), &paths).unwrap();
    let v2 = PathDecoder::new(&reg.by_id(6).unwrap(), &paths).unwrap();
    assert!(!v1.has_path(0) && !v1.has_path(1) && v1.has_path(2));
    assert!(v2.has_path(0) && v2.has_path(1));
    let body1 = &Encoder::for_schema(reg.by_id(1).unwrap()).encode(&t).unwrap()[5..];
    assert_eq!(v1.decode(body1).unwrap().values, [FieldValue::Missing, FieldValue::Missing, FieldValue::Float(t.amount)]);
    let body2 = &Encoder::for_schema(reg.by_id(6).unwrap()).encode(&t).unwrap()[5..];
    assert_eq!(v2.decode(body2).unwrap().values, [FieldValue::Null, FieldValue::Null, FieldValue::Float(t.amount)]);
}

#[test]
fn bad_paths_are_refused_at_build() {
    let reg = registry();
    let tx_schema = reg.by_id(6).unwrap();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["amount.x"], "amount.x", "goes through \"amount\", which is double, not a record"),
        (&["card_id.a.b"], "card_id.a.b", "goes through \"card_id\", which is string"),
        (&["mcc.x"], "mcc.x", "a union with a branch that is int"),
        (&[""], "", "empty segment"),
        (&["a..b"], "a..b", "empty segment"),
        (&["amount."], "amount.", "empty segment"),
        (&["1st"], "1st", "not an avro field name"),
        (&["am ount"], "am ount", "not an avro field name"),
        (&["card_id", "card_id.x"], "card_id", "also a prefix of \"card_id.x\""),
    ];
    for (paths, bad, why) in cases {
        let err = PathDecoder::new(&tx_schema, paths).unwrap_err();
        match &err {
            PathError::Path { path, schema_id, message } => {
                assert_eq!((path.as_str(), *schema_id), (*bad, Some(6)), "{err}");
                assert!(message.contains(why), "{paths:?}: {err}");
            }
            other => panic!("{paths:?}: expected a path error, got {other:?}"),
        }
        assert!(err.to_string().contains("(schema id 6)"), "{err}");
    }
    let cases: &[(&str, &str)] = &[
        ("rec", "names record t.Inner, not a value: name one of its fields (rec.<field>)"),
        ("opt_rec", "names record t.Inner as a union branch"),
        ("u", "names record t.Pair as a union branch"),
        ("arr", "names an array, which a field path cannot read"),
        ("m", "names a map"),
        ("arr.k", "goes through \"arr\", which is an array, not a record"),
        ("m_rec.p", "goes through \"m_rec\", which is a map"),
        ("u.k", "a union with a branch that is string"),
        ("tree.children", "names an array"),
        ("n.x", "goes through \"n\", which is null"),
    ];
    for (bad, why) in cases {
        let err = PathDecoder::from_avsc(ALL_TYPES, &["tail", bad]).unwrap_err();
        assert!(
            matches!(&err, PathError::Path { path, message, schema_id: None } if path == bad && message.contains(why)),
            "{bad}: {err}"
        );
    }
    for (avsc, why) in [(r#""long""#, "is long, not a record"), ("{", "does not parse"), (r#"["null", "string"]"#, "is a union")] {
        let err = PathDecoder::from_avsc(avsc, &["x"]).unwrap_err();
        assert!(matches!(&err, PathError::Schema { message, .. } if message.contains(why)), "{avsc}: {err}");
    }
}

fn malformed(dec: &PathDecoder, body: &[u8], what: &str) {
    match dec.decode(body) {
        Err(e) => {
            assert_eq!(e.class, ErrorClass::Malformed, "{body:?}: {e}");
            assert!(e.message.contains(what), "{body:?}: expected {what:?} in {:?}", e.message);
        }
        Ok(r) => panic!("{body:?} decoded to {r:?}, expected malformed ({what})"),
    }
}

#[test]
fn bad_bodies_are_malformed_with_a_reason() {
    let one = |ty: &str| format!(r#"{{"type": "record", "name": "R", "fields": [{{"name": "v", "type": {ty}}}]}}"#);
    for paths in [&["v"][..], &[][..]] {
        let long = PathDecoder::from_avsc(&one(r#""long""#), paths).unwrap();
        malformed(&long, &[], "truncated inside a varint at byte 0 of 0");
        malformed(&long, &[0x80, 0x80], "truncated inside a varint");
        malformed(&long, &[0xff; 11], "varint longer than 10 bytes");
        malformed(&long, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], "over 64 bits");
        malformed(&long, &[0x02, 0x00], "1 trailing bytes after the record (it ends at byte 1 of 2)");
        let string = PathDecoder::from_avsc(&one(r#""string""#), paths).unwrap();
        malformed(&string, &[0x01], "negative length or block size -1");
        malformed(&string, &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], "more bytes needed");
        malformed(&string, &[0x06, b'a'], "truncated: 2 more bytes needed at byte 1 of 2");
        let union = PathDecoder::from_avsc(&one(r#"["null", "long"]"#), paths).unwrap();
        malformed(&union, &[0x04], "union branch index 2 is not in 0..2");
        malformed(&union, &[0x01], "union branch index -1");
        let double = PathDecoder::from_avsc(&one(r#""double""#), paths).unwrap();
        malformed(&double, &[0; 7], "truncated: 1 more bytes needed");
    }
    let arr = PathDecoder::from_avsc(&one(r#"{"type": "array", "items": "string"}"#), &[] as &[&str]).unwrap();
    // A count of 2^62 items that are not there: stops at the end of the input.
    malformed(&arr, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "truncated inside a varint");
    malformed(&arr, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x02, b'a'], "at byte 12 of 12");
    // Materialized only: the decoder checks what it builds values from.
    let enum_ = PathDecoder::from_avsc(&one(r#"{"type": "enum", "name": "E", "symbols": ["a", "b", "c"]}"#), &["v"]).unwrap();
    malformed(&enum_, &[0x06], "enum index 3 is not in 0..3");
    malformed(&enum_, &[0x01], "enum index -1");
    let boolean = PathDecoder::from_avsc(&one(r#""boolean""#), &["v"]).unwrap();
    malformed(&boolean, &[0x02], "boolean byte 0x02 is neither 0 nor 1");
    let int = PathDecoder::from_avsc(&one(r#""int""#), &["v"]).unwrap();
    malformed(&int, &[0x80, 0x80, 0x80, 0x80, 0x10], "int value 2147483648 does not fit 32 bits");
    let string = PathDecoder::from_avsc(&one(r#""string""#), &["v"]).unwrap();
    malformed(&string, &[0x04, 0xc3, 0x28], "not valid utf-8");
    // Null items cost no bytes: any count is skipped at once.
    let nulls = PathDecoder::from_avsc(&one(r#"{"type": "array", "items": "null"}"#), &[] as &[&str]).unwrap();
    assert!(nulls.decode(&[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]).is_ok());
    // A registered schema's id is named.
    let reg = registry();
    let dec = PathDecoder::new(&reg.by_id(1).unwrap(), &["amount"]).unwrap();
    malformed(&dec, &[0x02], "avro body does not decode with schema id 1: truncated");
}

/// A chain of `next` records `n` deep, then `tail`.
fn chain(n: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..n {
        body.extend_from_slice(&[0x00, 0x00, 0x02]); // value 0, no children, next: branch 1
    }
    body.extend_from_slice(&[0x00, 0x00, 0x00]); // the last node: next is null
    body
}

#[test]
fn recursion_is_depth_limited() {
    const AVSC: &str = r#"{"type": "record", "name": "Node", "fields": [
        {"name": "value", "type": "long"},
        {"name": "children", "type": {"type": "array", "items": "Node"}},
        {"name": "next", "type": ["null", "Node"]}]}"#;
    for paths in [&[][..], &["value", "next.value", "next.next.next.value"][..]] {
        let dec = PathDecoder::from_avsc(AVSC, paths).unwrap();
        assert!(dec.decode(&chain(60)).is_ok(), "{paths:?}");
        malformed(&dec, &chain(200), "nesting of recursive types deeper than 64");
    }
    let dec = PathDecoder::from_avsc(AVSC, &["next.next.value", "next.next.next.next.value"]).unwrap();
    assert_eq!(dec.decode(&chain(2)).unwrap().values, [FieldValue::Int(0), FieldValue::Missing]);
}

#[test]
fn every_truncation_is_malformed() {
    let (value, _) = rich();
    let body = encode(ALL_TYPES, value);
    for paths in [ALL_PATHS, &["tail"][..], &[][..]] {
        let dec = PathDecoder::from_avsc(ALL_TYPES, paths).unwrap();
        assert!(dec.decode(&body).is_ok());
        for cut in 0..body.len() {
            let err = dec.decode(&body[..cut]).unwrap_err();
            assert_eq!(err.class, ErrorClass::Malformed, "cut {cut}: {err}");
        }
    }
}
