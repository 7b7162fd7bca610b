//! Labelled outcomes per fairness group, windowed by label time (the window ending with
//! the newest label): labels, positives, flagged positives and errors. Read as the
//! error and label rates and each group's true-positive rate.

use crate::drift::WindowSpec;

use super::join::Joined;
use super::ring::Ring;

const LABELS: usize = 0;
const POSITIVES: usize = 1;
const TRUE_POSITIVES: usize = 2;
const ERRORS: usize = 3;

pub(super) struct Outcomes {
    ring: Ring<4>,
}

/// The window's rates over every group.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rates {
    /// Share of labels the decision disagreed with.
    pub error: f64,
    /// Share of labels that are positive.
    pub label: f64,
}

impl Outcomes {
    /// Over `window` (without open panes: labels are read up to the newest), `groups`
    /// groups.
    pub fn new(window: WindowSpec, groups: usize) -> Self {
        Outcomes { ring: Ring::new(window, groups) }
    }

    pub fn count(&mut self, j: &Joined) {
        let mut v = [0; 4];
        v[LABELS] = 1;
        v[POSITIVES] = j.is_fraud as u64;
        v[TRUE_POSITIVES] = (j.is_fraud && j.flagged) as u64;
        v[ERRORS] = j.error() as u64;
        self.ring.add(u64::try_from(j.label_time).unwrap_or(0), j.group, v);
    }

    /// The error and label rates of the window; `None` without labels.
    pub fn rates(&self) -> Option<Rates> {
        let l = self.ring.totals(None);
        (l[LABELS] > 0).then(|| {
            let n = l[LABELS] as f64;
            Rates { error: l[ERRORS] as f64 / n, label: l[POSITIVES] as f64 / n }
        })
    }

    /// `group`'s true-positive rate and its positives; `None` without positives.
    pub fn tpr(&self, group: usize) -> Option<(f64, u64)> {
        let l = self.ring.group_totals(group, None);
        (l[POSITIVES] > 0).then(|| (l[TRUE_POSITIVES] as f64 / l[POSITIVES] as f64, l[POSITIVES]))
    }
}
