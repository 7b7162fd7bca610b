//! Concept drift once labels join: ADWIN and Page–Hinkley on the error indicator
//! (`flagged ≠ is_fraud`), ADWIN on the label indicator. A detection is judged at the
//! next evaluation; its alert states the window's rate as its value and the mean the
//! detector had learned before the change as its threshold.

use crate::config::ConceptConfig;
use crate::detectors::{Adwin, AdwinConfig, DriftDetector, PageHinkley, PageHinkleyConfig};
use crate::error::Result;
use crate::subjects::{ERROR_RATE_SUBJECT, LABEL_RATE_SUBJECT};

use super::check::{Check, Rules, Sheet};
use super::join::Joined;
use super::outcomes::Outcomes;

/// A concept-drift detector and what it learned since its last detection.
struct Watched<D> {
    detector: D,
    n: f64,
    sum: f64,
    /// Detections since the last evaluation.
    pending: u64,
    /// The mean before the most recent detection.
    before: f64,
}

impl<D: DriftDetector> Watched<D> {
    fn new(detector: D) -> Self {
        Watched { detector, n: 0.0, sum: 0.0, pending: 0, before: 0.0 }
    }

    fn update(&mut self, x: f64) {
        self.n += 1.0;
        self.sum += x;
        if self.detector.update(x) {
            self.pending += 1;
            self.before = self.sum / self.n;
            self.n = 0.0;
            self.sum = 0.0;
        }
    }
}

pub(super) struct Concept {
    error_adwin: Watched<Adwin>,
    error_ph: Watched<PageHinkley>,
    label_adwin: Watched<Adwin>,
    labels_since_evaluation: u64,
}

impl Concept {
    pub fn new(cfg: &ConceptConfig) -> Result<Self> {
        let adwin = || Adwin::new(AdwinConfig { delta: cfg.adwin_delta, ..Default::default() });
        Ok(Concept {
            error_adwin: Watched::new(adwin()?),
            error_ph: Watched::new(PageHinkley::new(PageHinkleyConfig {
                threshold: cfg.page_hinkley_threshold,
                ..Default::default()
            })?),
            label_adwin: Watched::new(adwin()?),
            labels_since_evaluation: 0,
        })
    }

    /// Feeds one joined label to the detectors, in label order.
    pub fn update(&mut self, j: &Joined) {
        let error = j.error() as u8 as f64;
        self.error_adwin.update(error);
        self.error_ph.update(error);
        self.label_adwin.update(j.is_fraud as u8 as f64);
        self.labels_since_evaluation += 1;
    }

    /// Reads the label window's rates and the detections since the last evaluation into
    /// `sheet`. A detector is judged when labels came since the last evaluation or it
    /// detected: a quiet spell without labels neither confirms nor clears.
    pub fn read(&self, outcomes: &Outcomes, rules: &Rules, sheet: &mut Sheet) {
        let rates = outcomes.rates();
        if let Some(r) = rates {
            sheet.read(ERROR_RATE_SUBJECT, "rate", r.error);
            sheet.read(LABEL_RATE_SUBJECT, "rate", r.label);
        }
        let labels_flowing = self.labels_since_evaluation > 0;
        let (error, label) = (rates.map(|r| r.error), rates.map(|r| r.label));
        for (subject, statistic, w, rate) in [
            (ERROR_RATE_SUBJECT, "adwin", (self.error_adwin.pending, self.error_adwin.before), error),
            (ERROR_RATE_SUBJECT, "page_hinkley", (self.error_ph.pending, self.error_ph.before), error),
            (LABEL_RATE_SUBJECT, "adwin", (self.label_adwin.pending, self.label_adwin.before), label),
        ] {
            let (pending, before) = w;
            sheet.read(subject, statistic, pending as f64);
            let value = (labels_flowing || pending > 0).then_some(pending as f64);
            let mut check = Check::new(subject, statistic, value, rules.detection());
            check.stated_value = rate;
            check.stated_threshold = Some(before);
            sheet.check(check);
        }
    }

    /// The evaluation is done: detections and labels count afresh.
    pub fn evaluated(&mut self) {
        self.error_adwin.pending = 0;
        self.error_ph.pending = 0;
        self.label_adwin.pending = 0;
        self.labels_since_evaluation = 0;
    }
}
