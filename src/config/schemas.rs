//! `[schemas]`: where schema ids come from — weir's compiled-in map, a map file, or a
//! Confluent-compatible Schema Registry (`registry_url`).
//!
//! Secrets (the basic-auth password, the bearer token) are never written in the file:
//! each is named by an environment variable (`*_env`) or a file (`*_file`, as Kubernetes
//! and Docker mount secrets), read when weir starts.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemasConfig {
    /// An id → `.avsc` map file like `schemas/avro/registry.json`. Default: weir's own
    /// schemas, compiled in. Not with `registry_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_map: Option<PathBuf>,
    /// A Confluent-compatible Schema Registry, `http://host:port` or `https://…`, without
    /// credentials in it. With it, input messages are decoded with the writer schema
    /// their id names (fetched from the registry, once per id), and weir's output schemas
    /// are registered at start under `subjects` and framed with the registry's ids.
    /// Default: none (the compiled-in map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_url: Option<String>,
    /// User for HTTP basic authentication (Confluent Cloud: the API key). Needs
    /// `basic_auth_password_env` or `basic_auth_password_file`. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth_user: Option<String>,
    /// Environment variable holding the basic-auth password (the API secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth_password_env: Option<String>,
    /// File holding the basic-auth password (one line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth_password_file: Option<PathBuf>,
    /// Environment variable holding a bearer token (`Authorization: Bearer …`). Not with
    /// basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// File holding a bearer token (one line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// PEM file of the CA(s) that sign the registry's certificate (`https` only).
    /// Default: the webpki roots (Mozilla's list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Timeout of one request to the registry, in milliseconds. Default 5000.
    #[serde(default = "d_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// How long weir keeps retrying an unreachable registry at start (exponential
    /// backoff from 200 ms, at most 5 s apart) before it stops with an error, in
    /// milliseconds. Default 30000.
    #[serde(default = "d_startup_timeout_ms")]
    pub startup_timeout_ms: u64,
    /// Tries of one schema-id lookup while running, when the registry does not know the
    /// id (yet: a replica catching up) or cannot be reached; after the last, the message
    /// is dead-lettered as `UnknownSchema`. Default 3.
    #[serde(default = "d_lookup_attempts")]
    pub lookup_attempts: u32,
    /// Wait before the second try of a lookup, doubled for each further one, in
    /// milliseconds. Default 100.
    #[serde(default = "d_lookup_backoff_ms")]
    pub lookup_backoff_ms: u64,
    /// How long an id that failed every try is dead-lettered without asking the registry
    /// again, in milliseconds (a stream of messages with a bad id costs one lookup per
    /// period). Default 10000.
    #[serde(default = "d_unknown_id_ttl_ms")]
    pub unknown_id_ttl_ms: u64,
    /// Registry subjects of weir's topics. Each defaults to TopicNameStrategy,
    /// `<topic>-value`.
    #[serde(default)]
    pub subjects: RegistrySubjects,
}

/// `[schemas.subjects]`: the registry subject of each topic weir reads or writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySubjects {
    /// Subject of the input topic's records: its latest schema must have the configured
    /// field paths. Default `<kafka.topics.input>-value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Subject weir registers its score schema under. Default `<kafka.topics.scores>-value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<String>,
    /// Subject of the challenger's shadow scores. Default `<scorer.shadow_topic>-value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_scores: Option<String>,
    /// Subject weir registers its label schema under (labels are read by the monitor and
    /// the learner, and written by `weir produce`). Default `<kafka.topics.labels>-value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// Subject weir registers its drift-alert schema under. Default
    /// `<monitor.alerts_topic>-value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<String>,
}

fn d_request_timeout_ms() -> u64 {
    5_000
}
fn d_startup_timeout_ms() -> u64 {
    30_000
}
fn d_lookup_attempts() -> u32 {
    3
}
fn d_lookup_backoff_ms() -> u64 {
    100
}
fn d_unknown_id_ttl_ms() -> u64 {
    10_000
}

impl Default for SchemasConfig {
    fn default() -> Self {
        SchemasConfig {
            registry_map: None,
            registry_url: None,
            basic_auth_user: None,
            basic_auth_password_env: None,
            basic_auth_password_file: None,
            bearer_token_env: None,
            bearer_token_file: None,
            ca_file: None,
            request_timeout_ms: d_request_timeout_ms(),
            startup_timeout_ms: d_startup_timeout_ms(),
            lookup_attempts: d_lookup_attempts(),
            lookup_backoff_ms: d_lookup_backoff_ms(),
            unknown_id_ttl_ms: d_unknown_id_ttl_ms(),
            subjects: RegistrySubjects::default(),
        }
    }
}

