//! The monitor stage: `[scores] + [labels] → monitor → [drift-alerts]` (+ webhook, gauges).
//!
//! It reads the scores and labels topics with a consumer group of its own
//! (`monitor.group_id`, default `<kafka.group_id>-monitor`), so it never slows scoring:
//! if it falls behind, only its own lag grows (`weir_consumer_lag{group=…}`). Each
//! micro-batch is fed to [`weir_monitor::Monitor`]; the `DriftAlert`s it returns are
//! produced to the alerts topic and acknowledged before the batch's offsets are stored
//! (at-least-once, like the scoring loop). A batch whose alerts could not be delivered is
//! retried without being counted twice: the alerts wait in the handler and only they are
//! sent again. Alert ids are deterministic (subject, statistic, episode, window end), so a
//! consumer of the alerts topic can drop the duplicates a crash-replay may cause.
//!
//! The webhook is best effort: one JSON POST per alert over plain HTTP with a short
//! timeout; a failure is logged and counted (`weir_monitor_webhook_failures_total`), never
//! retried and never holding the stream back — the Kafka topic is the record.
//!
//! The reference: `monitor.reference_file` if it exists; else `reference.json` next to the
//! model's `metadata.json` in `scorer.model_dir` (written by whoever trained the model: the
//! distributions it was trained on); else a warm-up on the first scores, saved to
//! `monitor.reference_file` when that is set. The monitor's other state lives in memory:
//! after a restart, windows refill from where its group's offsets stand.
//!
//! Event time: each partition of the scores topic has its own watermark (see
//! [`weir_monitor::watch`]), fed with the partition each record came from. The consumer's
//! rebalance callback logs assignments and revocations ([`RebalanceLog`]); the handler
//! applies them before each batch, so a partition assigned but not yet read holds the
//! windows open (until `idle_timeout_secs`), and a revoked one stops holding them at once.
//! Processing time for idleness is the time since the stage started.
//!
//! A failing monitor does not stop `weir run`'s scoring: it is logged and the pipeline
//! goes on (scores matter more than their drift report).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weir_ingest::consumer::{BatchHandler, ConsumerLoop, Disposition, InputRecord, LoopStats, RebalanceEvent, RebalanceLog};
use weir_ingest::producer::{EventProducer, OutgoingMessage};
use weir_ingest::Error as IngestError;
use weir_monitor::metrics as m;
use weir_monitor::watch::Source;
use weir_monitor::{Monitor, ReferenceProfile};
use weir_schemas::events::{DriftAlert, Label};
use weir_schemas::score_versions::ScoreDecoder;
use weir_schemas::wire::{subjects, Decoder, Encoder};

use crate::config::monitor::parse_http_url;
use crate::config::WeirConfig;
use crate::wiring::schema_registry;

/// A model's reference profile (a `weir_monitor::ReferenceProfile` as JSON), next to its
/// `metadata.json` in the registry.
pub const MODEL_REFERENCE_FILE: &str = "reference.json";

/// Counters of the stage, shared with whoever watches it (tests, the demo).
#[derive(Default)]
pub struct MonitorStats {
    pub scores: AtomicU64,
    pub labels: AtomicU64,
    pub undecodable: AtomicU64,
    /// Labels joined to their score so far.
    pub labels_joined: AtomicU64,
    /// Scores whose pane had closed when they came (counted, not binned).
    pub late: AtomicU64,
    /// Panes closed before the watermark passed them (a partition lagging more than
    /// `max_open_secs`).
    pub forced_closes: AtomicU64,
    /// Largest gap between two partitions' newest event times, ms.
    pub max_partition_skew_ms: AtomicU64,
    /// Scores past the warm-up span read before the warm-up reference was ready.
    pub unbinned_before_reference: AtomicU64,
    pub alerts_sent: AtomicU64,
    pub alerts: std::sync::Mutex<Vec<DriftAlert>>,
}

