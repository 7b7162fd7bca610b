//! weir's Prometheus metrics: the one place for their names (each a documented
//! constant: kind, unit, labels), their descriptions, and the `/metrics` endpoint.
//!
//! Stages record through the `metrics` crate facade (cheap when no exporter is
//! installed), naming a metric only by its constant here; `weir run` installs the
//! Prometheus exporter when `[metrics] listen` is set. Every metric weir exports is named
//! here, the online learner's (`weir_learner_*`) included: the binary records them.

use std::net::SocketAddr;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::error::{MonitorError, Result};

// Each name below: what it counts, its kind and unit, and its labels. A name is used
// only through its constant, so a rename is one edit here.

// ---- The scoring pipeline ----

/// `weir_events_received_total` — counter, events taken off the input topic. No labels.
pub const EVENTS_RECEIVED: &str = "weir_events_received_total";
/// `weir_events_scored_total` — counter, events scored and their score acknowledged by
/// the broker. No labels.
pub const EVENTS_SCORED: &str = "weir_events_scored_total";
/// `weir_events_dead_lettered_total` — counter, events sent to the dead-letter topic.
/// Label `class`: `Malformed`, `UnknownSchema`, `Invalid`.
pub const EVENTS_DEAD_LETTERED: &str = "weir_events_dead_lettered_total";
/// `weir_dead_letters_truncated_total` — counter, dead letters delivered as a truncated
/// copy (payload or key too large for the producer's `message.max.bytes`; the original
/// stays on the source topic). No labels.
pub const DEAD_LETTERS_TRUNCATED: &str = "weir_dead_letters_truncated_total";
/// `weir_dead_letter_failures_total` — counter, failed attempts at delivering a batch's
/// dead letters (each retried; persisting, they stop the pipeline). Label `reason`:
/// `too_large`, `topic_refused`, `unreachable`, `other`.
pub const DEAD_LETTER_FAILURES: &str = "weir_dead_letter_failures_total";
/// `weir_events_late_total` — counter, events older than the allowed lateness: not
/// applied to the windows. No labels.
pub const EVENTS_LATE: &str = "weir_events_late_total";
/// `weir_feature_late_observations_total` — counter, late observations. Label `entity`
/// (the entity kind): an event late for one entity (say a merchant fed by a partition
/// far ahead) may be on time for another.
pub const FEATURE_LATE: &str = "weir_feature_late_observations_total";
/// `weir_events_replayed_total` — counter, events the feature store had applied before
/// (a replay after a crash or rebalance). No labels.
pub const EVENTS_REPLAYED: &str = "weir_events_replayed_total";
/// `weir_batches_total` — counter, micro-batches processed. No labels.
pub const BATCHES: &str = "weir_batches_total";
/// `weir_batch_size` — histogram, events per micro-batch. No labels.
pub const BATCH_SIZE: &str = "weir_batch_size";
/// `weir_event_latency_seconds` — histogram, seconds from receipt of an event to the
/// acknowledgement of its score. No labels.
pub const EVENT_LATENCY: &str = "weir_event_latency_seconds";
/// `weir_model_batch_seconds` — histogram, seconds in the model per micro-batch. No
/// labels.
pub const MODEL_LATENCY: &str = "weir_model_batch_seconds";

// ---- The feature store ----

/// `weir_store_state_corrupt_total` — counter, entity state blobs that did not decode:
/// each was copied aside to a quarantine key and the entity's state reset (its windows
/// restart empty). No labels.
pub const STORE_STATE_CORRUPT: &str = "weir_store_state_corrupt_total";

// ---- State kept in process (`state.mode = "local"`) and its serving copy ----

/// `weir_state_restores_total` — counter, partitions whose state was restored from the
/// changelog. No labels.
pub const STATE_RESTORES: &str = "weir_state_restores_total";
/// `weir_state_restored_records_total` — counter, changelog records those restores read.
pub const STATE_RESTORED_RECORDS: &str = "weir_state_restored_records_total";
/// `weir_state_entities` — gauge, entities kept in process over the owned partitions.
pub const STATE_ENTITIES: &str = "weir_state_entities";
/// `weir_serving_copy_lag_seconds` — histogram, from a batch's commit to its entities'
/// states reaching Redis's serving copy: how far the copy lags the stream.
pub const SERVING_LAG: &str = "weir_serving_copy_lag_seconds";
/// `weir_serving_copy_written_total` — counter, entity states written to the serving copy.
pub const SERVING_WRITTEN: &str = "weir_serving_copy_written_total";
/// `weir_serving_copy_pending` — gauge, entities waiting to be written to the serving
/// copy (grows while Redis is down).
pub const SERVING_PENDING: &str = "weir_serving_copy_pending";
/// `weir_serving_copy_up` — gauge, 1 while the serving copy's last write reached Redis, 0
/// while Redis is unreachable.
pub const SERVING_UP: &str = "weir_serving_copy_up";
/// `weir_serving_copy_resyncs_total` — counter, full rewrites of the serving copy after
/// Redis lost data.
pub const SERVING_RESYNCS: &str = "weir_serving_copy_resyncs_total";

