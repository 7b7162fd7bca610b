//! Errors of `weir-ingest`, by what the caller should do.

use rdkafka::error::KafkaError;

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
    #[error("delivery to {topic} failed: {message}")]
    Delivery { topic: String, message: String },
    /// The stage behind the consumer failed on a batch.
    #[error("batch handler failed{}: {message}", if *.retryable { " (retryable)" } else { "" })]
    Handler { retryable: bool, message: String },
    /// Encoding an event failed (a bug or a schema mismatch): stop.
    #[error(transparent)]
    Schema(#[from] weir_schemas::SchemaError),
}

impl Error {
    pub fn kafka(context: impl Into<String>, source: KafkaError) -> Self {
        Error::Kafka { context: context.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
