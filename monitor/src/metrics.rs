//! weir's Prometheus metrics: the names, what they mean, and the `/metrics` endpoint.
//!
//! Stages record through the `metrics` crate facade (cheap when no exporter is
//! installed); `weir run` installs the Prometheus exporter when `[metrics] listen` is set.

use std::net::SocketAddr;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::error::{MonitorError, Result};

/// Events taken off the input topic.
pub const EVENTS_RECEIVED: &str = "weir_events_received_total";
/// Events scored and their score acknowledged by the broker.
pub const EVENTS_SCORED: &str = "weir_events_scored_total";
/// Events sent to the dead-letter topic, by `class` (Malformed, UnknownSchema, Invalid).
pub const EVENTS_DEAD_LETTERED: &str = "weir_events_dead_lettered_total";
/// Events older than the allowed lateness: not applied to the windows.
pub const EVENTS_LATE: &str = "weir_events_late_total";
/// Late observations per entity kind (`entity` label): an event late for one entity (say
/// a merchant fed by a partition far ahead) may be on time for another.
pub const FEATURE_LATE: &str = "weir_feature_late_observations_total";
/// Events the feature store had applied before (a replay after a crash or rebalance).
pub const EVENTS_REPLAYED: &str = "weir_events_replayed_total";
/// Micro-batches processed.
pub const BATCHES: &str = "weir_batches_total";
/// Events per micro-batch.
pub const BATCH_SIZE: &str = "weir_batch_size";
/// Seconds from receipt of an event to the acknowledgement of its score.
pub const EVENT_LATENCY: &str = "weir_event_latency_seconds";
/// Seconds in the model per micro-batch.
pub const MODEL_LATENCY: &str = "weir_model_batch_seconds";
/// 1 for the model version serving, labelled `model` and `version`.
pub const MODEL_INFO: &str = "weir_model_info";

/// Consumer lag of a consumer group, labelled `group`: messages on its topics not yet
/// committed by it (the scoring group on transactions, the monitor group on scores+labels).
pub const CONSUMER_LAG: &str = "weir_consumer_lag";
/// Every statistic the monitor read at its last evaluation, labelled `subject` (a feature,
/// an attribute, `score`, `data_quality`, `fairness:<attr>[:<group>]`, `error_rate`,
/// `label_rate`) and `statistic` (`psi`, `ks`, `js`, `wasserstein1`, `chi2`, `chi2_p`,
/// `other_share`, `invalid_rate`, `missing_rate`, `late_rate`, `decision_rate`,
/// `mean_score`, `tpr`, `decision_rate_gap`, `tpr_gap`, `rate`, `adwin`, `page_hinkley`).
pub const MONITOR_STATISTIC: &str = "weir_monitor_statistic";
/// Scores in the monitor's last evaluated window.
pub const MONITOR_WINDOW_EVENTS: &str = "weir_monitor_window_events";
/// Scores and labels the monitor consumed; messages it could not decode.
pub const MONITOR_SCORES: &str = "weir_monitor_scores_total";
pub const MONITOR_LABELS: &str = "weir_monitor_labels_total";
pub const MONITOR_UNDECODABLE: &str = "weir_monitor_undecodable_total";
/// Scored events waiting for their label; labels joined so far.
pub const MONITOR_LABELS_WAITING: &str = "weir_monitor_labels_waiting";
pub const MONITOR_LABELS_JOINED: &str = "weir_monitor_labels_joined";
/// Drift alerts delivered, by `state` (firing, cleared) and `severity`.
pub const DRIFT_ALERTS: &str = "weir_drift_alerts_total";
/// 1 while an alert is firing, 0 once cleared; labelled `subject` and `statistic`.
pub const DRIFT_ALERT_FIRING: &str = "weir_drift_alert_firing";
/// Webhook POSTs that failed (the alert is still on the alerts topic).
pub const MONITOR_WEBHOOK_FAILURES: &str = "weir_monitor_webhook_failures_total";

/// Registers the descriptions shown by `/metrics`.
pub fn describe() {
    describe_counter!(EVENTS_RECEIVED, "Events taken off the input topic");
    describe_counter!(EVENTS_SCORED, "Events scored, score acknowledged by the broker");
    describe_counter!(EVENTS_DEAD_LETTERED, "Events sent to the dead-letter topic, by error class");
    describe_counter!(EVENTS_LATE, "Events beyond the allowed lateness, not applied to windows");
    describe_counter!(FEATURE_LATE, "Observations beyond the allowed lateness per entity kind, not applied");
    describe_counter!(EVENTS_REPLAYED, "Events fenced off as already applied (replays)");
    describe_counter!(BATCHES, "Micro-batches processed");
    describe_histogram!(BATCH_SIZE, Unit::Count, "Events per micro-batch");
    describe_histogram!(EVENT_LATENCY, Unit::Seconds, "Receipt of an event to acknowledgement of its score");
    describe_histogram!(MODEL_LATENCY, Unit::Seconds, "Model time per micro-batch");
    describe_gauge!(MODEL_INFO, "1 for the model version serving");
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
