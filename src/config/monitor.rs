//! `[monitor]`: the stage around the drift monitor (topics, group, webhook, reference,
//! lag measurement); the monitor's own settings are `weir_monitor::MonitorConfig`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weir_monitor::MonitorConfig;

/// `[monitor]` in `weir.toml`: the stage around the monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorStageConfig {
    /// Whether `weir run` runs the monitor next to the scoring pipeline. `weir monitor`
    /// runs it regardless. Default true.
    #[serde(default = "d_true")]
    pub enabled: bool,
    /// Topic the `DriftAlert` events go to. Default `drift-alerts`.
    #[serde(default = "d_alerts_topic")]
    pub alerts_topic: String,
    /// Consumer group of the monitor. Default: `<kafka.group_id>-monitor`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// `http://host[:port]/path` to POST every alert to as JSON. Default: none.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// A reference profile (JSON, see `weir_monitor::ReferenceProfile`): loaded if the file
    /// exists, else written when the warm-up completes. Default: none (warm up each start).
    #[serde(default)]
    pub reference_file: Option<PathBuf>,
    /// How often consumer lag is measured, in seconds. Default 5.
    #[serde(default = "d_lag_secs")]
    pub lag_interval_secs: u64,
    /// Windows, reference, thresholds, hysteresis, fairness, concept drift.
    #[serde(default)]
    pub watch: MonitorConfig,
}

fn d_true() -> bool {
    true
}
fn d_alerts_topic() -> String {
    "drift-alerts".into()
}
fn d_lag_secs() -> u64 {
    5
}

impl Default for MonitorStageConfig {
    fn default() -> Self {
        MonitorStageConfig {
            enabled: true,
            alerts_topic: d_alerts_topic(),
            group_id: None,
            webhook_url: None,
            reference_file: None,
            lag_interval_secs: d_lag_secs(),
            watch: MonitorConfig::default(),
        }
    }
}

impl MonitorStageConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = self.watch.problems();
        if self.alerts_topic.is_empty() {
            p.push("monitor.alerts_topic is empty".into());
        }
        if let Some(url) = &self.webhook_url
            && let Err(e) = parse_http_url(url)
        {
            p.push(format!("monitor.webhook_url {url:?}: {e}"));
        }
        if self.lag_interval_secs == 0 {
            p.push("monitor.lag_interval_secs must be at least 1".into());
        }
        p
    }

    pub fn group_id(&self, kafka_group: &str) -> String {
        self.group_id.clone().unwrap_or_else(|| format!("{kafka_group}-monitor"))
    }
}

/// `(host:port, path)` of a plain-HTTP URL.
pub fn parse_http_url(url: &str) -> Result<(String, String), &'static str> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs are supported (put a TLS relay in front)")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err("no host");
    }
    let authority = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    Ok((authority, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        assert_eq!(parse_http_url("http://h:9000/hook").unwrap(), ("h:9000".into(), "/hook".into()));
        assert_eq!(parse_http_url("http://h").unwrap(), ("h:80".into(), "/".into()));
        assert!(parse_http_url("https://h/x").is_err());
        assert!(parse_http_url("http:///x").is_err());
    }
}
