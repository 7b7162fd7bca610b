//! The alert state machine: hysteresis and de-duplication for one watched statistic.
//!
//! ```text
//!            value > warning, persist times in a row            value ≤ clear, clear_after times in a row
//!   quiet ───────────────────────────────────────────► firing ───────────────────────────────────────► quiet
//!     ▲  └ any evaluation ≤ warning resets the count     └ any evaluation > clear resets the count
//! ```
//!
//! One episode = one `firing` transition and (later) one `cleared` transition, both
//! carrying the same episode id; evaluations in between emit nothing, whatever the value
//! does. An evaluation without a value (too few events in the window) changes nothing:
//! a quiet night neither confirms nor clears a breach.

/// How a statistic is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertRule {
    /// Breach above this.
    pub warning: f64,
    /// `critical` severity at or above this.
    pub critical: Option<f64>,
    /// Recovered at or below this (≤ `warning`).
    pub clear: f64,
    /// Consecutive breaches before firing (≥ 1).
    pub persist: u32,
    /// Consecutive recoveries before clearing (≥ 1).
    pub clear_after: u32,
}

impl AlertRule {
    pub fn severity(&self, value: f64) -> Severity {
        match self.critical {
            Some(c) if value >= c => Severity::Critical,
            _ => Severity::Warning,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What an evaluation did to the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// A new episode: the breach persisted `persist` evaluations.
    Fired { episode: u64, severity: Severity },
    /// The episode ended: the value stayed at or below `clear` for `clear_after` evaluations.
    Cleared { episode: u64 },
}

/// The state of one watched statistic.
#[derive(Debug, Clone, Default)]
pub struct AlertMachine {
    breaches: u32,
    recoveries: u32,
    firing: Option<u64>,
    episodes: u64,
}

impl AlertMachine {
    /// Feeds one evaluation; `None` means no value this time (nothing changes).
    pub fn step(&mut self, value: Option<f64>, rule: &AlertRule) -> Option<Transition> {
        let value = value.filter(|v| !v.is_nan())?;
        match self.firing {
            None => {
                if value > rule.warning {
                    self.breaches += 1;
                    if self.breaches >= rule.persist {
                        self.breaches = 0;
                        self.recoveries = 0;
                        self.episodes += 1;
                        self.firing = Some(self.episodes);
                        return Some(Transition::Fired { episode: self.episodes, severity: rule.severity(value) });
                    }
                } else {
                    self.breaches = 0;
                }
                None
            }
            Some(episode) => {
                if value <= rule.clear {
                    self.recoveries += 1;
                    if self.recoveries >= rule.clear_after {
                        self.recoveries = 0;
                        self.firing = None;
                        return Some(Transition::Cleared { episode });
                    }
                } else {
                    self.recoveries = 0;
                }
                None
            }
        }
    }

    pub fn is_firing(&self) -> bool {
        self.firing.is_some()
    }

    /// Episodes opened so far.
    pub fn episodes(&self) -> u64 {
        self.episodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: AlertRule = AlertRule { warning: 0.25, critical: Some(0.5), clear: 0.2, persist: 3, clear_after: 2 };

    fn run(values: &[Option<f64>]) -> Vec<(usize, Transition)> {
        let mut m = AlertMachine::default();
        values.iter().enumerate().filter_map(|(i, v)| m.step(*v, &RULE).map(|t| (i, t))).collect()
    }

    #[test]
    fn a_breach_must_persist_and_fires_once_per_episode() {
        let s = |v: f64| Some(v);
        // two breaches, a dip, then three in a row: fires at index 5, once
        let t = run(&[s(0.3), s(0.3), s(0.1), s(0.3), s(0.9), s(0.3), s(0.9), s(0.9), s(0.3)]);
        assert_eq!(t, vec![(5, Transition::Fired { episode: 1, severity: Severity::Warning })]);
    }

    #[test]
    fn severity_is_judged_on_the_firing_value() {
        let t = run(&[Some(0.3), Some(0.3), Some(0.6)]);
        assert_eq!(t, vec![(2, Transition::Fired { episode: 1, severity: Severity::Critical })]);
    }

    #[test]
    fn clears_after_sustained_recovery_and_not_in_the_hysteresis_band() {
        let s = |v: f64| Some(v);
        let t = run(&[
            s(0.3), s(0.3), s(0.3), // fires at 2
            s(0.22), s(0.22), s(0.22), // between clear and warning: stays firing
            s(0.1), s(0.22), // one recovery, then reset
            s(0.1), s(0.1), // clears at 9
            s(0.3), s(0.3), s(0.3), // a second episode at 12
        ]);
        assert_eq!(
            t,
            vec![
                (2, Transition::Fired { episode: 1, severity: Severity::Warning }),
                (9, Transition::Cleared { episode: 1 }),
                (12, Transition::Fired { episode: 2, severity: Severity::Warning }),
            ]
        );
    }

    #[test]
    fn missing_values_change_nothing() {
        let t = run(&[Some(0.3), None, Some(0.3), None, Some(0.3), Some(f64::NAN)]);
        assert_eq!(t, vec![(4, Transition::Fired { episode: 1, severity: Severity::Warning })]);
    }
}
