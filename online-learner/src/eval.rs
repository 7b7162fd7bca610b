//! Prequential (test-then-train) evaluation: every joined label is first scored by the
//! champion (the score the scorer served, carried on the `Score` event) and by the
//! challenger (the learner's prediction *before* it learns the label); only then does the
//! challenger train on it. Both are judged on the same labels, neither on a label it was
//! trained on.
//!
//! Metrics over rolling windows of the last `w` labels: ROC AUC (Mann–Whitney with average
//! ranks for ties, like scikit-learn's `roc_auc_score`), log loss (probabilities clipped
//! to `[ε, 1−ε]`, ε = f64 machine epsilon, like `log_loss`), precision and recall at the
//! decision threshold (flagged = score ≥ threshold), and expected calibration error over
//! equal-width bins (`Σ_b n_b/n · |mean score_b − fraud rate_b|`). `tools/golden/learner_golden.py`
//! computes the same numbers with scikit-learn and numpy for the golden test.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// One joined label as evaluation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The score served for the event (champion).
    pub champion: f64,
    /// The learner's prediction before training on it (challenger).
    pub challenger: f64,
    pub label: bool,
}

/// ROC AUC; `None` unless both classes are present.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let n = scores.len();
    let pos = labels.iter().filter(|&&y| y).count();
    let neg = n - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += avg_rank * order[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let (pos, neg) = (pos as f64, neg as f64);
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// Mean binary cross-entropy, probabilities clipped to `[ε, 1−ε]`.
pub fn log_loss(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let eps = f64::EPSILON;
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(eps, 1.0 - eps);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    Some(total / scores.len() as f64)
}

/// Precision and recall with flagged = score ≥ `threshold`; each `None` when undefined
/// (nothing flagged; no positives).
pub fn precision_recall(scores: &[f64], labels: &[bool], threshold: f64) -> (Option<f64>, Option<f64>) {
    let (mut tp, mut fp, mut fneg) = (0u64, 0u64, 0u64);
    for (&p, &y) in scores.iter().zip(labels) {
        match (p >= threshold, y) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => {}
        }
    }
    let precision = (tp + fp > 0).then(|| tp as f64 / (tp + fp) as f64);
    let recall = (tp + fneg > 0).then(|| tp as f64 / (tp + fneg) as f64);
    (precision, recall)
}

/// Expected calibration error over `bins` equal-width bins of `[0, 1]`.
pub fn calibration_error(scores: &[f64], labels: &[bool], bins: usize) -> Option<f64> {
    if scores.is_empty() || bins == 0 {
        return None;
    }
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    let mut count = vec![0u64; bins];
    for (&p, &y) in scores.iter().zip(labels) {
        let b = ((p.clamp(0.0, 1.0) * bins as f64) as usize).min(bins - 1);
        sum_p[b] += p;
        sum_y[b] += if y { 1.0 } else { 0.0 };
        count[b] += 1;
    }
    let n = scores.len() as f64;
    Some(
        (0..bins)
            .filter(|&b| count[b] > 0)
            .map(|b| {
                let c = count[b] as f64;
                (c / n) * (sum_p[b] / c - sum_y[b] / c).abs()
            })
            .sum(),
    )
}

/// All metrics of one model over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub auc: Option<f64>,
    pub log_loss: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub calibration_error: Option<f64>,
    /// Share of labels on the right side of the threshold.
    pub accuracy: Option<f64>,
}

/// Share of `(score ≥ threshold) == label`.
pub fn accuracy(scores: &[f64], labels: &[bool], threshold: f64) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    let right = scores.iter().zip(labels).filter(|(p, y)| (**p >= threshold) == **y).count();
    Some(right as f64 / scores.len() as f64)
}

impl Metrics {
    pub fn compute(scores: &[f64], labels: &[bool], threshold: f64, bins: usize) -> Self {
        let (precision, recall) = precision_recall(scores, labels, threshold);
        Metrics {
            auc: auc(scores, labels),
            log_loss: log_loss(scores, labels),
            precision,
            recall,
            calibration_error: calibration_error(scores, labels, bins),
            accuracy: accuracy(scores, labels, threshold),
        }
    }
}

