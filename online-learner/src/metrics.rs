//! The learner's metrics, through the `metrics` facade (exported by whichever recorder the
//! binary installs, Prometheus in `weir run`/`weir learn`).

use crate::eval::WindowReport;
use crate::learner::Counters;

/// Labels learned (joined, evaluated, trained on).
pub const LABELS_LEARNED: &str = "weir_learner_labels_learned_total";
/// Join outcomes and evictions, by `reason`: `scores_expired`, `scores_evicted`,
/// `scores_duplicate`, `labels_unmatched`, `labels_evicted`, `labels_too_late`,
/// `labels_duplicate`, `feature_mismatch`, `replayed_skipped`.
pub const JOIN_DROPPED: &str = "weir_learner_join_dropped_total";
/// Scores and labels currently waiting in the join, by `side`.
pub const PENDING: &str = "weir_learner_pending";
/// Prequential metric by `model` (champion/challenger), `metric` (auc, log_loss,
/// precision, recall, calibration_error, accuracy) and `window` (labels).
pub const PREQUENTIAL: &str = "weir_learner_prequential";
/// Promotions and rollbacks done.
pub const PROMOTIONS: &str = "weir_learner_promotions_total";
pub const ROLLBACKS: &str = "weir_learner_rollbacks_total";

/// Publishes the current counters and window metrics (absolute values: gauges and
/// counters set, so a restored learner reports its checkpointed totals).
pub fn publish(c: &Counters, pending: (usize, usize), reports: &[WindowReport]) {
    metrics::counter!(LABELS_LEARNED).absolute(c.learned);
    let j = &c.join;
    for (reason, v) in [
        ("scores_expired", j.scores_expired),
        ("scores_evicted", j.scores_evicted),
        ("scores_duplicate", j.scores_duplicate),
        ("labels_unmatched", j.labels_unmatched),
        ("labels_evicted", j.labels_evicted),
        ("labels_too_late", j.labels_too_late),
        ("labels_duplicate", j.labels_duplicate),
        ("feature_mismatch", c.feature_mismatch),
        ("replayed_skipped", c.replayed_skipped),
    ] {
        metrics::counter!(JOIN_DROPPED, "reason" => reason).absolute(v);
    }
    metrics::gauge!(PENDING, "side" => "scores").set(pending.0 as f64);
    metrics::gauge!(PENDING, "side" => "labels").set(pending.1 as f64);
    for r in reports {
        let window = r.window.to_string();
        for (model, m) in [("champion", &r.champion), ("challenger", &r.challenger)] {
            for (metric, v) in [
                ("auc", m.auc),
                ("log_loss", m.log_loss),
                ("precision", m.precision),
                ("recall", m.recall),
                ("calibration_error", m.calibration_error),
                ("accuracy", m.accuracy),
            ] {
                if let Some(v) = v {
                    metrics::gauge!(PREQUENTIAL, "model" => model, "metric" => metric, "window" => window.clone()).set(v);
                }
            }
        }
    }
}