pub struct MonitorHandler {
    monitor: Monitor,
    scores_topic: String,
    labels_topic: String,
    score_decoder: ScoreDecoder,
    label_decoder: Decoder<Label>,
    alert_encoder: Encoder,
    producer: EventProducer,
    alerts_topic: String,
    webhook: Option<String>,
    reference_file: Option<PathBuf>,
    stats: Arc<MonitorStats>,
    /// Alerts of a batch already fed to the monitor, not yet acknowledged by the broker.
    unsent: Option<Vec<DriftAlert>>,
    evaluations_seen: u64,
    /// Assignment changes logged by the consumer's rebalance callback.
    rebalances: RebalanceLog,
    /// Processing time for partition idleness is measured from here.
    started: Instant,
}

impl MonitorHandler {
    pub fn new(config: &WeirConfig, producer: EventProducer, stats: Arc<MonitorStats>) -> anyhow::Result<Self> {
        let stage = &config.monitor;
        let registry = schema_registry(config)?;
        let label_reader = registry.latest(subjects::LABEL)?;
        let model_reference =
            config.scorer.model_dir.as_ref().map(|d| d.join(MODEL_REFERENCE_FILE)).filter(|p| p.is_file());
        let reference = stage.reference_file.clone().filter(|p| p.is_file()).or(model_reference);
        let monitor = match &reference {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                let profile: ReferenceProfile =
                    serde_json::from_str(&text).with_context(|| format!("parsing reference {}", path.display()))?;
                info!(path = %path.display(), "monitor reference loaded");
                Monitor::with_reference(stage.watch.clone(), &profile)?
            }
            _ => Monitor::new(stage.watch.clone())?,
        };
        Ok(MonitorHandler {
            monitor,
            scores_topic: config.kafka.topics.scores.clone(),
            labels_topic: config.kafka.topics.labels.clone(),
            score_decoder: ScoreDecoder::new(registry.clone())?,
            label_decoder: Decoder::new(registry.clone(), subjects::LABEL, &label_reader),
            alert_encoder: Encoder::new(registry.as_ref(), subjects::DRIFT_ALERT)?,
            producer,
            alerts_topic: stage.alerts_topic.clone(),
            webhook: stage.webhook_url.clone(),
            reference_file: stage.reference_file.clone(),
            stats,
            unsent: None,
            evaluations_seen: 0,
            rebalances: RebalanceLog::default(),
            started: Instant::now(),
        })
    }

    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// The log the consumer's rebalance callback must append to (see [`run_monitor`]).
    pub fn rebalance_log(&self) -> RebalanceLog {
        self.rebalances.clone()
    }

    fn now_ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    /// Applies the assignment changes of the scores topic logged since the last batch.
    fn apply_rebalances(&mut self, alerts: &mut Vec<DriftAlert>) {
        let events = match self.rebalances.lock() {
            Ok(mut log) => std::mem::take(&mut *log),
            Err(_) => return,
        };
        let now = self.now_ms(Instant::now());
        for event in events {
            let (RebalanceEvent::Assigned(parts) | RebalanceEvent::Revoked(parts)) = &event;
            let sources: Vec<Source<'_>> = parts
                .iter()
                .filter(|(t, _)| *t == self.scores_topic)
                .map(|(topic, partition)| Source { topic, partition: *partition })
                .collect();
            match event {
                RebalanceEvent::Assigned(_) => self.monitor.assign_partitions(&sources, now),
                RebalanceEvent::Revoked(_) => alerts.extend(self.monitor.revoke_partitions(&sources, now)),
            }
        }
    }

    fn feed(&mut self, batch: &[InputRecord<'_>]) -> Vec<DriftAlert> {
        let mut alerts = Vec::new();
        self.apply_rebalances(&mut alerts);
        let (mut scores, mut labels, mut bad) = (0u64, 0u64, 0u64);
        for r in batch {
            let Some(payload) = r.payload else {
                bad += 1;
                continue;
            };
            if r.topic == self.scores_topic {
                match self.score_decoder.decode(payload) {
                    Ok(s) => {
                        scores += 1;
                        let source = Source { topic: r.topic, partition: r.partition };
                        let now = self.now_ms(r.received_at);
                        alerts.extend(self.monitor.observe_score_from(&s, source, now));
                    }
                    Err(_) => bad += 1,
                }
            } else if r.topic == self.labels_topic {
                match self.label_decoder.decode(payload) {
                    Ok(l) => {
                        labels += 1;
                        self.monitor.observe_label(&l);
                    }
                    Err(_) => bad += 1,
                }
            }
        }
        // Partitions silent for the idle timeout stop holding the windows open.
        alerts.extend(self.monitor.tick(self.now_ms(Instant::now())));
        self.stats.scores.fetch_add(scores, Ordering::Relaxed);
        self.stats.labels.fetch_add(labels, Ordering::Relaxed);
        self.stats.undecodable.fetch_add(bad, Ordering::Relaxed);
        self.stats.labels_joined.store(self.monitor.counts().labels_joined, Ordering::Relaxed);
        self.stats.late.store(self.monitor.counts().late, Ordering::Relaxed);
        self.stats.forced_closes.store(self.monitor.counts().forced_closes, Ordering::Relaxed);
        self.stats.max_partition_skew_ms.store(self.monitor.counts().max_partition_skew_ms, Ordering::Relaxed);
        self.stats.unbinned_before_reference.store(self.monitor.counts().unbinned_before_reference, Ordering::Relaxed);
        metrics::counter!(m::MONITOR_SCORES).increment(scores);
        metrics::counter!(m::MONITOR_LABELS).increment(labels);
        metrics::counter!(m::MONITOR_UNDECODABLE).increment(bad);
        let now = weir_schemas::now_ms();
        for a in &mut alerts {
            a.raised_at = now;
        }
        alerts
    }

    fn save_reference(&mut self) {
        let (Some(profile), Some(path)) = (self.monitor.take_completed_warmup(), &self.reference_file) else { return };
        let written = serde_json::to_vec(&profile)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| std::fs::write(path, bytes).map_err(anyhow::Error::from));
        match written {
            Ok(()) => info!(path = %path.display(), "monitor reference saved"),
            Err(e) => warn!(path = %path.display(), error = %e, "could not save the monitor reference"),
        }
    }

    fn publish_gauges(&mut self) {
        let evaluations = self.monitor.counts().evaluations;
        if evaluations == self.evaluations_seen {
            return;
        }
        self.evaluations_seen = evaluations;
        if let Some(e) = self.monitor.last_evaluation() {
            tracing::debug!(window_end = e.window_end, events = e.events, readings = ?e.readings, "monitor evaluation");
            for r in &e.readings {
                metrics::gauge!(m::MONITOR_STATISTIC, "subject" => r.subject.clone(), "statistic" => r.statistic)
                    .set(r.value);
            }
            metrics::gauge!(m::MONITOR_WINDOW_EVENTS).set(e.events as f64);
        }
        let c = self.monitor.counts();
        metrics::gauge!(m::MONITOR_LABELS_WAITING).set(self.monitor.waiting_for_labels() as f64);
        metrics::gauge!(m::MONITOR_LABELS_JOINED).set(c.labels_joined as f64);
    }

    async fn deliver(&mut self, alerts: &[DriftAlert]) -> weir_ingest::Result<()> {
        let mut messages = Vec::with_capacity(alerts.len());
        for a in alerts {
            messages.push(OutgoingMessage::new(a.subject.as_bytes(), self.alert_encoder.encode(a)?));
        }
        self.producer
            .send_all(&self.alerts_topic, &messages)
            .await
            .map_err(|e| IngestError::handler(true, "delivering drift alerts", e))?;
        for a in alerts {
            metrics::counter!(m::DRIFT_ALERTS, "state" => a.state.clone(), "severity" => a.severity.clone())
                .increment(1);
            metrics::gauge!(m::DRIFT_ALERT_FIRING, "subject" => a.subject.clone(), "statistic" => a.statistic.clone())
                .set(if a.state == "firing" { 1.0 } else { 0.0 });
            info!(id = %a.alert_id, state = %a.state, subject = %a.subject, statistic = %a.statistic,
                value = a.value, threshold = a.threshold, severity = %a.severity, "drift alert");
        }
        self.stats.alerts_sent.fetch_add(alerts.len() as u64, Ordering::Relaxed);
        if let Ok(mut all) = self.stats.alerts.lock() {
            all.extend(alerts.iter().cloned());
        }
        if let Some(url) = &self.webhook {
            for a in alerts {
                if let Err(e) = post_json(url, a).await {
                    metrics::counter!(m::MONITOR_WEBHOOK_FAILURES).increment(1);
                    warn!(%url, error = %e, "webhook");
                }
            }
        }
        Ok(())
    }
}

