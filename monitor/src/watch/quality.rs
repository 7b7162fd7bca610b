//! Data quality: per pane, the scores counted, the values expected of them, and how many
//! were invalid, missing or late; read as `invalid_rate`, `missing_rate` and `late_rate`
//! of the [`QUALITY_SUBJECT`].

use crate::config::QualityConfig;
use crate::drift::WindowSpec;
use crate::subjects::QUALITY_SUBJECT;

use super::check::{Check, Rules, Sheet};
use super::ring::Ring;

const EVENTS: usize = 0;
const EXPECTED: usize = 1;
const INVALID: usize = 2;
const MISSING: usize = 3;
const LATE: usize = 4;

/// The values a score was expected to carry (the score itself, each watched feature and
/// attribute) and how many of them were invalid or missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ValueCounts {
    pub expected: u64,
    pub invalid: u64,
    pub missing: u64,
}

pub(super) struct Quality {
    ring: Ring<5>,
}

impl Quality {
    pub fn new(window: WindowSpec) -> Self {
        Quality { ring: Ring::new(window, 1) }
    }

    /// An on-time score at `t`.
    pub fn count(&mut self, t: u64, v: ValueCounts) {
        let mut q = [0; 5];
        q[EVENTS] = 1;
        q[EXPECTED] = v.expected;
        q[INVALID] = v.invalid;
        q[MISSING] = v.missing;
        self.ring.add(t, 0, q);
    }

    /// A late score, counted in the pane at `at` (the first one open).
    pub fn count_late(&mut self, at: u64) {
        let mut q = [0; 5];
        q[EVENTS] = 1;
        q[LATE] = 1;
        self.ring.add(at, 0, q);
    }

    /// A score without a valid event time, counted in the pane at `at` (the first one
    /// open): one value expected, and it is invalid.
    pub fn count_invalid_time(&mut self, at: u64) {
        let mut q = [0; 5];
        q[EVENTS] = 1;
        q[EXPECTED] = 1;
        q[INVALID] = 1;
        self.ring.add(at, 0, q);
    }

    /// Reads the window ending with pane `end` into `sheet`; returns the scores it
    /// counted in time (the window's events). Its rates are judged only when the window
    /// has `min_events` of them.
    pub fn read(&self, end: Option<u64>, min_events: u64, cfg: &QualityConfig, rules: &Rules, sheet: &mut Sheet) -> u64 {
        let q = self.ring.totals(end);
        let events = q[EVENTS] - q[LATE];
        if q[EVENTS] == 0 {
            return events;
        }
        let rate = |n: u64, d: u64| if d > 0 { n as f64 / d as f64 } else { 0.0 };
        let enough = events >= min_events;
        for (statistic, value, max) in [
            ("invalid_rate", rate(q[INVALID], q[EXPECTED]), cfg.max_invalid_rate),
            ("missing_rate", rate(q[MISSING], q[EXPECTED]), cfg.max_missing_rate),
            ("late_rate", rate(q[LATE], q[EVENTS]), cfg.max_late_rate),
        ] {
            sheet.read(QUALITY_SUBJECT, statistic, value);
            sheet.check(Check::new(QUALITY_SUBJECT, statistic, enough.then_some(value), rules.plain(max)));
        }
        events
    }
}
