//! [`RestClient`]: the five calls of the Confluent REST API weir makes, over blocking
//! HTTP/1.1, and the classification of what comes back.
//!
//! - `GET /schemas/ids/{id}`: a writer schema by the id in a message;
//! - `GET /schemas/ids/{id}/versions`: the subjects that id is registered under (so that
//!   a decoder can tell its own subject's new versions from another subject's schemas);
//! - `POST /subjects/{subject}/versions`: registers weir's output schema (idempotent: an
//!   identical schema gets its existing id back);
//! - `GET /subjects/{subject}/versions/latest`: the input subject's latest schema, to
//!   check the configured field paths against at start-up;
//! - `POST /compatibility/subjects/{subject}/versions/latest?verbose=true`: whether
//!   weir's schema may be registered, with the registry's reasons when not.

use std::io::Read as _;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};

use crate::error::{Error, Result};
use crate::settings::{Auth, ClientSettings};

/// The media type of the API's requests and replies.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
const ACCEPT: &str = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json";
/// Replies are schemas (tens of KiB at most); a bigger one is refused, not buffered.
const MAX_REPLY_BYTES: u64 = 8 * 1024 * 1024;

/// A schema as the registry gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FetchedSchema {
    /// The schema text (Avro JSON).
    pub schema: String,
    /// `AVRO` when absent.
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
}

/// One version of a subject (`GET /subjects/{s}/versions/latest`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: i64,
    pub id: u32,
    pub schema: String,
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
}

/// One subject an id is registered under (`GET /schemas/ids/{id}/versions`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IdSubject {
    pub subject: String,
    pub version: i64,
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

#[derive(Deserialize)]
struct Compatibility {
    is_compatible: bool,
    #[serde(default)]
    messages: Vec<String>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    message: String,
}

/// Blocking calls to one registry. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct RestClient {
    base: Arc<str>,
    agent: ureq::Agent,
    /// The whole `Authorization` header value, built once.
    authorization: Option<Arc<weir_schemas::secret::Secret>>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient").field("url", &self.base).field("auth", &self.authorization.is_some()).finish()
    }
}

