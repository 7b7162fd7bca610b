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

/// Registers the descriptions shown by `/metrics`.
pub fn describe() {
    describe_counter!(EVENTS_RECEIVED, "Events taken off the input topic");
    describe_counter!(EVENTS_SCORED, "Events scored, score acknowledged by the broker");
    describe_counter!(EVENTS_DEAD_LETTERED, "Events sent to the dead-letter topic, by error class");
    describe_counter!(EVENTS_LATE, "Events beyond the allowed lateness, not applied to windows");
    describe_counter!(EVENTS_REPLAYED, "Events fenced off as already applied (replays)");
    describe_counter!(BATCHES, "Micro-batches processed");
    describe_histogram!(BATCH_SIZE, Unit::Count, "Events per micro-batch");
    describe_histogram!(EVENT_LATENCY, Unit::Seconds, "Receipt of an event to acknowledgement of its score");
    describe_histogram!(MODEL_LATENCY, Unit::Seconds, "Model time per micro-batch");
    describe_gauge!(MODEL_INFO, "1 for the model version serving");
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
