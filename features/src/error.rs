//! Errors of `weir-features`: configuration problems (stop) and store failures
//! (`weir_schemas::StoreError`, which says whether to retry).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The feature configuration is unusable; every problem is listed.
    #[error("invalid feature configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error(transparent)]
    Store(#[from] weir_schemas::StoreError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
