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
    /// The graph's declared input width is not the metadata's feature count: scoring
    /// would feed columns the model does not expect (tract would otherwise accept the
    /// wider row and silently drop or misplace features; onnxruntime refuses it).
    /// `declared` says what the graph wants: its declared shape, and for a symbolic width
    /// the node that needs another width.
    #[error("model {version}: graph input {input:?} {declared}, but the metadata lists {features} features (weir feeds [batch, {features}])")]
    InputWidth { version: String, input: String, declared: String, features: usize },
    /// `positive_class_index` names a column the output does not have (or the output is
    /// not `[batch, classes]`).
    #[error("model {version}: positive_class_index {index} is out of range for output {output:?} of shape {shape}")]
    PositiveClass { version: String, index: usize, output: String, shape: String },
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
            Error::InputWidth { .. } => "input_width",
            Error::PositiveClass { .. } => "positive_class",
            Error::Load { .. } => "load",
            Error::Canary { .. } => "canary",
            Error::Run { .. } => "run",
            Error::Registry { .. } => "registry",
            Error::Config(_) => "config",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