// ---- Models and the registry ----

/// `weir_model_info` — gauge, 1 for the model version serving, 0 once swapped out.
/// Labels `model` (name) and `version`.
pub const MODEL_INFO: &str = "weir_model_info";
/// `weir_model_swaps_total` — counter, versions the registry watcher swapped into
/// service. Label `pointer` (`champion`, `challenger`).
pub const MODEL_SWAPS: &str = "weir_model_swaps_total";
/// `weir_model_refused_total` — counter, versions refused at validation. Labels
/// `pointer` (`champion`, `challenger`) and `reason` (`checksum`, `feature_mismatch`,
/// `unsupported_op`, `input_width`, `positive_class`, `canary`, `load`, `io`, `metadata`);
/// a champion refused at start-up is counted too.
pub const MODEL_REFUSED: &str = "weir_model_refused_total";

// ---- Shadow scoring (the challenger) ----

/// `weir_shadow_dropped_total` — counter, shadow events dropped because the challenger's
/// queue was full. No labels.
pub const SHADOW_DROPPED: &str = "weir_shadow_dropped_total";
/// `weir_shadow_scored_total` — counter, shadow events scored by the challenger and
/// delivered to the shadow topic. No labels.
pub const SHADOW_SCORED: &str = "weir_shadow_scored_total";
/// `weir_shadow_failed_total` — counter, shadow events whose scoring or delivery failed.
/// No labels.
pub const SHADOW_FAILED: &str = "weir_shadow_failed_total";

// ---- Kafka ----

/// `weir_consumer_lag` — gauge, messages on a consumer group's topics not yet committed
/// by it (the scoring group on the input topic, the monitor group on scores and labels).
/// Label `group`.
pub const CONSUMER_LAG: &str = "weir_consumer_lag";

// ---- The monitor ----

/// `weir_monitor_statistic` — gauge, every statistic the monitor read at its last
/// evaluation. Labels `subject` (a feature, an attribute, `score`, `data_quality`,
/// `fairness:<attr>[:<group>]`, `error_rate`, `label_rate`: see [`crate::subjects`]) and
/// `statistic` (`psi`, `ks`, `js`, `wasserstein1`, `chi2`, `chi2_p`, `other_share`,
/// `invalid_rate`, `missing_rate`, `late_rate`, `decision_rate`, `mean_score`, `tpr`,
/// `decision_rate_gap`, `tpr_gap`, `rate`, `adwin`, `page_hinkley`).
pub const MONITOR_STATISTIC: &str = "weir_monitor_statistic";
/// `weir_monitor_window_events` — gauge, scores in the monitor's last evaluated window.
/// No labels.
pub const MONITOR_WINDOW_EVENTS: &str = "weir_monitor_window_events";
/// `weir_monitor_scores_total` — counter, scores the monitor consumed. No labels.
pub const MONITOR_SCORES: &str = "weir_monitor_scores_total";
/// `weir_monitor_labels_total` — counter, labels the monitor consumed. No labels.
pub const MONITOR_LABELS: &str = "weir_monitor_labels_total";
/// `weir_monitor_undecodable_total` — counter, messages the monitor could not decode. No
/// labels.
pub const MONITOR_UNDECODABLE: &str = "weir_monitor_undecodable_total";
/// `weir_monitor_labels_waiting` — gauge, scored events waiting for their label. No
/// labels.
pub const MONITOR_LABELS_WAITING: &str = "weir_monitor_labels_waiting";
/// `weir_monitor_labels_joined` — gauge, labels joined to their score so far. No labels.
pub const MONITOR_LABELS_JOINED: &str = "weir_monitor_labels_joined";
/// `weir_drift_alerts_total` — counter, drift alerts delivered. Labels `state` (`firing`,
/// `cleared`) and `severity` (`info`, `warning`, `critical`).
pub const DRIFT_ALERTS: &str = "weir_drift_alerts_total";
/// `weir_drift_alert_firing` — gauge, 1 while an alert is firing, 0 once cleared. Labels
/// `subject` and `statistic`.
pub const DRIFT_ALERT_FIRING: &str = "weir_drift_alert_firing";
/// `weir_monitor_webhook_failures_total` — counter, webhook POSTs that failed (the alert
/// is still on the alerts topic). No labels.
pub const MONITOR_WEBHOOK_FAILURES: &str = "weir_monitor_webhook_failures_total";
/// `weir_learner_labels_learned_total` — counter, labels learned (joined, evaluated,
/// trained on). No labels.
pub const LEARNER_LABELS_LEARNED: &str = "weir_learner_labels_learned_total";
/// `weir_learner_join_dropped_total` — counter, join outcomes and evictions. Label
/// `reason`: `scores_expired`, `scores_evicted`, `scores_duplicate`, `labels_unmatched`,
/// `labels_evicted`, `labels_too_late`, `labels_duplicate`, `feature_mismatch`,
/// `not_binary`, `replayed_skipped`.
pub const LEARNER_JOIN_DROPPED: &str = "weir_learner_join_dropped_total";
/// `weir_learner_pending` — gauge, scores and labels waiting in the join. Label `side`
/// (`scores`, `labels`).
pub const LEARNER_PENDING: &str = "weir_learner_pending";
/// `weir_learner_prequential` — gauge, a prequential metric. Labels `model` (`champion`,
/// `challenger`), `metric` (`auc`, `log_loss`, `precision`, `recall`,
/// `calibration_error`, `accuracy`) and `window` (labels).
pub const LEARNER_PREQUENTIAL: &str = "weir_learner_prequential";
/// `weir_learner_promotions_total` — counter, learned versions promoted. No labels.
pub const LEARNER_PROMOTIONS: &str = "weir_learner_promotions_total";
/// `weir_learner_rollbacks_total` — counter, promoted versions rolled back. No labels.
pub const LEARNER_ROLLBACKS: &str = "weir_learner_rollbacks_total";