impl SchemasConfig {
    /// Every problem with this section, each naming the field (never a secret's value,
    /// and never a URL that carries credentials).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Some(map) = &self.registry_map
            && !map.is_file()
        {
            p.push(format!("schemas.registry_map {} does not exist", map.display()));
        }
        let basic_password = [self.basic_auth_password_env.is_some(), self.basic_auth_password_file.is_some()];
        let bearer = [self.bearer_token_env.is_some(), self.bearer_token_file.is_some()];
        let Some(url) = &self.registry_url else {
            let set = self.basic_auth_user.is_some()
                || basic_password.contains(&true)
                || bearer.contains(&true)
                || self.ca_file.is_some()
                || self.subjects != RegistrySubjects::default();
            if set {
                p.push("schemas: registry credentials, ca_file or subjects are set but schemas.registry_url is not".into());
            }
            return p;
        };
        if self.registry_map.is_some() {
            p.push("schemas.registry_map and schemas.registry_url are both set: ids come from one or the other".into());
        }
        let https = url.starts_with("https://");
        match url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")) {
            None => p.push(format!("schemas.registry_url {url:?} must start with http:// or https://")),
            Some(rest) => {
                let authority = rest.split('/').next().unwrap_or_default();
                if authority.contains('@') {
                    // Not printed: it holds a password.
                    p.push("schemas.registry_url carries credentials (user:password@host): give them as schemas.basic_auth_user and basic_auth_password_env or _file".into());
                } else if authority.is_empty() {
                    p.push(format!("schemas.registry_url {url:?} has no host"));
                }
            }
        }
        if basic_password == [true, true] {
            p.push("schemas.basic_auth_password_env and basic_auth_password_file are both set: give one".into());
        }
        if bearer == [true, true] {
            p.push("schemas.bearer_token_env and bearer_token_file are both set: give one".into());
        }
        match (self.basic_auth_user.is_some(), basic_password.contains(&true)) {
            (true, false) => p.push("schemas.basic_auth_user is set without basic_auth_password_env or _file".into()),
            (false, true) => p.push("schemas.basic_auth_password_* is set without basic_auth_user".into()),
            _ => {}
        }
        if self.basic_auth_user.is_some() && bearer.contains(&true) {
            p.push("schemas: basic auth and a bearer token are both set: give one".into());
        }
        for (field, path) in [
            ("basic_auth_password_file", &self.basic_auth_password_file),
            ("bearer_token_file", &self.bearer_token_file),
            ("ca_file", &self.ca_file),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                p.push(format!("schemas.{field} {} does not exist", path.display()));
            }
        }
        if self.ca_file.is_some() && !https {
            p.push("schemas.ca_file is set but schemas.registry_url is not https://".into());
        }
        for (field, v) in [("request_timeout_ms", self.request_timeout_ms), ("startup_timeout_ms", self.startup_timeout_ms)] {
            if v == 0 {
                p.push(format!("schemas.{field} must be > 0"));
            }
        }
        if self.lookup_attempts == 0 {
            p.push("schemas.lookup_attempts must be >= 1".into());
        }
        for (field, subject) in [
            ("input", &self.subjects.input),
            ("scores", &self.subjects.scores),
            ("shadow_scores", &self.subjects.shadow_scores),
            ("labels", &self.subjects.labels),
            ("alerts", &self.subjects.alerts),
        ] {
            if subject.as_deref().is_some_and(str::is_empty) {
                p.push(format!("schemas.subjects.{field} is empty"));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_has_no_registry_and_no_problem() {
        assert!(SchemasConfig::default().problems().is_empty());
    }

    #[test]
    fn every_registry_problem_is_named_and_no_credential_is_printed() {
        let c = SchemasConfig {
            registry_map: Some("/nonexistent/registry.json".into()),
            registry_url: Some("http://weir:pa55-sentinel@sr:8081".into()),
            basic_auth_password_env: Some("SR_PASSWORD".into()),
            basic_auth_password_file: Some("/nonexistent/password".into()),
            bearer_token_env: Some("SR_TOKEN".into()),
            ca_file: Some("/nonexistent/ca.pem".into()),
            lookup_attempts: 0,
            startup_timeout_ms: 0,
            subjects: RegistrySubjects { scores: Some(String::new()), ..Default::default() },
            ..SchemasConfig::default()
        };
        let p = c.problems();
        let all = p.join("\n");
        assert!(!all.contains("pa55-sentinel"), "{all}");
        for needle in [
            "registry_map /nonexistent/registry.json does not exist",
            "both set: ids come from one",
            "carries credentials",
            "basic_auth_password_env and basic_auth_password_file are both set",
            "without basic_auth_user",
            "basic_auth_password_file /nonexistent/password does not exist",
            "ca_file /nonexistent/ca.pem does not exist",
            "ca_file is set but schemas.registry_url is not https",
            "startup_timeout_ms must be > 0",
            "lookup_attempts must be >= 1",
            "subjects.scores is empty",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        let orphan = SchemasConfig { basic_auth_user: Some("weir".into()), ..SchemasConfig::default() };
        assert!(orphan.problems()[0].contains("schemas.registry_url is not"), "{:?}", orphan.problems());
        let bad_scheme = SchemasConfig { registry_url: Some("sr:8081".into()), ..SchemasConfig::default() };
        assert!(bad_scheme.problems()[0].contains("must start with http://"), "{:?}", bad_scheme.problems());
    }
}
