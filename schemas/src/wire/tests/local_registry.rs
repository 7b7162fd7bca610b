//! The local registry: the embedded schemas, and map files read from disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{ErrorClass, SchemaError};
use crate::wire::{subjects, LocalSchemaRegistry, SchemaRegistry};

fn registry() -> Arc<dyn SchemaRegistry> {
    Arc::new(LocalSchemaRegistry::embedded().expect("embedded registry parses"))
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

const LABEL_AVSC: &str = include_str!("../../../avro/label.avsc");

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
    for id in 1..=9 {
        let (a, b) = (from_file.by_id(id).unwrap(), embedded.by_id(id).unwrap());
        assert_eq!((&a.subject, &a.text), (&b.subject, &b.text), "id {id}");
    }
    assert!(from_file.by_id(10).is_err() && embedded.by_id(10).is_err());
}
