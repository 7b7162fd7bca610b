//! Checks into alerts: one [`AlertMachine`] per (subject, statistic), stepped with each
//! evaluation's [`Check`]s; its transitions come out as `DriftAlert`s, firing or cleared,
//! with the same `alert_id` for both ends of an episode.

use std::collections::BTreeMap;

use weir_schemas::events::DriftAlert;

use crate::alert::{AlertMachine, Severity, Transition};

use super::check::Check;

#[derive(Default)]
pub(super) struct Alerts {
    /// Per (subject, statistic): its machine and the id of its current (or last) episode.
    machines: BTreeMap<(String, &'static str), (AlertMachine, String)>,
    fired: u64,
    cleared: u64,
}

impl Alerts {
    /// Judges one evaluation's checks, in order, for the window `[start, end)` (event-time
    /// ms); returns the transitions as alerts raised at the window's end.
    pub fn judge(&mut self, checks: Vec<Check>, (start, end): (u64, u64), model_version: Option<&str>) -> Vec<DriftAlert> {
        let mut alerts = Vec::new();
        for check in checks {
            let key = (check.subject, check.statistic);
            let (machine, id) = self.machines.entry(key.clone()).or_insert_with(|| (AlertMachine::default(), String::new()));
            let (subject, statistic) = key;
            let value = check.stated_value.or(check.value).unwrap_or(f64::NAN);
            let rule = check.rule;
            let (state, threshold, severity) = match machine.step(check.value, &rule) {
                Some(Transition::Fired { episode, severity }) => {
                    *id = format!("{subject}/{statistic}/{episode}@{end}");
                    self.fired += 1;
                    ("firing", check.stated_threshold.unwrap_or(rule.warning), severity)
                }
                Some(Transition::Cleared { .. }) => {
                    self.cleared += 1;
                    ("cleared", rule.clear, Severity::Info)
                }
                None => continue,
            };
            alerts.push(DriftAlert {
                alert_id: id.clone(),
                state: state.into(),
                subject,
                statistic: statistic.into(),
                value,
                threshold,
                window_start: start as i64,
                window_end: end as i64,
                severity: severity.as_str().into(),
                model_version: model_version.map(str::to_string),
                raised_at: end as i64,
            });
        }
        alerts
    }

    /// Subjects and statistics currently firing.
    pub fn firing(&self) -> Vec<(String, &'static str)> {
        self.machines.iter().filter(|(_, (m, _))| m.is_firing()).map(|(k, _)| k.clone()).collect()
    }

    /// Alerts fired and cleared so far.
    pub fn fired(&self) -> u64 {
        self.fired
    }

    pub fn cleared(&self) -> u64 {
        self.cleared
    }
}
