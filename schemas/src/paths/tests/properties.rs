//! Property tests: random and mutated bodies never panic; the paths agree with the typed
//! decoder and with apache-avro's writer.

use proptest::prelude::*;

use super::fixtures::*;
use crate::error::ErrorClass;
use crate::events::Transaction;
use crate::paths::{PathDecoder, RecordDecoder};
use crate::record::FieldValue;
use crate::wire::{subjects, write_header, Decoder, Encoder};

fn arb_interaction() -> impl Strategy<Value = Interaction> {
    (
        (any::<String>(), (any::<String>(), any::<String>(), any::<String>())),
        (any::<String>(), any::<String>(), any::<f64>().prop_filter("not nan", |p| !p.is_nan())),
        (0u32..3, proptest::option::of(any::<i64>()), any::<String>(), any::<i64>()),
    )
        .prop_map(|((event_id, user), item, (action, dwell_ms, device, event_time))| Interaction {
            event_id,
            user,
            item,
            action,
            dwell_ms,
            device,
            event_time,
        })
}

fn arb_transaction() -> impl Strategy<Value = Transaction> {
    (
        (any::<String>(), any::<String>(), any::<String>(), any::<String>()),
        any::<f64>().prop_filter("not nan", |a| !a.is_nan()),
        (any::<String>(), any::<String>(), any::<String>(), any::<String>()),
        any::<i64>(),
    )
        .prop_map(|((event_id, card_id, merchant_id, device_id), amount, (currency, country, channel, customer_segment), event_time)| {
            Transaction { event_id, card_id, merchant_id, device_id, amount, currency, country, channel, customer_segment, event_time }
        })
}

/// The typed struct's fields as the path decoder's values (the typed decoder is the
/// reference here, not this decoder's own encoding).
fn typed_values(t: &Transaction) -> Vec<FieldValue> {
    tx_values(t)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), which in 0usize..4) {
        let reg = registry();
        let dec = match which {
            0 => PathDecoder::new(&reg.by_id(1).unwrap(), &TX_PATHS).unwrap(),
            1 => PathDecoder::new(&reg.by_id(6).unwrap(), &TX_PATHS).unwrap(),
            2 => PathDecoder::new(&reg.by_id(8).unwrap(), &["user.id", "item.price", "action", "dwell_ms"]).unwrap(),
            _ => PathDecoder::from_avsc(ALL_TYPES, ALL_PATHS).unwrap(),
        };
        if let Err(e) = dec.decode(&body) {
            prop_assert_eq!(e.class, ErrorClass::Malformed, "{}", e);
        }
    }

    #[test]
    fn random_frames_never_panic(id in prop_oneof![Just(1u32), Just(2), Just(6), Just(8), any::<u32>()], body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let dec = RecordDecoder::new(registry(), subjects::TRANSACTION, &TX_PATHS).unwrap();
        let mut framed = Vec::new();
        write_header(&mut framed, id);
        framed.extend_from_slice(&body);
        let _ = dec.decode(&framed);
        let _ = dec.decode(&body);
    }

    #[test]
    fn mutated_valid_bodies_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in any::<prop::sample::Index>()) {
        let (value, _) = rich();
        let mut body = encode(ALL_TYPES, value);
        for (at, byte) in flips {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let dec = PathDecoder::from_avsc(ALL_TYPES, ALL_PATHS).unwrap();
        let _ = dec.decode(&body);
        let _ = dec.decode(&body[..cut.index(body.len())]);
    }

    #[test]
    fn paths_equal_the_typed_decoder(t in arb_transaction(), v1_writer in any::<bool>(), cut in any::<prop::sample::Index>()) {
        let reg = registry();
        let writer = reg.by_id(if v1_writer { 1 } else { 6 }).unwrap();
        let bytes = Encoder::for_schema(writer).encode(&t).unwrap();
        let typed = Decoder::<Transaction>::new(reg.clone(), subjects::TRANSACTION, &reg.by_id(1).unwrap())
            .decode(&bytes)
            .unwrap();
        let paths = RecordDecoder::new(reg, subjects::TRANSACTION, &TX_PATHS).unwrap();
        let record = paths.decode(&bytes).unwrap();
        let want = typed_values(&typed);
        for (i, w) in want.iter().enumerate() {
            prop_assert_eq!(record.get(i), w, "path {}", TX_PATHS[i]);
        }
        prop_assert_eq!(record.get(4).as_f64().map(f64::to_bits), Some(typed.amount.to_bits()));
        let optional = if v1_writer { FieldValue::Missing } else { FieldValue::Null };
        prop_assert_eq!(record.get(10), &optional);
        prop_assert_eq!(record.get(11), &optional);
        // And every strict prefix is malformed.
        let cut = HEADER_MIN + cut.index(bytes.len() - HEADER_MIN);
        prop_assert_eq!(paths.decode(&bytes[..cut]).unwrap_err().class, ErrorClass::Malformed);
    }

    #[test]
    fn v2_optional_fields_by_apache_avro(t in arb_transaction(), ip in proptest::option::of(any::<String>()), mcc in proptest::option::of(any::<i32>())) {
        let reg = registry();
        let body = apache_avro::to_avro_datum(&reg.by_id(6).unwrap().canonical, tx_v2_value(&t, ip.as_deref(), mcc)).unwrap();
        let dec = PathDecoder::new(&reg.by_id(6).unwrap(), &TX_PATHS).unwrap();
        let mut want = tx_values(&t);
        want.push(ip.map_or(FieldValue::Null, FieldValue::Str));
        want.push(mcc.map_or(FieldValue::Null, |m| FieldValue::Int(m.into())));
        prop_assert_eq!(dec.decode(&body).unwrap().values, want);
    }

    #[test]
    fn interactions_by_apache_avro(i in arb_interaction()) {
        let reg = registry();
        let writer = reg.by_id(8).unwrap();
        let body = apache_avro::to_avro_datum(&writer.canonical, interaction_value(&i)).unwrap();
        let paths = ["event_time", "item.price", "user.segment", "dwell_ms", "action", "user.id", "item.category", "device", "event_id", "item.id", "user.country"];
        let dec = PathDecoder::new(&writer, &paths).unwrap();
        let want = vec![
            FieldValue::Int(i.event_time),
            FieldValue::Float(i.item.2),
            s(&i.user.2),
            i.dwell_ms.map_or(FieldValue::Null, FieldValue::Int),
            s(ACTIONS[i.action as usize]),
            s(&i.user.0),
            s(&i.item.1),
            s(&i.device),
            s(&i.event_id),
            s(&i.item.0),
            s(&i.user.1),
        ];
        prop_assert_eq!(dec.decode(&body).unwrap().values, want);
        // Through the framed decoder too.
        let mut framed = Vec::new();
        write_header(&mut framed, 8);
        framed.extend_from_slice(&body);
        let rd = RecordDecoder::new(reg, subjects::INTERACTION, &paths).unwrap();
        prop_assert_eq!(rd.decode(&framed).unwrap(), dec.decode(&body).unwrap());
    }
}

const HEADER_MIN: usize = crate::wire::HEADER_LEN;
