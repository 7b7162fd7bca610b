//! [`RecordDecoder`]: several writer versions with the same paths, refusals, new ids
//! learned on first sight.

use std::sync::Arc;

use super::fixtures::*;
use crate::error::{ErrorClass, EventError, PathError};
use crate::paths::{PathDecoder, RecordDecoder};
use crate::record::FieldValue;
use crate::wire::{subjects, write_header, Encoder, LocalSchemaRegistry, RegisteredSchema, SchemaRegistry};

#[test]
fn record_decoder_reads_v1_and_v2_with_the_same_paths() {
    let reg = registry();
    let dec = RecordDecoder::new(reg.clone(), subjects::TRANSACTION, &TX_PATHS).unwrap();
    assert_eq!((dec.subject(), dec.paths().len()), ("transaction", 12));
    let t = tx();
    let v1 = Encoder::for_schema(reg.by_id(1).unwrap()).encode(&t).unwrap();
    let mut want = tx_values(&t);
    want.extend([FieldValue::Missing, FieldValue::Missing]);
    assert_eq!(dec.decode(&v1).unwrap().values, want);
    let v2 = Encoder::for_schema(reg.by_id(6).unwrap()).encode(&t).unwrap();
    want[10..].clone_from_slice(&[FieldValue::Null, FieldValue::Null]);
    assert_eq!(dec.decode(&v2).unwrap().values, want);
    // v2 with the optional fields set, written by apache-avro.
    let body = apache_avro::to_avro_datum(&reg.by_id(6).unwrap().canonical, tx_v2_value(&t, Some("DE"), Some(5411))).unwrap();
    let mut framed = Vec::new();
    write_header(&mut framed, 6);
    framed.extend_from_slice(&body);
    want[10..].clone_from_slice(&[s("DE"), FieldValue::Int(5411)]);
    assert_eq!(dec.decode(&framed).unwrap().values, want);
}

#[test]
fn record_decoder_refuses_other_ids_and_bad_frames() {
    let reg = registry();
    let dec = RecordDecoder::new(reg.clone(), subjects::TRANSACTION, &["amount"]).unwrap();
    let label = crate::events::Label { event_id: "e".into(), card_id: "c".into(), is_fraud: true, event_time: 1, label_time: 2 };
    let bytes = Encoder::new(reg.as_ref(), subjects::LABEL).unwrap().encode(&label).unwrap();
    for _ in 0..2 {
        // The second time from the cache: same answer.
        let err = dec.decode(&bytes).unwrap_err();
        assert_eq!(err.class, ErrorClass::UnknownSchema);
        assert!(err.message.contains("schema id 2 belongs to subject label, expected transaction"), "{}", err.message);
    }
    for id in [0u32, 9, u32::MAX] {
        let mut framed = Vec::new();
        write_header(&mut framed, id);
        framed.push(0);
        let err = dec.decode(&framed).unwrap_err();
        assert_eq!(err.class, ErrorClass::UnknownSchema, "{id}");
        assert!(err.message.contains(&format!("schema id {id}")), "{}", err.message);
    }
    for short in [&[][..], &[0, 0, 0, 1][..]] {
        assert_eq!(dec.decode(short).unwrap_err().class, ErrorClass::Malformed);
    }
    let err = dec.decode(&[1, 0, 0, 0, 1, 0]).unwrap_err();
    assert!(err.class == ErrorClass::Malformed && err.message.contains("magic byte is 0x01"), "{err}");
    let v1 = Encoder::for_schema(reg.by_id(1).unwrap()).encode(&tx()).unwrap();
    for cut in 5..v1.len() {
        let err = dec.decode(&v1[..cut]).unwrap_err();
        assert_eq!(err.class, ErrorClass::Malformed, "cut {cut}");
        assert!(err.message.contains("schema id 1"), "{}", err.message);
    }
}

