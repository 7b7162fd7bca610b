//! Champion/challenger decisions with guard rails. Pure logic: the caller publishes,
//! promotes and rolls back through the model registry and tells this state what it did.
//!
//! - **Promote** when all hold: at least `min_labels` learned; the comparison window holds
//!   `compare_labels` labels *served by the current champion* (labels scored by an older
//!   version say nothing about the champion); the challenger beats the champion there by
//!   more than `margin` (AUC higher, or log loss lower); fewer than `max_per_hour`
//!   promotions in the last hour; no promoted model still under watch.
//! - **Watch, then keep or roll back**: after a promotion the next `rollback_labels` labels
//!   served by the new version are collected; if its live metric is worse than what its
//!   predecessor showed at promotion time by more than `rollback_margin`, roll back.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::config::{Metric, PromotionConfig};
use crate::eval::{auc, log_loss, Entry};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watch {
    pub version: String,
    pub previous: String,
    /// The predecessor's metric over the comparison window at promotion time.
    pub baseline: f64,
    pub live: VecDeque<Entry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromotionState {
    /// The registry's champion as last seen.
    pub champion_version: Option<String>,
    /// Labels served by the champion: the comparison window. Not in the state JSON: it is
    /// checkpointed incrementally, as a Redis list ([`PromotionState::take_compare_delta`]).
    #[serde(skip)]
    pub compare: VecDeque<Entry>,
    /// What changed in `compare` since the last checkpoint.
    #[serde(skip)]
    pub compare_delta: CompareDelta,
    /// Wall-clock times (ms) of this learner's promotions.
    pub promotions_ms: Vec<i64>,
    pub watch: Option<Watch>,
    /// Versions this learner published (names the next one).
    pub published: u64,
    pub rollbacks: u64,
}

/// Changes to the comparison window since the last checkpoint: emptied first (a new
/// champion) or not, then these entries appended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompareDelta {
    pub reset: bool,
    pub pushed: Vec<Entry>,
}

