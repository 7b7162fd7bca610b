//! Feature configuration (`[features]` in `weir.toml`).

use serde::{Deserialize, Serialize};

use crate::windows::WindowSpec;

/// What to compute per card, and where to keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesConfig {
    /// Sliding windows, in event time. Default: `1m` (5 s panes) and `1h` (1 min panes).
    #[serde(default = "default_windows")]
    pub windows: Vec<WindowConfig>,
    /// How far behind an entity's newest event an event may be and still be applied,
    /// in seconds. Later events are counted as late and not applied. Default 60.
    #[serde(default = "default_allowed_lateness_secs")]
    pub allowed_lateness_secs: u64,
    /// Extra time-to-live on an entity's keys beyond the longest window plus lateness,
    /// in seconds; refreshed on every write. Default 600.
    #[serde(default = "default_ttl_slack_secs")]
    pub ttl_slack_secs: u64,
    /// Prefix of every Redis key weir writes. Default `weir`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

/// One sliding window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Name used in feature names and Redis fields, e.g. `1m`. Letters, digits, `_`.
    pub name: String,
    /// Window length in seconds.
    pub length_secs: u64,
    /// Pane (bucket) length in seconds; must divide the length. The window slides by
    /// whole panes: at event time t it covers the pane holding t and the panes before it.
    pub pane_secs: u64,
}

fn default_windows() -> Vec<WindowConfig> {
    vec![
        WindowConfig { name: "1m".into(), length_secs: 60, pane_secs: 5 },
        WindowConfig { name: "1h".into(), length_secs: 3600, pane_secs: 60 },
    ]
}
fn default_allowed_lateness_secs() -> u64 {
    60
}
fn default_ttl_slack_secs() -> u64 {
    600
}
fn default_key_prefix() -> String {
    "weir".into()
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig {
            windows: default_windows(),
            allowed_lateness_secs: default_allowed_lateness_secs(),
            ttl_slack_secs: default_ttl_slack_secs(),
            key_prefix: default_key_prefix(),
        }
    }
}

/// A bigger ring would make every event read more panes; 10 000 is far past any sane
/// window/pane ratio (a day in 10-second panes is 8 640).
const MAX_SLOTS: u64 = 10_000;

impl FeaturesConfig {
    /// Every problem with this configuration, each naming the entry.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.windows.is_empty() {
            problems.push("features.windows is empty: at least one window is needed".to_string());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, w) in self.windows.iter().enumerate() {
            let at = format!("features.windows[{i}] ({:?})", w.name);
            if w.name.is_empty() || !w.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                problems.push(format!("{at}: name must be letters, digits or _"));
            }
            if !seen.insert(w.name.clone()) {
                problems.push(format!("{at}: name is used by another window"));
            }
            if w.pane_secs == 0 || w.length_secs == 0 {
                problems.push(format!("{at}: length_secs and pane_secs must be > 0"));
            } else if w.length_secs % w.pane_secs != 0 {
                problems.push(format!(
                    "{at}: pane_secs {} does not divide length_secs {}",
                    w.pane_secs, w.length_secs
                ));
            } else {
                let slots = w.length_secs / w.pane_secs + self.allowed_lateness_secs.div_ceil(w.pane_secs) + 1;
                if slots > MAX_SLOTS {
                    problems.push(format!(
                        "{at}: {slots} panes per entity (window + lateness) is more than {MAX_SLOTS}; use longer panes"
                    ));
                }
            }
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}', ' ']) {
            problems.push(format!("features.key_prefix {:?} must be non-empty, without braces or spaces", self.key_prefix));
        }
        problems
    }

    /// The windows as the engine uses them. Call after [`FeaturesConfig::problems`] is empty.
    pub fn window_specs(&self) -> Vec<WindowSpec> {
        self.windows
            .iter()
            .map(|w| WindowSpec::new(&w.name, w.length_secs * 1000, w.pane_secs * 1000, self.allowed_lateness_ms()))
            .collect()
    }

    pub fn allowed_lateness_ms(&self) -> i64 {
        (self.allowed_lateness_secs * 1000) as i64
    }

    /// Key time-to-live: longest window + lateness + slack.
    pub fn ttl_ms(&self) -> i64 {
        let longest = self.windows.iter().map(|w| w.length_secs).max().unwrap_or(0);
        ((longest + self.allowed_lateness_secs + self.ttl_slack_secs) * 1000) as i64
    }
}
