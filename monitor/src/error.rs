//! Errors of the monitor. Every one of them is a configuration or reference problem the
//! caller should fix (stop and report), never a condition worth retrying.

/// What went wrong building a drift statistic or a detector.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum MonitorError {
    /// A reference sample needs at least one finite value to define bins.
    #[error("reference sample has no finite values ({len} values given)")]
    EmptyReference { len: usize },
    /// A parameter is outside its documented range.
    #[error("invalid parameter {name} = {value}: {expected}")]
    InvalidParameter { name: &'static str, value: String, expected: &'static str },
    /// The metrics exporter could not start (address in use, ...).
    #[error("{0}")]
    Exporter(String),
}

pub type Result<T> = std::result::Result<T, MonitorError>;

pub(crate) fn invalid(name: &'static str, value: impl std::fmt::Display, expected: &'static str) -> MonitorError {
    MonitorError::InvalidParameter { name, value: value.to_string(), expected }
}
