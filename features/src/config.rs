//! Feature configuration (`[features]` in `weir.toml`): windows, lateness, Redis keys,
//! and the feature definitions (transforms of the event, aggregations per entity), which
//! [`crate::definitions`] checks and documents.

use serde::{Deserialize, Serialize};

/// What to compute per entity, and where to keep it.
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
    /// Path of the event time field (ms since the epoch, an integer). Default `event_time`.
    #[serde(default = "default_event_time")]
    pub event_time: String,
    /// Distinct counts are exact while an entity keeps at most this many occurrences of the
    /// field (within its longest window plus lateness), then HyperLogLog (6.5 % standard
    /// error). Default 256.
    #[serde(default = "default_distinct_exact_limit")]
    pub distinct_exact_limit: usize,
    /// Transforms of the event itself (`[[features.transforms]]`). With `entities` empty
    /// too, weir's card defaults apply ([`crate::definitions`]); otherwise these replace them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<TransformConfig>,
    /// Entities and what each aggregates (`[[features.entities]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<EntityConfig>,
}

/// One transform of the event (`[[features.transforms]]`); [`crate::definitions`]
/// documents each kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// `log1p`, `hour_of_day`, `day_of_week`, `one_hot`, `value` or `ratio_to_mean`.
    pub kind: String,
    /// Feature name (for `one_hot`, the prefix: `<name>_<value>`). Letters, digits, `_`.
    pub name: String,
    /// Path of the field it reads (all kinds but `hour_of_day` and `day_of_week`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `one_hot`: the values that get a feature each (any other value is the baseline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// `value`: the number used when the field is missing or null. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<f64>,
    /// `ratio_to_mean`: the entity whose mean of `field` divides the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// `ratio_to_mean`: the window of that mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
}

/// One entity kind and its aggregations (`[[features.entities]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    /// Entity kind, e.g. `card`: prefix of its feature names and part of its Redis keys.
    /// Letters, digits, `_`.
    pub name: String,
    /// Path of the field holding the entity id (a string or an integer).
    pub key: String,
    /// Names of the windows it aggregates over, in this order. Default: all, in
    /// `features.windows` order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<String>>,
    /// What it aggregates, in feature order.
    #[serde(default)]
    pub aggregations: Vec<AggregationConfig>,
}

/// One aggregation: `{ kind = "sum", field = "amount", as = "amt" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregationConfig {
    /// `count`, `sum`, `mean`, `min`, `max`, `distinct` or `seconds_since_last`.
    pub kind: String,
    /// Path of the field (sum, mean, min, max, distinct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Name part used instead of the field path in feature names.
    #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
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
fn default_event_time() -> String {
    "event_time".into()
}
fn default_distinct_exact_limit() -> usize {
    256
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig {
            windows: default_windows(),
            allowed_lateness_secs: default_allowed_lateness_secs(),
            ttl_slack_secs: default_ttl_slack_secs(),
            key_prefix: default_key_prefix(),
            event_time: default_event_time(),
            distinct_exact_limit: default_distinct_exact_limit(),
            transforms: Vec::new(),
            entities: Vec::new(),
        }
    }
}

/// A bigger ring would make every event read more panes; 10 000 is far past any sane
/// window/pane ratio (a day in 10-second panes is 8 640).
const MAX_SLOTS: u64 = 10_000;
/// The Redis state names a ring slot by window number in one byte.
const MAX_WINDOWS: usize = 100;

