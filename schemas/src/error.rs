//! Errors of the `schemas` crate.
//!
//! Two families, because callers act on them differently:
//! - [`EventError`]: one event is bad. The caller dead-letters it and moves on; the class
//!   ([`ErrorClass`]) travels with the dead letter so that a person can triage it.
//! - [`SchemaError`]: weir's own schema set is unusable (a bad `.avsc`, a broken id map).
//!   This is configuration: the caller stops at start-up.

use std::fmt;

/// The class of a bad event. Stable strings: they go into dead-letter headers and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The bytes are not a framed Avro datum of the writer schema: truncated, wrong magic
    /// byte, a body that does not decode.
    Malformed,
    /// The schema id is not registered, or names a schema this reader cannot read.
    UnknownSchema,
    /// The event decodes but breaks a validation rule (the field and value are named).
    Invalid,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 3] = [ErrorClass::Malformed, ErrorClass::UnknownSchema, ErrorClass::Invalid];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Malformed => "Malformed",
            ErrorClass::UnknownSchema => "UnknownSchema",
            ErrorClass::Invalid => "Invalid",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorClass> {
        ErrorClass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one event was refused. What to do with it: dead-letter it, never retry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct EventError {
    pub class: ErrorClass,
    /// The offending field, for [`ErrorClass::Invalid`].
    pub field: Option<&'static str>,
    /// Lowercase, carries the bad value (a short prefix of it: [`crate::bounded::quote`]);
    /// at most [`crate::bounded::MAX_MESSAGE_BYTES`], the constructors cut it.
    pub message: String,
}

impl EventError {
    pub fn malformed(message: impl Into<String>) -> Self {
        EventError { class: ErrorClass::Malformed, field: None, message: crate::bounded::cap(message.into()) }
    }

    pub fn unknown_schema(message: impl Into<String>) -> Self {
        EventError { class: ErrorClass::UnknownSchema, field: None, message: crate::bounded::cap(message.into()) }
    }

    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        EventError { class: ErrorClass::Invalid, field: Some(field), message: crate::bounded::cap(message.into()) }
    }
}

/// weir's schema set itself is broken. What to do: stop, fix the schema files or id map.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read schema map {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("schema map {path} is not valid: {message}")]
    Map { path: String, message: String },
    #[error("schema id {id} ({file}) does not parse: {message}")]
    Parse { id: u32, file: String, message: String },
    #[error("schema id {id} is registered twice")]
    DuplicateId { id: u32 },
    #[error("no schema registered for subject {subject}")]
    MissingSubject { subject: String },
    #[error("cannot encode {what} with schema id {id}: {message}")]
    Encode { what: &'static str, id: u32, message: String },
}

/// Field paths cannot be read from a writer schema. What to do: stop and fix the feature
/// definitions (or the schema); this is configuration, found when the decoder is built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PathError {
    /// The path is not well formed, or the writer schema gives it no readable value (it goes
    /// through a non-record, or names a record, an array or a map).
    #[error("field path {path:?}{}: {message}", in_schema(*schema_id))]
    Path { path: String, schema_id: Option<u32>, message: String },
    /// The writer schema itself cannot carry field paths (not a record, does not parse).
    #[error("writer schema{}: {message}", in_schema(*schema_id))]
    Schema { schema_id: Option<u32>, message: String },
    /// The subject the decoder is for has no usable schema in the registry.
    #[error("subject {subject}: {message}")]
    Subject { subject: String, message: String },
}

fn in_schema(schema_id: Option<u32>) -> String {
    schema_id.map(|id| format!(" (schema id {id})")).unwrap_or_default()
}

/// An online feature store failed. [`StoreError::is_retryable`] says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or timed out: retry the whole batch.
    #[error("feature store unavailable: {0}")]
    Unavailable(String),
    /// The store answered something weir cannot interpret: stop, a person must look.
    #[error("feature store returned an unexpected reply: {0}")]
    Protocol(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type Result<T, E = SchemaError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_class_strings_are_stable_and_parse_back() {
        assert_eq!(
            ErrorClass::ALL.map(ErrorClass::as_str),
            ["Malformed", "UnknownSchema", "Invalid"]
        );
        for class in ErrorClass::ALL {
            assert_eq!(ErrorClass::parse(class.as_str()), Some(class));
            assert_eq!(class.to_string(), class.as_str());
        }
        assert_eq!(ErrorClass::parse("malformed"), None);
        assert_eq!(ErrorClass::parse(""), None);
    }

    #[test]
    fn event_error_constructors() {
        let e = EventError::invalid("amount", "amount -1 is outside [0, 10]");
        assert_eq!((e.class, e.field), (ErrorClass::Invalid, Some("amount")));
        assert_eq!(e.to_string(), "Invalid: amount -1 is outside [0, 10]");
        let e = EventError::malformed("short");
        assert_eq!((e.class, e.field), (ErrorClass::Malformed, None));
        let e = EventError::unknown_schema("id 9");
        assert_eq!((e.class, e.field, e.to_string().as_str()), (ErrorClass::UnknownSchema, None, "UnknownSchema: id 9"));
    }

    #[test]
    fn event_error_messages_are_capped_at_the_source() {
        // Regression (issue 24): a 600 KB value copied into a message made an
        // undeliverable dead letter.
        let e = EventError::malformed(format!("avro body does not decode: {}", "z".repeat(600_000)));
        assert!(e.message.len() <= crate::bounded::MAX_MESSAGE_BYTES);
        assert!(e.message.ends_with(crate::bounded::TRUNCATED_MARK));
    }

    #[test]
    fn only_unavailable_store_errors_are_retryable() {
        assert!(StoreError::Unavailable("timeout".into()).is_retryable());
        assert!(!StoreError::Protocol("bad reply".into()).is_retryable());
    }
}