impl BatchHandler for MonitorHandler {
    async fn handle(&mut self, batch: &[InputRecord<'_>]) -> weir_ingest::Result<Vec<Disposition>> {
        // A retry of a batch already fed: only its alerts are still owed.
        let alerts = match self.unsent.take() {
            Some(a) => a,
            None => {
                let a = self.feed(batch);
                self.save_reference();
                self.publish_gauges();
                a
            }
        };
        if !alerts.is_empty()
            && let Err(e) = self.deliver(&alerts).await
        {
            self.unsent = Some(alerts);
            return Err(e);
        }
        // Undecodable input is counted, not dead-lettered: the scores topic is weir's own
        // output, and the transactions dead-letter topic is for input.
        Ok(vec![Disposition::Done; batch.len()])
    }
}

/// Runs the monitor stage until `shutdown`.
pub async fn run_monitor(
    config: &WeirConfig,
    stats: Arc<MonitorStats>,
    shutdown: CancellationToken,
) -> anyhow::Result<LoopStats> {
    let stage = &config.monitor;
    let mut kafka = config.kafka.clone();
    kafka.group_id = stage.group_id(&config.kafka.group_id);
    let producer = EventProducer::new(&kafka)?;
    let handler = MonitorHandler::new(config, producer.clone(), stats)?;
    let topics = [config.kafka.topics.scores.as_str(), config.kafka.topics.labels.as_str()];
    let consumer = weir_ingest::consumer::subscribe_logging(&kafka, &topics, Some(handler.rebalance_log()))?;
    info!(group = %kafka.group_id, alerts = %stage.alerts_topic, "monitor started");
    let (loop_stats, handler) = ConsumerLoop::new(&kafka, consumer, producer, handler).run(shutdown).await?;
    let m = handler.monitor();
    info!(counts = ?m.counts(), scores_waiting_for_labels = m.waiting_for_labels(), "monitor stopped");
    Ok(loop_stats)
}

/// [`run_monitor`] on a task of its own.
pub fn spawn_monitor(
    config: WeirConfig,
    stats: Arc<MonitorStats>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<anyhow::Result<LoopStats>> {
    tokio::spawn(async move { run_monitor(&config, stats, shutdown).await })
}

/// POSTs `alert` as JSON; Ok on a 2xx answer within 5 s.
pub async fn post_json(url: &str, alert: &DriftAlert) -> anyhow::Result<()> {
    let (authority, path) = parse_http_url(url).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    let body = serde_json::to_vec(alert)?;
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&authority).await?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        anyhow::Ok(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange).await.context("webhook timed out")??;
    let status_line = String::from_utf8_lossy(&answer[..answer.iter().position(|&b| b == b'\r').unwrap_or(answer.len())]).to_string();
    let code: u16 = status_line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    anyhow::ensure!((200..300).contains(&code), "webhook answered {status_line:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use weir_monitor::MonitorConfig;

    use super::*;

    #[test]
    fn the_reference_comes_from_the_model_directory() {
        let dir = tempfile::tempdir().unwrap();
        let profile = ReferenceProfile {
            numeric: [("amount_log".to_string(), vec![1.0, 2.0, 3.0, 4.0])].into(),
            categorical: [("country".to_string(), [("FR".to_string(), 3u64)].into())].into(),
            score: vec![0.1, 0.2],
        };
        std::fs::write(dir.path().join(MODEL_REFERENCE_FILE), serde_json::to_vec(&profile).unwrap()).unwrap();
        let mut config = WeirConfig::with_brokers("127.0.0.1:1");
        let producer = EventProducer::new(&config.kafka).unwrap();
        let stats = Arc::new(MonitorStats::default());
        let warm = MonitorHandler::new(&config, producer.clone(), stats.clone()).unwrap();
        assert!(!warm.monitor().reference_ready());
        config.scorer.model_dir = Some(dir.path().to_path_buf());
        let given = MonitorHandler::new(&config, producer, stats).unwrap();
        assert!(given.monitor().reference_ready());
    }

    /// The committed baseline ships the monitor's reference (tools/train/monitor_reference.py):
    /// it loads, covers the model's features and the monitored attributes, and its scores
    /// (onnxruntime, in the script) are what weir's scorer (tract) gives on the same rows.
    #[test]
    fn the_baseline_model_ships_a_reference_that_weirs_scorer_agrees_with() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fraud-baseline/v1");
        let text = std::fs::read_to_string(dir.join(MODEL_REFERENCE_FILE)).unwrap();
        let profile: ReferenceProfile = serde_json::from_str(&text).unwrap();
        let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("metadata.json")).unwrap()).unwrap();
        let names: Vec<String> = serde_json::from_value(meta["feature_names"].clone()).unwrap();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(profile.numeric.keys().cloned().collect::<Vec<_>>(), sorted);
        let n = profile.score.len();
        assert_eq!(n, 10_000);
        assert!(profile.numeric.values().all(|v| v.len() == n));
        let attributes: Vec<&str> = profile.categorical.keys().map(String::as_str).collect();
        assert_eq!(attributes, ["channel", "country", "currency", "customer_segment"]);
        let training_rows = meta["lineage"]["training_rows"].as_u64().unwrap();
        assert!(profile.categorical.values().all(|c| c.values().sum::<u64>() == training_rows));
        assert!(Monitor::with_reference(MonitorConfig::default(), &profile).unwrap().reference_ready());

        let model = weir_scorer::model::LoadedModel::load_dir(&dir, &names, &[256]).unwrap();
        let rows: Vec<f32> = (0..n).flat_map(|i| names.iter().map(move |f| (f, i))).map(|(f, i)| profile.numeric[f][i] as f32).collect();
        let scores = model.score(&rows).unwrap();
        let worst = scores.iter().zip(&profile.score).map(|(a, b)| (*a as f64 - b).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-5, "tract vs onnxruntime: {worst}");
    }

    #[tokio::test]
    async fn webhook_posts_the_alert_as_json() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !String::from_utf8_lossy(&got).contains("\"raised_at\"") {
                let n = s.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
            String::from_utf8(got).unwrap()
        });
        let alert = DriftAlert {
            alert_id: "amount_log/psi/1@60000".into(),
            state: "firing".into(),
            subject: "amount_log".into(),
            statistic: "psi".into(),
            value: 0.4,
            threshold: 0.25,
            window_start: 0,
            window_end: 60_000,
            severity: "warning".into(),
            model_version: Some("v1".into()),
            raised_at: 1,
        };
        post_json(&url, &alert).await.unwrap();
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /alerts HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("\"alert_id\":\"amount_log/psi/1@60000\""), "{request}");
    }
}