#[test]
fn record_decoder_construction_errors() {
    let reg = registry();
    let err = RecordDecoder::new(reg.clone(), subjects::TRANSACTION, &["amout"]).unwrap_err();
    assert!(
        matches!(&err, PathError::Path { path, message, .. } if path == "amout" && message.contains("no registered schema of subject transaction (ids 1, 6)")),
        "{err}"
    );
    let err = RecordDecoder::new(reg.clone(), subjects::TRANSACTION, &["amount.x"]).unwrap_err();
    assert!(matches!(&err, PathError::Path { schema_id: Some(6), .. }), "{err}");
    let err = RecordDecoder::new(reg.clone(), "nope", &["amount"]).unwrap_err();
    assert_eq!(err, PathError::Subject { subject: "nope".into(), message: "no schema is registered for it".into() });
    assert_eq!(err.to_string(), "subject nope: no schema is registered for it");
    // A path only the newer version has is fine.
    RecordDecoder::new(reg, subjects::TRANSACTION, &["mcc"]).unwrap();
}

/// Serves every schema of the embedded registry but lists only `listed` as versions,
/// like a registry that learns of a new producer's schema after start-up.
struct LateRegistry {
    inner: LocalSchemaRegistry,
    listed: Vec<u32>,
    lookups: std::sync::atomic::AtomicUsize,
}

impl SchemaRegistry for LateRegistry {
    fn by_id(&self, id: u32) -> Result<Arc<RegisteredSchema>, EventError> {
        self.lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.by_id(id)
    }
    fn latest(&self, subject: &str) -> crate::error::Result<Arc<RegisteredSchema>> {
        self.inner.latest(subject)
    }
    fn versions(&self, subject: &str) -> Vec<Arc<RegisteredSchema>> {
        self.inner.versions(subject).into_iter().filter(|s| self.listed.contains(&s.id)).collect()
    }
}

#[test]
fn record_decoder_compiles_a_new_id_on_first_sight_from_many_threads() {
    let late = Arc::new(LateRegistry {
        inner: LocalSchemaRegistry::embedded().unwrap(),
        listed: vec![1],
        lookups: Default::default(),
    });
    let dec = RecordDecoder::new(late.clone(), subjects::TRANSACTION, &TX_PATHS[..10]).unwrap();
    let t = tx();
    let v1 = Encoder::for_schema(late.inner.by_id(1).unwrap()).encode(&t).unwrap();
    let v2 = Encoder::for_schema(late.inner.by_id(6).unwrap()).encode(&t).unwrap();
    std::thread::scope(|scope| {
        for k in 0..4 {
            let (dec, v1, v2, t) = (&dec, &v1, &v2, &t);
            scope.spawn(move || {
                for i in 0..200 {
                    let bytes = if (i + k) % 2 == 0 { v1 } else { v2 };
                    assert_eq!(dec.decode(bytes).unwrap().values, tx_values(t));
                }
            });
        }
    });
    let lookups = late.lookups.load(std::sync::atomic::Ordering::Relaxed);
    assert!((1..=4).contains(&lookups), "id 6 looked up {lookups} times, then cached");
    fn shareable<T: Send + Sync>() {}
    shareable::<RecordDecoder>();
    shareable::<PathDecoder>();
}

#[test]
fn an_older_version_the_paths_cannot_read_is_refused_per_event() {
    let mut reg = LocalSchemaRegistry::default();
    let old = r#"{"type": "record", "name": "P", "fields": [{"name": "amount", "type": {"type": "record", "name": "M", "fields": [{"name": "units", "type": "long"}]}}]}"#;
    let new = r#"{"type": "record", "name": "P", "fields": [{"name": "amount", "type": "double"}]}"#;
    reg.register(1, "pay", "old.avsc", old.into()).unwrap();
    reg.register(2, "pay", "new.avsc", new.into()).unwrap();
    let reg: Arc<dyn SchemaRegistry> = Arc::new(reg);
    let dec = RecordDecoder::new(reg, "pay", &["amount"]).unwrap();
    let err = dec.decode(&[0, 0, 0, 0, 1, 0x02]).unwrap_err();
    assert_eq!(err.class, ErrorClass::UnknownSchema);
    assert!(err.message.contains("schema id 1 of subject pay cannot be read with the field paths"), "{}", err.message);
    assert!(err.message.contains("names record M"), "{}", err.message);
    let ok = dec.decode(&[0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]).unwrap();
    assert_eq!(ok.values, [FieldValue::Float(1.0)]);
}