impl RestClient {
    pub fn new(settings: &ClientSettings) -> Result<Self> {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(settings.request_timeout))
            // Error statuses are replies to classify, not transport failures.
            .http_status_as_error(false)
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            if !settings.is_https() {
                return Err(Error::Settings(format!("ca_file {} is given but the registry url is not https", path.display())));
            }
            let pem = std::fs::read(path)
                .map_err(|e| Error::Settings(format!("cannot read ca_file {}: {e}", path.display())))?;
            let mut certs = Vec::new();
            for item in parse_pem(&pem) {
                match item {
                    Ok(PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => return Err(Error::Settings(format!("ca_file {}: {e}", path.display()))),
                }
            }
            if certs.is_empty() {
                return Err(Error::Settings(format!("ca_file {} holds no PEM certificate", path.display())));
            }
            config = config.tls_config(TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(certs))).build());
        }
        let authorization = match &settings.auth {
            Auth::None => None,
            Auth::Basic { user, password } => {
                let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
                Some(Arc::new(weir_schemas::secret::Secret::new(format!("Basic {token}"))))
            }
            Auth::Bearer(token) => Some(Arc::new(weir_schemas::secret::Secret::new(format!("Bearer {}", token.expose())))),
        };
        Ok(RestClient { base: settings.url.as_str().into(), agent: config.build().new_agent(), authorization })
    }

    /// The registry's URL (no credentials: [`ClientSettings::new`] refuses them).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /schemas/ids/{id}`.
    pub fn schema_by_id(&self, id: u32) -> Result<FetchedSchema> {
        let what = format!("get schema id {id}");
        self.call(&what, "GET", &format!("/schemas/ids/{id}"), None)
    }

    /// `GET /schemas/ids/{id}/versions`.
    pub fn subjects_of_id(&self, id: u32) -> Result<Vec<IdSubject>> {
        let what = format!("get the subjects of schema id {id}");
        self.call(&what, "GET", &format!("/schemas/ids/{id}/versions"), None)
    }

    /// `POST /subjects/{subject}/versions`: the id of `schema` under `subject`.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        let what = format!("register a schema under subject {subject}");
        let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" });
        let reply: Registered = self.call(&what, "POST", &format!("/subjects/{}/versions", encode(subject)), Some(&body))?;
        Ok(reply.id)
    }

    /// `GET /subjects/{subject}/versions/latest`.
    pub fn latest(&self, subject: &str) -> Result<SubjectVersion> {
        let what = format!("get the latest schema of subject {subject}");
        self.call(&what, "GET", &format!("/subjects/{}/versions/latest", encode(subject)), None)
    }

    /// `POST /compatibility/subjects/{subject}/versions/latest?verbose=true`: `Ok(None)`
    /// when `schema` may be registered, `Ok(Some(reasons))` when not.
    pub fn check_compatibility(&self, subject: &str, schema: &str) -> Result<Option<Vec<String>>> {
        let what = format!("check compatibility with subject {subject}");
        let body = serde_json::json!({ "schema": schema, "schemaType": "AVRO" });
        let path = format!("/compatibility/subjects/{}/versions/latest?verbose=true", encode(subject));
        let reply: Compatibility = self.call(&what, "POST", &path, Some(&body))?;
        Ok((!reply.is_compatible).then_some(reply.messages))
    }

    fn call<T: for<'de> Deserialize<'de>>(
        &self,
        what: &str,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let unreachable = |last: String| Error::Unreachable { url: self.base.to_string(), attempts: 1, elapsed: Default::default(), last };
        let response = match (method, body) {
            ("GET", _) => {
                let mut req = self.agent.get(&url).header("Accept", ACCEPT);
                if let Some(auth) = &self.authorization {
                    req = req.header("Authorization", auth.expose());
                }
                req.call()
            }
            (_, body) => {
                let mut req = self.agent.post(&url).header("Accept", ACCEPT).header("Content-Type", CONTENT_TYPE);
                if let Some(auth) = &self.authorization {
                    req = req.header("Authorization", auth.expose());
                }
                let bytes = body.map(|b| b.to_string()).unwrap_or_default();
                req.send(bytes.as_bytes())
            }
        };
        let mut response = response.map_err(|e| match tls_failure(&e) {
            Some(message) => Error::Tls { url: self.base.to_string(), message },
            None => unreachable(e.to_string()),
        })?;
        let status = response.status().as_u16();
        let mut text = String::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_REPLY_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| unreachable(format!("reading the reply: {e}")))?;
        let bad = |message: String| Error::BadReply { url: self.base.to_string(), what: what.to_string(), message };
        match status {
            200..=299 => serde_json::from_str(&text).map_err(|e| bad(format!("{e} in {}", preview(&text)))),
            401 | 403 => Err(Error::Unauthorized { url: self.base.to_string(), status, what: what.to_string() }),
            _ => {
                // Confluent's error body; a proxy in front may answer with anything.
                let (code, message) = match serde_json::from_str::<ApiError>(&text) {
                    Ok(e) => (if e.error_code == 0 { i64::from(status) } else { e.error_code }, e.message),
                    Err(_) => (i64::from(status), preview(&text)),
                };
                Err(Error::Api { url: self.base.to_string(), what: what.to_string(), status, code, message })
            }
        }
    }
}

/// The TLS failure in `e`, if it is one (rustls reports a refused certificate as an I/O
/// error wrapping its own).
fn tls_failure(e: &ureq::Error) -> Option<String> {
    match e {
        ureq::Error::Tls(m) => Some(m.to_string()),
        ureq::Error::Rustls(r) => Some(r.to_string()),
        ureq::Error::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()).map(|r| r.to_string()),
        _ => None,
    }
}

/// Percent-encodes a subject for a URL path (topic names are safe; user subjects may not be).
fn encode(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for b in subject.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The start of a reply, for an error message.
fn preview(text: &str) -> String {
    weir_schemas::bounded::quote(text.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_percent_encoded() {
        assert_eq!(encode("payments.v1-value"), "payments.v1-value");
        assert_eq!(encode("a b/c:d"), "a%20b%2Fc%3Ad");
    }

    #[test]
    fn an_unreadable_or_empty_ca_file_is_a_settings_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = ClientSettings::new("https://sr:8081").unwrap();
        settings.ca_file = Some(dir.path().join("missing.pem"));
        assert!(matches!(RestClient::new(&settings), Err(Error::Settings(m)) if m.contains("missing.pem")));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        settings.ca_file = Some(empty);
        assert!(matches!(RestClient::new(&settings), Err(Error::Settings(m)) if m.contains("no PEM certificate")));
        let mut plain = ClientSettings::new("http://sr:8081").unwrap();
        plain.ca_file = Some(dir.path().join("x.pem"));
        assert!(matches!(RestClient::new(&plain), Err(Error::Settings(m)) if m.contains("not https")));
    }
}
