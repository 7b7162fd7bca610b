//! Errors of `weir-ingest`, by what the caller should do.
//!
//! A failure caused by another error keeps it as its `source()`, so that callers can
//! classify it (downcast) and logs can print the whole chain ([`Report`], or `{:#}` once
//! in an `anyhow::Error`); the variant's own message says what was being done.

use std::fmt;

use rdkafka::error::KafkaError;

/// The cause of a [`Error::Handler`]: any error of the stage behind the consumer.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration: stop and fix it. Every problem is listed.
    #[error("invalid kafka configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// The client could not be created or the broker refused an operation. Stop: the
    /// consumer loop has stored no offset for unfinished work, so a restart replays it.
    #[error("kafka {context}: {source}")]
    Kafka { context: String, source: KafkaError },
    /// A produced message was not acknowledged by the broker.
    #[error("delivery to {topic} failed")]
    Delivery { topic: String, source: KafkaError },
    /// Dead letters could not be delivered after every retry, for the reason `class`
    /// (`too_large`, `topic_refused`, `unreachable`, `other`: see
    /// [`crate::dead_letter::DeadLetterFailure`]). Stop: the batch's offsets are not
    /// stored, so a restart replays it once the dead-letter topic is fixed or reachable.
    #[error("dead letters to {topic} not delivered after {attempts} attempts ({class}): {message}")]
    DeadLetter { topic: String, class: &'static str, attempts: u32, message: String },
    /// The stage behind the consumer failed on a batch: `message` says what it was doing,
    /// `source` (when there is one) why it failed.
    #[error("batch handler failed{}: {message}", if *.retryable { " (retryable)" } else { "" })]
    Handler {
        retryable: bool,
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Encoding an event failed (a bug or a schema mismatch): stop.
    #[error(transparent)]
    Schema(#[from] weir_schemas::SchemaError),
}

impl Error {
    pub fn kafka(context: impl Into<String>, source: KafkaError) -> Self {
        Error::Kafka { context: context.into(), source }
    }

    /// The handler failed while doing `message`, because of `source`.
    pub fn handler(retryable: bool, message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Handler { retryable, message: message.into(), source: Some(source.into()) }
    }
}

/// An error and its sources, `: `-separated, for log lines: `Report(&e)`.
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_handler_error_keeps_its_cause() {
        let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, "redis timed out");
        let e = Error::handler(true, "updating the feature store", cause);
        assert_eq!(e.to_string(), "batch handler failed (retryable): updating the feature store");
        let source = e.source().expect("a source");
        assert_eq!(source.downcast_ref::<std::io::Error>().map(|c| c.kind()), Some(std::io::ErrorKind::TimedOut));
        assert_eq!(Report(&e).to_string(), "batch handler failed (retryable): updating the feature store: redis timed out");
    }
}