// The whole check (`FeaturesConfig::problems`, which builds the definitions) and the
// engine's view of the windows (`FeaturesConfig::window_specs`) are implemented in
// `definitions`: this module imports nothing of the code it configures.
impl FeaturesConfig {
    /// Every problem with the settings themselves (windows, key prefix), each naming the
    /// entry; [`FeaturesConfig::problems`] adds the definitions'.
    pub(crate) fn settings_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.windows.is_empty() {
            problems.push("features.windows is empty: at least one window is needed".to_string());
        }
        if self.windows.len() > MAX_WINDOWS {
            problems.push(format!("features.windows has {} windows, at most {MAX_WINDOWS} are supported", self.windows.len()));
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

    pub fn allowed_lateness_ms(&self) -> i64 {
        (self.allowed_lateness_secs * 1000) as i64
    }

    /// Key time-to-live: longest window + lateness + slack.
    pub fn ttl_ms(&self) -> i64 {
        let longest = self.windows.iter().map(|w| w.length_secs).max().unwrap_or(0);
        ((longest + self.allowed_lateness_secs + self.ttl_slack_secs) * 1000) as i64
    }
}

/// Asserts that `config` has exactly one problem, naming `needle` (tests of this crate).
#[cfg(test)]
#[track_caller]
pub(crate) fn one_problem(config: &FeaturesConfig, needle: &str) {
    let p = config.problems();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains(needle), "{:?} does not contain {needle:?}", p[0]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(name: &str, length_secs: u64, pane_secs: u64) -> WindowConfig {
        WindowConfig { name: name.into(), length_secs, pane_secs }
    }

    fn with_windows(windows: Vec<WindowConfig>) -> FeaturesConfig {
        FeaturesConfig { windows, ..FeaturesConfig::default() }
    }

    #[test]
    fn defaults_have_no_problems() {
        let c = FeaturesConfig::default();
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.allowed_lateness_ms(), 60_000);
        let specs = c.window_specs();
        assert_eq!(specs.len(), 2);
        assert_eq!((specs[0].name.as_str(), specs[0].length_ms, specs[0].pane_ms, specs[0].panes, specs[0].slots), ("1m", 60_000, 5_000, 12, 25));
        assert_eq!((specs[1].name.as_str(), specs[1].length_ms, specs[1].pane_ms, specs[1].panes, specs[1].slots), ("1h", 3_600_000, 60_000, 60, 62));
    }

    #[test]
    fn ttl_covers_longest_window_lateness_and_slack() {
        let c = FeaturesConfig::default();
        // (3600 + 60 + 600) s
        assert_eq!(c.ttl_ms(), 4_260_000);
        assert!(c.ttl_ms() > c.window_specs().iter().map(|w| w.length_ms).max().unwrap());
        let c = FeaturesConfig {
            windows: vec![window("a", 10, 5), window("b", 7_200, 60), window("c", 60, 5)],
            allowed_lateness_secs: 0,
            ttl_slack_secs: 0,
            ..FeaturesConfig::default()
        };
        assert_eq!(c.ttl_ms(), 7_200_000);
    }

    #[test]
    fn empty_windows() {
        one_problem(&with_windows(vec![]), "features.windows is empty");
    }

    #[test]
    fn bad_names() {
        for name in ["", "1 m", "1-m", "a:b", "é", "{x}"] {
            one_problem(&with_windows(vec![window(name, 60, 5)]), "name must be letters, digits or _");
        }
        assert!(with_windows(vec![window("last_5_Min", 300, 5)]).problems().is_empty());
    }

    #[test]
    fn duplicate_names() {
        let c = with_windows(vec![window("w", 60, 5), window("x", 120, 5), window("w", 3600, 60)]);
        one_problem(&c, "features.windows[2] (\"w\"): name is used by another window");
    }

    #[test]
    fn pane_must_divide_length() {
        one_problem(&with_windows(vec![window("w", 60, 7)]), "pane_secs 7 does not divide length_secs 60");
        one_problem(&with_windows(vec![window("w", 5, 10)]), "pane_secs 10 does not divide length_secs 5");
        assert!(with_windows(vec![window("w", 60, 60)]).problems().is_empty());
    }

    #[test]
    fn zero_lengths() {
        for (l, p) in [(0, 5), (60, 0), (0, 0)] {
            one_problem(&with_windows(vec![window("w", l, p)]), "length_secs and pane_secs must be > 0");
        }
    }

    #[test]
    fn too_many_slots() {
        // 9 999 panes + ceil(0 / 1) + 1 = 10 000 slots: the limit.
        let mut c = FeaturesConfig { allowed_lateness_secs: 0, ..with_windows(vec![window("w", 9_999, 1)]) };
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        c.windows[0].length_secs = 10_000;
        one_problem(&c, "10001 panes per entity");
        // Lateness counts too: 9 000 + 1 000 + 1.
        let c = FeaturesConfig { allowed_lateness_secs: 1_000, ..with_windows(vec![window("w", 9_000, 1)]) };
        one_problem(&c, "10001 panes per entity");
    }

    #[test]
    fn bad_prefix() {
        for prefix in ["", "we{ir", "we}ir", "we ir"] {
            one_problem(&FeaturesConfig { key_prefix: prefix.into(), ..FeaturesConfig::default() }, "features.key_prefix");
        }
        assert!(FeaturesConfig { key_prefix: "prod:weir".into(), ..FeaturesConfig::default() }.problems().is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let c = FeaturesConfig {
            windows: vec![window("", 60, 7), window("", 0, 5)],
            key_prefix: String::new(),
            ..FeaturesConfig::default()
        };
        // 2 bad names, 1 duplicate, 1 not dividing, 1 zero length, 1 prefix.
        assert_eq!(c.problems().len(), 6, "{:?}", c.problems());
    }
}
