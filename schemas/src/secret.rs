//! [`Secret`]: a password or token that never shows up in logs, errors or dumps.
//!
//! The value is only reachable through [`Secret::expose`], so every place that sends it
//! somewhere (an HTTP header, a SASL handshake) is one grep away. `Debug`, `Display` and
//! `Serialize` print `***`; there is deliberately no `Deserialize`: a secret is read from
//! an environment variable or a file ([`Secret::from_env`], [`Secret::from_file`]), never
//! from the TOML itself, which tends to end up in repositories and bug reports.
//!
//! ```
//! use weir_schemas::secret::Secret;
//! let token = Secret::new("s3cr3t");
//! assert_eq!(format!("{token} {token:?}"), "*** ***");
//! assert_eq!(token.expose(), "s3cr3t");
//! ```

use std::fmt;
use std::path::Path;

/// What a secret prints as, everywhere.
pub const REDACTED: &str = "***";

/// A password or token. Compared in constant time is not needed here (weir never checks
/// secrets, it only sends them), so `PartialEq` is not implemented at all.
#[derive(Clone)]
pub struct Secret(String);

/// Why a secret could not be read. Names the variable or file, never the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set (or not UTF-8)")]
    MissingEnv(String),
    #[error("environment variable {0} is empty")]
    EmptyEnv(String),
    #[error("cannot read secret file {path}: {message}")]
    File { path: String, message: String },
    #[error("secret file {0} is empty")]
    EmptyFile(String),
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value of environment variable `name` (it must be set and non-empty).
    pub fn from_env(name: &str) -> Result<Self, SecretError> {
        Self::from_lookup(name, |k| std::env::var(k).ok())
    }

    /// [`Secret::from_env`] with the environment given as a function (for tests and for
    /// configuration layering).
    pub fn from_lookup(name: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, SecretError> {
        match env(name) {
            None => Err(SecretError::MissingEnv(name.to_string())),
            Some(v) if v.is_empty() => Err(SecretError::EmptyEnv(name.to_string())),
            Some(v) => Ok(Secret(v)),
        }
    }

    /// The content of a file (Kubernetes and Docker secrets are mounted as files), without
    /// its trailing line break.
    pub fn from_file(path: &Path) -> Result<Self, SecretError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SecretError::File { path: path.display().to_string(), message: e.to_string() })?;
        let value = text.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(SecretError::EmptyFile(path.display().to_string()));
        }
        Ok(Secret(value.to_string()))
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENTINEL: &str = "sentinel-Pa55word";

    #[test]
    fn no_formatting_shows_the_value() {
        let s = Secret::new(SENTINEL);
        #[derive(Debug, serde::Serialize)]
        struct Holder {
            password: Secret,
        }
        let h = Holder { password: s.clone() };
        let shown = [format!("{s}"), format!("{s:?}"), format!("{h:?}"), format!("{h:#?}"), serde_json::to_string(&h).unwrap()];
        for text in &shown {
            assert!(!text.contains(SENTINEL), "{text}");
            assert!(text.contains(REDACTED), "{text}");
        }
        assert_eq!(s.expose(), SENTINEL);
    }

    #[test]
    fn read_from_env_and_file_naming_the_source_not_the_value() {
        let env = |k: &str| match k {
            "SET" => Some(SENTINEL.to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(Secret::from_lookup("SET", env).unwrap().expose(), SENTINEL);
        assert_eq!(Secret::from_lookup("NOPE", env).unwrap_err(), SecretError::MissingEnv("NOPE".into()));
        assert_eq!(Secret::from_lookup("EMPTY", env).unwrap_err(), SecretError::EmptyEnv("EMPTY".into()));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, format!("{SENTINEL}\n")).unwrap();
        assert_eq!(Secret::from_file(&path).unwrap().expose(), SENTINEL);
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(Secret::from_file(&path), Err(SecretError::EmptyFile(_))));
        let err = Secret::from_file(&dir.path().join("missing")).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
