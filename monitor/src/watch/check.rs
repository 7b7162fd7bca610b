//! What an evaluation produces: [`Reading`]s (every statistic read, for gauges and
//! tests) and [`Check`]s (the statistics judged by an alert rule, for the alerts).
//! Each part of the monitor reads its own statistics into a [`Sheet`].

use crate::alert::AlertRule;
use crate::config::{MonitorConfig, Threshold};

/// One statistic read at an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub subject: String,
    pub statistic: &'static str,
    pub value: f64,
}

/// Everything read when a window was evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Event time, ms: `[window_start, window_end)`.
    pub window_start: i64,
    pub window_end: i64,
    /// Scores counted in the window.
    pub events: u64,
    pub readings: Vec<Reading>,
}

impl Evaluation {
    pub fn get(&self, subject: &str, statistic: &str) -> Option<f64> {
        self.readings.iter().find(|r| r.subject == subject && r.statistic == statistic).map(|r| r.value)
    }
}

/// One statistic to judge at an evaluation: the alert machine of (`subject`,
/// `statistic`) is stepped with `value` under `rule`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    pub subject: String,
    pub statistic: &'static str,
    /// The value judged; `None` when the window holds too little to say (the machine
    /// then changes nothing).
    pub value: Option<f64>,
    pub rule: AlertRule,
    /// The value an alert states, when it is not the one judged (a detector judges its
    /// detection count and states the window's rate).
    pub stated_value: Option<f64>,
    /// The threshold a firing alert states, when it is not `rule.warning` (a detector
    /// states the mean it had learned before the change).
    pub stated_threshold: Option<f64>,
}

impl Check {
    pub fn new(subject: impl Into<String>, statistic: &'static str, value: Option<f64>, rule: AlertRule) -> Self {
        Check { subject: subject.into(), statistic, value, rule, stated_value: None, stated_threshold: None }
    }
}

/// The readings and checks of one evaluation, in the order they were read (which is the
/// order alerts come out in).
#[derive(Debug, Default)]
pub(super) struct Sheet {
    pub readings: Vec<Reading>,
    pub checks: Vec<Check>,
}

impl Sheet {
    pub fn read(&mut self, subject: &str, statistic: &'static str, value: f64) {
        self.readings.push(Reading { subject: subject.to_string(), statistic, value });
    }

    pub fn check(&mut self, check: Check) {
        self.checks.push(check);
    }
}

/// The alert rules of the configuration: the hysteresis (`persist_windows`,
/// `clear_windows`) shared by every statistic, with each statistic's levels.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    persist: u32,
    clear_after: u32,
}

impl Rules {
    pub fn new(cfg: &MonitorConfig) -> Self {
        Rules { persist: cfg.persist_windows, clear_after: cfg.clear_windows }
    }

    /// A drift statistic judged by its configured [`Threshold`].
    pub fn threshold(&self, t: &Threshold) -> AlertRule {
        AlertRule {
            warning: t.warning,
            critical: t.critical,
            clear: t.clear_level(),
            persist: self.persist,
            clear_after: self.clear_after,
        }
    }

    /// A rate judged against a plain maximum: no critical level, recovered at 0.8 of it.
    pub fn plain(&self, warning: f64) -> AlertRule {
        AlertRule { warning, critical: None, clear: 0.8 * warning, persist: self.persist, clear_after: self.clear_after }
    }

    /// A detection is its own evidence: it fires at once, and clears after
    /// `clear_windows` evaluations with labels and no detection.
    pub fn detection(&self) -> AlertRule {
        AlertRule { warning: 0.0, critical: None, clear: 0.0, persist: 1, clear_after: self.clear_after }
    }
}
