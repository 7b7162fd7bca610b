//! Errors of `weir-scorer`. Loading errors mean "this model version must not serve"
//! (keep the old one, or stop at start-up); scoring errors mean the batch failed.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read model file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("model metadata {path} is not valid: {message}")]
    Metadata { path: String, message: String },
    #[error("model {version}: checksum mismatch, metadata says {expected}, file is {actual}")]
    Checksum { version: String, expected: String, actual: String },
    #[error("model {version}: feature list does not match the configured features: {message}")]
    FeatureMismatch { version: String, message: String },
    #[error("model {version}: uses ONNX ops weir's tract cannot run: {}", .ops.join(", "))]
    UnsupportedOp { version: String, ops: Vec<String> },
    #[error("model {version}: tract cannot load it: {message}")]
    Load { version: String, message: String },
    #[error("model {version}: canary row {row} scored {score}, expected a finite value in [0, 1]")]
    Canary { version: String, row: usize, score: f32 },
    #[error("scoring failed with model {version}: {message}")]
    Run { version: String, message: String },
    #[error("model registry {path}: {message}")]
    Registry { path: String, message: String },
    #[error("invalid scorer configuration: {}", .0.join("; "))]
    Config(Vec<String>),
}

impl Error {
    /// A short label for metrics and logs: why a version was refused.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Metadata { .. } => "metadata",
            Error::Checksum { .. } => "checksum",
            Error::FeatureMismatch { .. } => "feature_mismatch",
            Error::UnsupportedOp { .. } => "unsupported_op",
            Error::Load { .. } => "load",
            Error::Canary { .. } => "canary",
            Error::Run { .. } => "run",
            Error::Registry { .. } => "registry",
            Error::Config(_) => "config",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
