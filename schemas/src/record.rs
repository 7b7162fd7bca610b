//! A decoded event as the feature definitions see it: the values of the field paths they
//! name, and nothing else.
//!
//! weir does not require its own event type: a user's topic carries whatever Avro record
//! they produce, and the feature definitions name its fields by *path* (`amount`,
//! `payment.card.id`: record field names joined by dots; a union with `null` is looked
//! through). The decoder for a writer schema (in [`crate::paths`]) materializes only the
//! fields on the list, in the list's order, into an [`EventRecord`]; the feature engine
//! reads them by index.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// The value of one field path in one event.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    /// The writer schema has no such field (an older producer), or a record on the path
    /// was null.
    Missing,
    /// The field is present and null.
    Null,
    Bool(bool),
    /// Avro `int` and `long` (including the `timestamp-millis` logical type).
    Int(i64),
    /// Avro `float` and `double`.
    Float(f64),
    /// Avro `string` and `enum` (the symbol).
    Str(String),
    Bytes(Vec<u8>),
}

impl FieldValue {
    /// The value as a number: ints and floats; booleans as 0/1; anything else `None`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Int(i) => Some(*i as f64),
            FieldValue::Float(f) => Some(*f),
            FieldValue::Bool(b) => Some(*b as u8 as f64),
            _ => None,
        }
    }

    /// The value as an integer: ints, and floats with no fractional part.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            FieldValue::Int(i) => Some(*i),
            FieldValue::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
            _ => None,
        }
    }

    /// The value as text, for entity keys and categories: strings as they are, ints and
    /// booleans rendered in decimal / `true`/`false`; missing, null, floats and bytes `None`.
    pub fn as_key(&self) -> Option<Cow<'_, str>> {
        match self {
            FieldValue::Str(s) => Some(Cow::Borrowed(s.as_str())),
            FieldValue::Int(i) => Some(Cow::Owned(i.to_string())),
            FieldValue::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        }
    }

    /// Missing or null.
    pub fn is_absent(&self) -> bool {
        matches!(self, FieldValue::Missing | FieldValue::Null)
    }
}

/// One decoded event: `values[i]` is the value of the `i`-th requested path.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventRecord {
    pub values: Vec<FieldValue>,
}

impl EventRecord {
    pub fn new(values: Vec<FieldValue>) -> Self {
        EventRecord { values }
    }

    /// The value of the `i`-th requested path (`Missing` past the end).
    pub fn get(&self, i: usize) -> &FieldValue {
        self.values.get(i).unwrap_or(&FieldValue::Missing)
    }

    /// The values of `paths` in a JSON object (`weir serve`'s request body, golden files):
    /// a path walks nested objects; numbers become `Int` when integral and `Float`
    /// otherwise, strings `Str`, booleans `Bool`, `null` `Null`, anything absent (or an
    /// array or object at the end of the path) `Missing`.
    pub fn from_json(value: &serde_json::Value, paths: &[String]) -> Self {
        let values = paths
            .iter()
            .map(|path| {
                let mut at = Some(value);
                for segment in path.split('.') {
                    at = at.and_then(|v| v.as_object()).and_then(|o| o.get(segment));
                }
                match at {
                    None => FieldValue::Missing,
                    Some(serde_json::Value::Null) => FieldValue::Null,
                    Some(serde_json::Value::Bool(b)) => FieldValue::Bool(*b),
                    Some(serde_json::Value::Number(n)) => match n.as_i64() {
                        Some(i) => FieldValue::Int(i),
                        None => n.as_f64().map(FieldValue::Float).unwrap_or(FieldValue::Missing),
                    },
                    Some(serde_json::Value::String(s)) => FieldValue::Str(s.clone()),
                    Some(_) => FieldValue::Missing,
                }
            })
            .collect();
        EventRecord::new(values)
    }
}

/// A `&'static str` for a field path, for errors that name the field
/// ([`crate::EventError`] holds a `&'static str`): each distinct path is leaked once per
/// process, and paths come from the configuration, so there are only as many as it names.
pub fn intern_path(path: &str) -> &'static str {
    static PATHS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let Ok(mut paths) = PATHS.lock() else { return "field" };
    if let Some(p) = paths.get(path) {
        return p;
    }
    let p: &'static str = Box::leak(path.to_string().into_boxed_str());
    paths.insert(p);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(FieldValue::Int(3).as_f64(), Some(3.0));
        assert_eq!(FieldValue::Float(2.5).as_i64(), None);
        assert_eq!(FieldValue::Float(2.0).as_i64(), Some(2));
        assert_eq!(FieldValue::Int(42).as_key().as_deref(), Some("42"));
        assert_eq!(FieldValue::Str("c1".into()).as_key().as_deref(), Some("c1"));
        assert_eq!(FieldValue::Float(1.0).as_key(), None);
        assert!(FieldValue::Null.is_absent() && FieldValue::Missing.is_absent());
        let r = EventRecord::new(vec![FieldValue::Int(1)]);
        assert_eq!(r.get(5), &FieldValue::Missing);
    }

    #[test]
    fn interned_paths_are_leaked_once() {
        let a = intern_path("user.id");
        let b = intern_path(&String::from("user.id"));
        assert_eq!(a, "user.id");
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn json_objects_are_read_by_path() {
        let body = serde_json::json!({
            "event_id": "e1", "user": {"id": "u7", "age": 31}, "price": 9.5, "ok": true, "gone": null
        });
        let paths: Vec<String> = ["event_id", "user.id", "user.age", "price", "ok", "gone", "user.nope", "price.x", "user"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            EventRecord::from_json(&body, &paths).values,
            vec![
                FieldValue::Str("e1".into()),
                FieldValue::Str("u7".into()),
                FieldValue::Int(31),
                FieldValue::Float(9.5),
                FieldValue::Bool(true),
                FieldValue::Null,
                FieldValue::Missing,
                FieldValue::Missing,
                FieldValue::Missing,
            ]
        );
    }
}