impl CompareDelta {
    /// `later` on top of `self`.
    pub fn merge(&mut self, later: CompareDelta) {
        if later.reset {
            *self = later;
        } else {
            self.pushed.extend(later.pushed);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Hold(&'static str),
    Promote { champion: f64, challenger: f64 },
    /// Roll back to `to`: `live` is the promoted model's metric, `baseline` its predecessor's.
    Rollback { from: String, to: String, live: f64, baseline: f64 },
    /// The watched version held up; the watch ends.
    Keep { version: String, live: f64, baseline: f64 },
}

fn metric_of(metric: Metric, entries: &VecDeque<Entry>, challenger: bool) -> Option<f64> {
    let labels: Vec<bool> = entries.iter().map(|e| e.label).collect();
    let scores: Vec<f64> = entries.iter().map(|e| if challenger { e.challenger } else { e.champion }).collect();
    match metric {
        Metric::Auc => auc(&scores, &labels),
        Metric::LogLoss => log_loss(&scores, &labels),
    }
}

/// How much better `a` is than `b` (positive = better), for this metric.
fn gain(metric: Metric, a: f64, b: f64) -> f64 {
    match metric {
        Metric::Auc => a - b,
        Metric::LogLoss => b - a,
    }
}

impl PromotionState {
    /// Records one evaluated label served by `served_version`.
    pub fn observe(&mut self, served_version: &str, e: Entry, cfg: &PromotionConfig) {
        if self.champion_version.as_deref() == Some(served_version) {
            self.compare.push_back(e);
            self.compare_delta.pushed.push(e);
            while self.compare.len() > cfg.compare_labels {
                self.compare.pop_front();
            }
        }
        if let Some(w) = &mut self.watch
            && w.version == served_version
            && w.live.len() < cfg.rollback_labels
        {
            w.live.push_back(e);
        }
    }

    /// The registry's champion is `version`: a change empties the comparison window.
    pub fn set_champion(&mut self, version: &str) {
        if self.champion_version.as_deref() != Some(version) {
            self.champion_version = Some(version.to_string());
            self.compare.clear();
            self.compare_delta = CompareDelta { reset: true, pushed: Vec::new() };
        }
    }

    pub fn decide(&self, now_ms: i64, learned: u64, cfg: &PromotionConfig) -> Decision {
        let metric = cfg.metric();
        if let Some(w) = &self.watch {
            if w.live.len() < cfg.rollback_labels {
                return Decision::Hold("watching the last promotion");
            }
            let Some(live) = metric_of(metric, &w.live, false) else {
                return Decision::Hold("watched window has one class only");
            };
            return if gain(metric, live, w.baseline) < -cfg.rollback_margin {
                Decision::Rollback { from: w.version.clone(), to: w.previous.clone(), live, baseline: w.baseline }
            } else {
                Decision::Keep { version: w.version.clone(), live, baseline: w.baseline }
            };
        }
        if learned < cfg.min_labels {
            return Decision::Hold("fewer labels than min_labels");
        }
        if self.champion_version.is_none() {
            return Decision::Hold("no champion known");
        }
        if self.compare.len() < cfg.compare_labels {
            return Decision::Hold("comparison window not full");
        }
        let recent = self.promotions_ms.iter().filter(|&&t| now_ms - t < 3_600_000).count();
        if recent >= cfg.max_per_hour {
            return Decision::Hold("max promotions per hour reached");
        }
        let (Some(champion), Some(challenger)) =
            (metric_of(metric, &self.compare, false), metric_of(metric, &self.compare, true))
        else {
            return Decision::Hold("comparison window has one class only");
        };
        if gain(metric, challenger, champion) > cfg.margin {
            Decision::Promote { champion, challenger }
        } else {
            Decision::Hold("challenger not better by the margin")
        }
    }

    /// The comparison window's changes since the last call (for the checkpoint).
    pub fn take_compare_delta(&mut self) -> CompareDelta {
        std::mem::take(&mut self.compare_delta)
    }

    /// Restores the comparison window from the checkpoint (the last `compare_labels`).
    pub fn restore_compare(&mut self, entries: Vec<Entry>, cfg: &PromotionConfig) {
        let skip = entries.len().saturating_sub(cfg.compare_labels);
        self.compare = entries.into_iter().skip(skip).collect();
        self.compare_delta = CompareDelta::default();
    }

    /// The caller promoted `version` (previously `previous`) at `now_ms`.
    pub fn promoted(&mut self, version: &str, previous: &str, baseline: f64, now_ms: i64) {
        self.promotions_ms.retain(|&t| now_ms - t < 3_600_000);
        self.promotions_ms.push(now_ms);
        self.watch = Some(Watch {
            version: version.to_string(),
            previous: previous.to_string(),
            baseline,
            live: VecDeque::new(),
        });
        self.set_champion(version);
    }

    /// The caller rolled back (or decided to keep): the watch ends.
    pub fn end_watch(&mut self, rolled_back: bool) {
        if rolled_back {
            self.rollbacks += 1;
        }
        self.watch = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> PromotionConfig {
        PromotionConfig {
            min_labels: 10,
            compare_labels: 4,
            margin: 0.1,
            max_per_hour: 1,
            rollback_labels: 4,
            rollback_margin: 0.1,
            ..PromotionConfig::default()
        }
    }

    fn e(champion: f64, challenger: f64, label: bool) -> Entry {
        Entry { champion, challenger, label }
    }

    #[test]
    fn promotes_only_when_every_guard_passes_then_watches_and_rolls_back() {
        let c = cfg();
        let mut s = PromotionState::default();
        // Challenger perfect, champion inverted.
        let window = [e(0.9, 0.1, false), e(0.1, 0.9, true), e(0.8, 0.2, false), e(0.2, 0.7, true)];
        for x in window {
            s.observe("v1", x, &c);
        }
        assert_eq!(s.decide(0, 100, &c), Decision::Hold("no champion known"));
        s.set_champion("v1");
        assert_eq!(s.decide(0, 100, &c), Decision::Hold("comparison window not full"));
        for x in window {
            s.observe("v1", x, &c);
        }
        assert_eq!(s.decide(0, 5, &c), Decision::Hold("fewer labels than min_labels"));
        assert_eq!(s.decide(0, 100, &c), Decision::Promote { champion: 0.0, challenger: 1.0 });
        s.promoted("v2", "v1", 0.9, 1_000);
        assert!(s.compare.is_empty());
        assert_eq!(s.decide(2_000, 100, &c), Decision::Hold("watching the last promotion"));
        // v2 serves badly: AUC 0 against a baseline of 0.9.
        for x in window {
            s.observe("v2", x, &c);
        }
        assert_eq!(
            s.decide(2_000, 100, &c),
            Decision::Rollback { from: "v2".into(), to: "v1".into(), live: 0.0, baseline: 0.9 }
        );
        s.end_watch(true);
        s.set_champion("v1");
        for x in window {
            s.observe("v1", x, &c);
        }
        // Within the hour of the last promotion: capped.
        assert_eq!(s.decide(60_000, 100, &c), Decision::Hold("max promotions per hour reached"));
        assert!(matches!(s.decide(3_700_000, 100, &c), Decision::Promote { .. }));
    }
}
