//! [`ClientSettings`]: where the registry is, how to authenticate, how long to wait.

use std::path::PathBuf;
use std::time::Duration;

use weir_schemas::secret::Secret;

use crate::error::{Error, Result};

/// How weir authenticates to the registry.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// HTTP basic authentication (Confluent Cloud: API key and secret).
    Basic { user: String, password: Secret },
    /// `Authorization: Bearer <token>` (OAuth-fronted registries).
    Bearer(Secret),
}

/// Everything the client needs. `Debug` shows no secret (they are [`Secret`]s).
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// `http://host:port[/path]` or `https://…`, without a trailing slash and without
    /// user info.
    pub url: String,
    pub auth: Auth,
    /// PEM file of the CA(s) that sign the registry's certificate (`https` only). Without
    /// it, the webpki roots (Mozilla's list) are trusted.
    pub ca_file: Option<PathBuf>,
    /// Per request: connect, send, and read the whole reply.
    pub request_timeout: Duration,
    /// At start-up, how long to keep retrying an unreachable registry (with exponential
    /// backoff) before giving up with [`Error::Unreachable`].
    pub startup_timeout: Duration,
    /// Tries of one schema-id lookup while running, when the registry says it does not
    /// know the id (a replica that has not caught up yet) or cannot be reached.
    pub lookup_attempts: u32,
    /// Wait before the second try of a lookup; doubled for each further one.
    pub lookup_backoff: Duration,
    /// How long an id that failed every try is answered as unknown without asking
    /// again, so that a stream of messages with a bad id costs one lookup per period,
    /// not one per message.
    pub unknown_id_ttl: Duration,
}

impl ClientSettings {
    /// Defaults around `url`: 5 s per request, 30 s of start-up retries, 3 lookup tries
    /// 100 ms apart (doubling), unknown ids remembered for 10 s. Refuses a URL that is not
    /// http(s) or that carries credentials (they would be printed with every error).
    pub fn new(url: &str) -> Result<Self> {
        let url = url.trim_end_matches('/').to_string();
        let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) else {
            return Err(Error::Settings(format!("registry url {url:?} must start with http:// or https://")));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.contains('@') {
            return Err(Error::Settings(
                "registry url carries credentials (user:password@): give them as schemas.basic_auth_user and basic_auth_password_env / _file instead".into(),
            ));
        }
        if authority.is_empty() {
            return Err(Error::Settings(format!("registry url {url:?} has no host")));
        }
        Ok(ClientSettings {
            url,
            auth: Auth::None,
            ca_file: None,
            request_timeout: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(30),
            lookup_attempts: 3,
            lookup_backoff: Duration::from_millis(100),
            unknown_id_ttl: Duration::from_secs(10),
        })
    }

    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_credentials_or_other_schemes_are_refused() {
        assert_eq!(ClientSettings::new("http://sr:8081/").unwrap().url, "http://sr:8081");
        assert!(ClientSettings::new("https://sr.example.com/api").unwrap().is_https());
        for bad in ["sr:8081", "ftp://sr", "http://", "https://user:pa55@sr:8081"] {
            let err = ClientSettings::new(bad).unwrap_err().to_string();
            assert!(!err.contains("pa55"), "{err}");
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let mut s = ClientSettings::new("http://sr:8081").unwrap();
        s.auth = Auth::Basic { user: "weir".into(), password: Secret::new("pa55-sentinel") };
        let shown = format!("{s:?}");
        assert!(shown.contains("weir") && !shown.contains("pa55-sentinel"), "{shown}");
        s.auth = Auth::Bearer(Secret::new("tok-sentinel"));
        assert!(!format!("{s:?}").contains("tok-sentinel"));
    }
}
