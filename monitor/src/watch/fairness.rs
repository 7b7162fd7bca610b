//! Fairness by group: scores are grouped by the configured attribute (at most
//! `max_groups`, the rest in an overflow group never reported), each group's decision
//! rate and mean score counted per pane, and the gaps between groups — of decision
//! rates, and of true-positive rates once labels join — judged per window.

use std::collections::HashMap;

use weir_schemas::events::Score;

use crate::config::FairnessConfig;
use crate::drift::WindowSpec;
use crate::subjects::FAIRNESS_PREFIX;

use super::check::{Check, Rules, Sheet};
use super::outcomes::Outcomes;
use super::ring::Ring;

const EVENTS: usize = 0;
const FLAGGED: usize = 1;
/// Sum of the scores, in millionths.
const SCORE_MICROS: usize = 2;

pub(super) struct Fairness {
    cfg: FairnessConfig,
    names: Vec<String>,
    index: HashMap<String, usize>,
    decisions: Ring<3>,
}

impl Fairness {
    pub fn new(cfg: FairnessConfig, window: WindowSpec) -> Self {
        let groups = Self::groups(&cfg);
        Fairness { cfg, names: Vec::new(), index: HashMap::new(), decisions: Ring::new(window, groups) }
    }

    /// Groups counted: `max_groups` and the overflow.
    pub fn groups(cfg: &FairnessConfig) -> usize {
        cfg.max_groups + 1
    }

    /// The group of a score: by its value of the attribute (`all` when none is
    /// configured); a value first seen once `max_groups` are known goes to the overflow.
    pub fn group_of(&mut self, score: &Score) -> usize {
        let attr = &self.cfg.attribute;
        let name = if attr.is_empty() { "all" } else { score.attributes.get(attr).map(String::as_str).unwrap_or("") };
        if let Some(&g) = self.index.get(name) {
            return g;
        }
        if self.names.len() < self.cfg.max_groups {
            let g = self.names.len();
            self.names.push(name.to_string());
            self.index.insert(name.to_string(), g);
            g
        } else {
            self.cfg.max_groups // overflow bucket, never reported
        }
    }

    /// An on-time score at `t` in `group`.
    pub fn count(&mut self, t: u64, group: usize, score: &Score) {
        let flagged = score.decision != "approve";
        let value = score.value();
        let micros = if value.is_finite() { (value.clamp(0.0, 1.0) * 1e6).round() as u64 } else { 0 };
        let mut s = [0; 3];
        s[EVENTS] = 1;
        s[FLAGGED] = flagged as u64;
        s[SCORE_MICROS] = micros;
        self.decisions.add(t, group, s);
    }

    /// Reads the window ending with `pane` (decisions) and the label window (true
    /// positives) into `sheet`: per group `decision_rate`, `mean_score`, `tpr`, then the
    /// gaps, judged. Nothing without a configured attribute.
    pub fn read(&self, pane: u64, outcomes: &Outcomes, rules: &Rules, sheet: &mut Sheet) {
        let fc = &self.cfg;
        if fc.attribute.is_empty() {
            return;
        }
        let subject = format!("{FAIRNESS_PREFIX}:{}", fc.attribute);
        let (mut rates, mut tprs) = (Vec::new(), Vec::new());
        for (g, name) in self.names.iter().enumerate() {
            let group_subject = format!("{subject}:{name}");
            let s = self.decisions.group_totals(g, Some(pane));
            if s[EVENTS] > 0 {
                let rate = s[FLAGGED] as f64 / s[EVENTS] as f64;
                sheet.read(&group_subject, "decision_rate", rate);
                sheet.read(&group_subject, "mean_score", s[SCORE_MICROS] as f64 / 1e6 / s[EVENTS] as f64);
                if s[EVENTS] >= fc.min_group_events {
                    rates.push(rate);
                }
            }
            if let Some((tpr, positives)) = outcomes.tpr(g) {
                sheet.read(&group_subject, "tpr", tpr);
                if positives >= fc.min_group_positives {
                    tprs.push(tpr);
                }
            }
        }
        let (dgap, tgap) = (gap(&rates), gap(&tprs));
        if let Some(g) = dgap {
            sheet.read(&subject, "decision_rate_gap", g);
        }
        if let Some(g) = tgap {
            sheet.read(&subject, "tpr_gap", g);
        }
        sheet.check(Check::new(subject.clone(), "decision_rate_gap", dgap, rules.plain(fc.max_decision_rate_gap)));
        sheet.check(Check::new(subject, "tpr_gap", tgap, rules.plain(fc.max_tpr_gap)));
    }
}

/// The largest minus the smallest, with at least two values.
fn gap(v: &[f64]) -> Option<f64> {
    (v.len() >= 2).then(|| v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min))
}
