//! Errors of `weir-online-learner`, by what the caller should do.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad configuration: stop and fix it. Every problem is listed.
    #[error("invalid learner configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// Redis did not answer or refused a command. Retry: nothing of the batch was applied
    /// (the checkpoint is one MULTI/EXEC transaction).
    #[error("redis {context}: {source}")]
    Redis { context: String, source: redis::RedisError },
    /// The stored checkpoint cannot be read back (corrupt, or written by an incompatible
    /// learner). Stop: learning on from nothing would relearn labels.
    #[error("checkpoint {key}: {message}")]
    Checkpoint { key: String, message: String },
    /// Another process took this learner's lease (this one was paused or cut off longer
    /// than `lease_ms`): stop without writing; the holder of the newer token goes on.
    #[error("learner lease lost: this process holds fencing token {token}, the lease is now at token {current}; another learner with this name took over")]
    LeaseLost { token: u64, current: String },
    /// The learner cannot use these features (a new feature set without a new learner).
    #[error("feature mismatch: {0}")]
    Features(String),
    /// linfa refused an update (it never should with checked parameters).
    #[error("learner update failed: {0}")]
    Learn(String),
    /// Building or writing the ONNX export failed.
    #[error("onnx export: {0}")]
    Export(String),
    #[error("io on {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl Error {
    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Redis { .. })
    }

    pub(crate) fn redis(context: impl Into<String>, source: redis::RedisError) -> Self {
        Error::Redis { context: context.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
