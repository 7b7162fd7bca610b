//! Errors of the registry client, by what the caller should do about them.
//!
//! No message ever carries a credential: the URL is refused with user info in it (see
//! [`crate::ClientSettings::new`]) and passwords and tokens are [`weir_schemas::secret::Secret`]s.

use std::time::Duration;

/// What went wrong talking to the registry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The registry could not be reached, or answered 5xx, on every attempt. Retry later:
    /// at start-up weir stops with this after its retry budget.
    #[error("schema registry {url} is unreachable: {attempts} attempt(s) over {:.1} s, last: {last}", elapsed.as_secs_f64())]
    Unreachable { url: String, attempts: u32, elapsed: Duration, last: String },
    /// 401 or 403: the credentials are wrong or missing. Stop and fix the configuration
    /// (`schemas.basic_auth_*` or `schemas.bearer_token_*`); retrying cannot help.
    #[error("schema registry {url} refused the credentials (http {status}) on {what}: check schemas.basic_auth_user / basic_auth_password_* or bearer_token_*")]
    Unauthorized { url: String, status: u16, what: String },
    /// The TLS handshake failed: the registry's certificate is not trusted (or not for
    /// this host). Stop and fix `schemas.ca_file` or the URL; retrying cannot help.
    #[error("tls with the schema registry {url} failed: {message}: check schemas.ca_file (the CA that signs the registry's certificate) and the host name")]
    Tls { url: String, message: String },
    /// The registry answered with an error of its own (`error_code`, `message`), e.g.
    /// 40401 subject not found, 40403 schema not found, 409 incompatible schema.
    #[error("schema registry {url}: {what} failed with http {status} (error code {code}): {message}")]
    Api { url: String, what: String, status: u16, code: i64, message: String },
    /// The reply is not what the Confluent REST API documents.
    #[error("schema registry {url}: {what} gave an unexpected reply: {message}")]
    BadReply { url: String, what: String, message: String },
    /// A schema from the registry does not parse, or weir's own does not.
    #[error("{0}")]
    Schema(String),
    /// The settings cannot work (a URL with credentials in it, an unreadable CA file).
    #[error("schema registry settings: {0}")]
    Settings(String),
}

impl Error {
    /// Whether trying again may succeed: the registry was unreachable or overloaded.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } => true,
            Error::Api { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The registry's own error code, when it answered with one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// `Error::Api` codes weir acts on (Confluent's documented values).
pub mod codes {
    /// The subject does not exist.
    pub const SUBJECT_NOT_FOUND: i64 = 40401;
    /// The version does not exist.
    pub const VERSION_NOT_FOUND: i64 = 40402;
    /// The schema (id) does not exist.
    pub const SCHEMA_NOT_FOUND: i64 = 40403;
    /// The schema is incompatible with an earlier version of the subject.
    pub const INCOMPATIBLE: i64 = 409;
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