/// Registers the descriptions shown by `/metrics`.
pub fn describe() {
    describe_counter!(EVENTS_RECEIVED, "Events taken off the input topic");
    describe_counter!(EVENTS_SCORED, "Events scored, score acknowledged by the broker");
    describe_counter!(EVENTS_DEAD_LETTERED, "Events sent to the dead-letter topic, by error class");
    describe_counter!(DEAD_LETTERS_TRUNCATED, "Dead letters delivered as a truncated copy of the original");
    describe_counter!(DEAD_LETTER_FAILURES, "Failed attempts at delivering dead letters, by reason");
    describe_counter!(STORE_STATE_CORRUPT, "Corrupt entity state blobs quarantined and reset");
    describe_counter!(EVENTS_LATE, "Events beyond the allowed lateness, not applied to windows");
    describe_counter!(FEATURE_LATE, "Observations beyond the allowed lateness per entity kind, not applied");
    describe_counter!(EVENTS_REPLAYED, "Events fenced off as already applied (replays)");
    describe_counter!(BATCHES, "Micro-batches processed");
    describe_histogram!(BATCH_SIZE, Unit::Count, "Events per micro-batch");
    describe_histogram!(EVENT_LATENCY, Unit::Seconds, "Receipt of an event to acknowledgement of its score");
    describe_histogram!(MODEL_LATENCY, Unit::Seconds, "Model time per micro-batch");
    describe_gauge!(MODEL_INFO, "1 for the model version serving");
    describe_counter!(MODEL_SWAPS, "Model versions swapped into service, by pointer");
    describe_counter!(MODEL_REFUSED, "Model versions refused at validation, by pointer and reason");
    describe_counter!(SHADOW_DROPPED, "Shadow events dropped on a full challenger queue");
    describe_counter!(SHADOW_SCORED, "Shadow events scored by the challenger and delivered");
    describe_counter!(SHADOW_FAILED, "Shadow events whose scoring or delivery failed");
    describe_gauge!(CONSUMER_LAG, "Messages not yet committed by the consumer group");
    describe_gauge!(MONITOR_STATISTIC, "Drift, quality, fairness and concept statistics at the last evaluation");
    describe_gauge!(MONITOR_WINDOW_EVENTS, "Scores in the monitor's last evaluated window");
    describe_counter!(MONITOR_SCORES, "Scores consumed by the monitor");
    describe_counter!(MONITOR_LABELS, "Labels consumed by the monitor");
    describe_counter!(MONITOR_UNDECODABLE, "Messages the monitor could not decode");
    describe_gauge!(MONITOR_LABELS_WAITING, "Scored events waiting for their label");
    describe_gauge!(MONITOR_LABELS_JOINED, "Labels joined to their score");
    describe_counter!(DRIFT_ALERTS, "Drift alerts delivered, by state and severity");
    describe_gauge!(DRIFT_ALERT_FIRING, "1 while an alert is firing");
    describe_counter!(MONITOR_WEBHOOK_FAILURES, "Failed webhook deliveries");
    describe_counter!(LEARNER_LABELS_LEARNED, "Labels the online learner joined, evaluated and trained on");
    describe_counter!(LEARNER_JOIN_DROPPED, "Scores and labels the learner's join dropped, by reason");
    describe_gauge!(LEARNER_PENDING, "Scores and labels waiting in the learner's join, by side");
    describe_gauge!(LEARNER_PREQUENTIAL, "Prequential metrics of champion and challenger, by window");
    describe_counter!(LEARNER_PROMOTIONS, "Learned versions promoted");
    describe_counter!(LEARNER_ROLLBACKS, "Promoted versions rolled back");
}

/// Installs the Prometheus exporter serving `GET /metrics` on `listen`. Call once, inside
/// a tokio runtime.
pub fn install_prometheus(listen: SocketAddr) -> Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .install()
        .map_err(|e| MonitorError::Exporter(format!("cannot serve metrics on {listen}: {e}")))?;
    describe();
    Ok(())
}
