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
    #[error("model {version}: tract cannot load it: {message}")]
    Load { version: String, message: String },
    #[error("model {version}: canary row {row} scored {score}, expected a finite value in [0, 1]")]
    Canary { version: String, row: usize, score: f32 },
    #[error("scoring failed with model {version}: {message}")]
    Run { version: String, message: String },
    #[error("invalid scorer configuration: {}", .0.join("; "))]
    Config(Vec<String>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