/// Champion and challenger over the last `window` labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    pub window: usize,
    /// Labels actually in the window (fewer than `window` early on).
    pub labels: usize,
    pub positives: usize,
    pub champion: Metrics,
    pub challenger: Metrics,
}

/// The rolling evaluation: the last `max(windows)` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Prequential {
    windows: Vec<usize>,
    threshold: f64,
    bins: usize,
    ring: VecDeque<Entry>,
}

impl Prequential {
    pub fn new(windows: &[usize], threshold: f64, bins: usize) -> Self {
        let mut windows = windows.to_vec();
        windows.sort_unstable();
        windows.dedup();
        Prequential { windows, threshold, bins, ring: VecDeque::new() }
    }

    pub fn capacity(&self) -> usize {
        self.windows.last().copied().unwrap_or(0)
    }

    pub fn push(&mut self, e: Entry) {
        self.ring.push_back(e);
        while self.ring.len() > self.capacity() {
            self.ring.pop_front();
        }
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.ring.iter()
    }

    pub fn report(&self) -> Vec<WindowReport> {
        self.windows.iter().map(|&w| self.window_report(w)).collect()
    }

    pub fn window_report(&self, window: usize) -> WindowReport {
        let skip = self.ring.len().saturating_sub(window);
        let last: Vec<&Entry> = self.ring.iter().skip(skip).collect();
        let labels: Vec<bool> = last.iter().map(|e| e.label).collect();
        let champion: Vec<f64> = last.iter().map(|e| e.champion).collect();
        let challenger: Vec<f64> = last.iter().map(|e| e.challenger).collect();
        WindowReport {
            window,
            labels: last.len(),
            positives: labels.iter().filter(|&&y| y).count(),
            champion: Metrics::compute(&champion, &labels, self.threshold, self.bins),
            challenger: Metrics::compute(&challenger, &labels, self.threshold, self.bins),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // Pairs (pos, neg): (0.8 vs 0.1) win, (0.8 vs 0.4) win, (0.35 vs 0.1) win, (0.35 vs 0.4) loss.
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        assert_eq!(auc(&s, &y), Some(0.75));
        // Ties count one half.
        assert_eq!(auc(&[0.5, 0.5], &[true, false]), Some(0.5));
        assert_eq!(auc(&[0.5, 0.6], &[true, true]), None);
    }

    #[test]
    fn log_loss_and_calibration_by_hand() {
        let ll = log_loss(&[0.5, 0.5], &[true, false]).unwrap();
        assert!((ll - std::f64::consts::LN_2).abs() < 1e-15);
        assert!(log_loss(&[0.0], &[true]).unwrap().is_finite());
        // Two bins: [0.2, 0.3] (rate 0) and [0.9] (rate 1).
        let e = calibration_error(&[0.2, 0.3, 0.9], &[false, false, true], 2).unwrap();
        assert!((e - (2.0 / 3.0 * 0.25 + 1.0 / 3.0 * 0.1)).abs() < 1e-12, "{e}");
        let (p, r) = precision_recall(&[0.9, 0.6, 0.2, 0.1], &[true, false, true, false], 0.5);
        assert_eq!((p, r), (Some(0.5), Some(0.5)));
        assert_eq!(precision_recall(&[0.1], &[false], 0.5), (None, None));
    }

    #[test]
    fn windows_see_only_their_tail() {
        let mut q = Prequential::new(&[2, 4], 0.5, 10);
        for (i, y) in [true, false, true, false, false, true].into_iter().enumerate() {
            q.push(Entry { champion: i as f64 / 10.0, challenger: 0.5, label: y });
        }
        let r = q.report();
        assert_eq!((r[0].window, r[0].labels, r[0].positives), (2, 2, 1));
        assert_eq!((r[1].window, r[1].labels, r[1].positives), (4, 4, 2));
        assert_eq!(q.entries().count(), 4);
        assert_eq!(r[0].champion.auc, Some(1.0)); // 0.5 (neg) < 0.5? no: 0.4 neg, 0.5 pos
    }
}
