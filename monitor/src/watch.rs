//! The streaming monitor: every scored event in, drift alerts out. No I/O — the stage in
//! the `weir` binary feeds it from the scores and labels topics and ships what it returns.
//!
//! # What it watches, per rolling window of event time
//!
//! | subject | statistics (readings) | alert on |
//! |---|---|---|
//! | each numeric feature of the scored vector | `psi`, `ks`, `js`, `wasserstein1` | the feature's [`Threshold`](crate::config::Threshold) (default PSI > 0.25) |
//! | `score` | the same | [`MonitorConfig::score`] (default PSI > 0.2) |
//! | each categorical attribute (`country`, `channel`, ...) | `psi`, `chi2`, `chi2_p`, `other_share` | PSI (default > 0.25) |
//! | `data_quality` | `invalid_rate`, `missing_rate`, `late_rate` | [`QualityConfig`](crate::config::QualityConfig) |
//! | `fairness:<attribute>` | `decision_rate_gap`, `tpr_gap`, and per group `decision_rate`, `mean_score`, `tpr` | [`FairnessConfig`](crate::config::FairnessConfig) gaps |
//! | `error_rate`, `label_rate` | the window's rate; `adwin`, `page_hinkley` detections | a detection |
//!
//! # Time: watermarks per partition
//!
//! Windows are `window_panes` panes of `pane_secs` of event time. A pane is evaluated
//! when it *closes*, and it closes when the monitor's event-time watermark passes its end
//! (plus `allowed_lateness_secs`), as in Flink or Beam:
//!
//! - each source — a (topic, partition) of the scores topic, given to
//!   [`Monitor::observe_score_from`] — has its own watermark: the newest event time read
//!   from it minus `out_of_orderness_secs`;
//! - the monitor's watermark is the **minimum** over the active sources, and never moves
//!   back. A partition read minutes behind another (a backlog, a consumer catching up)
//!   holds the panes open until its scores have come, so they count in their own windows
//!   and the windows are those an in-order reading gives;
//! - a source assigned by a rebalance ([`Monitor::assign_partitions`]) holds the
//!   watermark from then on, even before its first score; a source with no score for
//!   `idle_timeout_secs` of processing time (the caller's clock, [`Monitor::tick`]) is
//!   idle and stops holding it until it delivers again; a revoked one
//!   ([`Monitor::revoke_partitions`]) stops at once. When every source is idle the
//!   watermark stays where it is: the newest panes wait for traffic (or
//!   [`Monitor::flush`]).
//!
//! Closing a pane evaluates the window ending with it: every statistic is read, fed to
//! its [`AlertMachine`](crate::alert::AlertMachine), and the transitions come back as
//! [`DriftAlert`]s (firing or cleared, same `alert_id` for both ends of an episode). Panes after it that are still
//! open keep filling. A score whose pane has already closed — behind the watermark by
//! more than the allowed lateness — is late: counted in `late_rate` of the next window to
//! close, not in the statistics (its label still joins). Labels are windowed by their own
//! `label_time`.
//!
//! Memory stays bounded: at most `max_open_secs` of event time is open ahead of the
//! oldest open pane. When a partition runs further ahead than that of the slowest, the
//! oldest panes are closed anyway ([`MonitorCounts::forced_closes`]) and the slow
//! partition's scores for them are counted late: the skew a monitor absorbs is a
//! configured, stated amount. [`observe_score`](Monitor::observe_score) is the one-source
//! form (a single in-order stream). [`MonitorCounts::max_partition_skew_ms`] reports how
//! far apart the partitions were read.
//!
//! # Reference
//!
//! A [`ReferenceProfile`] (samples of each numeric feature and the score, category counts
//! of each attribute) given at start, or else the scores of the first `warmup_secs` of
//! event time (a seeded reservoir sample of at most `reference_sample` values per
//! feature; exact category counts). The warm-up ends when the newest event time is one
//! window past its span, so out-of-order scores of the span still count and later ones
//! never do. Scores past the span read before then (a partition read ahead) wait, at
//! most `warmup_buffer` of them, and are binned once the reference is ready. Until the
//! reference is ready only data quality, fairness and concept drift are evaluated.
//!
//! # Memory
//!
//! Fixed by the configuration, never by the stream: with `slots = window_panes +
//! max_open_secs / pane_secs`, per numeric feature `bins × slots` cells, per attribute
//! `(categories + 1) × slots` counters, one watermark per partition, per group a few counters per
//! pane, the detectors' O(log n) buckets, the warm-up sample (`warmup_events` values per
//! feature, and at most `warmup_buffer` scores read past the span, dropped once the
//! reference is built) and at most `label_join_capacity`
//! scored events waiting for a label.
//!
//! # Labels and concept drift
//!
//! A label is joined to its score by `event_id` (scores wait in a bounded FIFO). The
//! error indicator is `flagged ≠ is_fraud`, where flagged means any decision other than
//! `approve`; ADWIN and Page–Hinkley watch it, and ADWIN watches the label indicator
//! (`is_fraud`, the "label rate"). A detection opens an episode at the next evaluation;
//! it clears after `clear_windows` evaluations without one. In those alerts `value` is
//! the rate in the current label window and `threshold` the mean the detector had
//! learned before the change.
//!
//! # Parts
//!
//! `Monitor` composes one part per concern, each in its own file under `watch/`: `clock`
//! (watermarks, open and closed panes), `reference` (a given `profile`, or the `warmup`
//! collecting one, then the `sketches` binned against it), `quality`, `fairness`, the
//! label `join` feeding `outcomes` and `concept` drift. Each part reads its statistics
//! into the `check` sheet of an evaluation (readings, and the checks an alert rule
//! judges); `alerts` turns the checks into `DriftAlert`s. `ring` holds the per-pane
//! counters under quality, fairness and outcomes.

use weir_schemas::events::{DriftAlert, Label, Score};

use crate::config::MonitorConfig;
use crate::drift::WindowSpec;
use crate::error::{MonitorError, Result};

mod alerts;
mod check;
mod clock;
mod concept;
mod fairness;
mod join;
mod outcomes;
mod profile;
mod quality;
mod reference;
mod ring;
mod sketches;
mod warmup;

pub use self::check::{Evaluation, Reading};
pub use self::clock::Source;
pub use self::profile::ReferenceProfile;
pub use crate::subjects::{ERROR_RATE_SUBJECT, LABEL_RATE_SUBJECT, QUALITY_SUBJECT, SCORE_SUBJECT};

use self::alerts::Alerts;
use self::check::{Rules, Sheet};
use self::clock::Clock;
use self::concept::Concept;
use self::fairness::Fairness;
use self::join::{Joined, LabelArrival, LabelJoin, WaitingScore};
use self::outcomes::Outcomes;
use self::quality::Quality;
use self::reference::Reference;

/// Counters since creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MonitorCounts {
    pub scores: u64,
    /// Scores whose pane had closed when they came (behind the watermark beyond the
    /// allowed lateness, or behind a forced close).
    pub late: u64,
    /// Panes closed before the watermark passed them because a partition ran more than
    /// `max_open_secs` ahead of the oldest open pane.
    pub forced_closes: u64,
    /// Largest gap seen between the newest event times of two active partitions, ms:
    /// how far ahead of the slowest one the fastest was read.
    pub max_partition_skew_ms: u64,
    /// Scores past the warm-up span read before the warm-up reference was ready that did
    /// not fit the `warmup_buffer` (the others are binned once it is ready): counted in
    /// data quality, not in the drift windows. A given reference makes it 0.
    pub unbinned_before_reference: u64,
    pub invalid_event_time: u64,
    pub labels: u64,
    pub labels_joined: u64,
    /// Labels dropped from the bounded wait for their score before it came.
    pub labels_unmatched: u64,
    pub evaluations: u64,
    pub alerts_fired: u64,
    pub alerts_cleared: u64,
}

/// The streaming monitor. See the module docs.
pub struct Monitor {
    cfg: MonitorConfig,
    /// The evaluated window and the panes still open after it: the shape of every
    /// per-score sketch and ring.
    window: WindowSpec,
    rules: Rules,
    clock: Clock,
    reference: Reference,
    quality: Quality,
    fairness: Fairness,
    join: LabelJoin,
    outcomes: Outcomes,
    concept: Concept,
    alerts: Alerts,
    /// The model version of the newest on-time score, stated in alerts.
    model_version: Option<String>,
    /// The composition's own counters; the clock's and the alerts' are added on read.
    counts: MonitorCounts,
    last: Option<Evaluation>,
    completed_warmup: Option<ReferenceProfile>,
}

impl Monitor {
    /// A monitor that takes its reference from the first `warmup_secs` of scores.
    pub fn new(cfg: MonitorConfig) -> Result<Self> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(MonitorError::InvalidParameter {
                name: "monitor",
                value: problems.join("; "),
                expected: "a valid [monitor] configuration",
            });
        }
        let spec = WindowSpec::new(cfg.pane_secs * 1000, cfg.window_panes)?;
        // The rings hold the evaluated window and the panes still open after it.
        let window = spec.with_open_panes(Clock::open_panes(&cfg) as usize);
        Ok(Monitor {
            window,
            rules: Rules::new(&cfg),
            clock: Clock::new(&cfg),
            reference: Reference::warmup(),
            quality: Quality::new(window),
            fairness: Fairness::new(cfg.fairness.clone(), window),
            join: LabelJoin::new(cfg.concept.label_join_capacity),
            // Labels are windowed by their own time, ending with the newest label.
            outcomes: Outcomes::new(spec, Fairness::groups(&cfg.fairness)),
            concept: Concept::new(&cfg.concept)?,
            alerts: Alerts::default(),
            model_version: None,
            counts: MonitorCounts::default(),
            last: None,
            completed_warmup: None,
            cfg,
        })
    }

    /// A monitor measuring drift against `profile` from the first score on. Features and
    /// attributes in the profile are the ones watched (restricted to `features` /
    /// `attributes` when those are configured); entries without a finite value are
    /// refused.
    pub fn with_reference(cfg: MonitorConfig, profile: &ReferenceProfile) -> Result<Self> {
        let mut m = Monitor::new(cfg)?;
        m.reference = Reference::ready(profile, &m.cfg, m.window)?;
        Ok(m)
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.cfg
    }

    /// Whether the reference is known (drift statistics are being computed).
    pub fn reference_ready(&self) -> bool {
        self.reference.is_ready()
    }

    pub fn counts(&self) -> MonitorCounts {
        MonitorCounts {
            forced_closes: self.clock.forced_closes(),
            max_partition_skew_ms: self.clock.max_skew_ms(),
            alerts_fired: self.alerts.fired(),
            alerts_cleared: self.alerts.cleared(),
            ..self.counts
        }
    }

    /// The most recent evaluation (for gauges).
    pub fn last_evaluation(&self) -> Option<&Evaluation> {
        self.last.as_ref()
    }

    /// Subjects and statistics currently firing.
    pub fn firing(&self) -> Vec<(String, &'static str)> {
        self.alerts.firing()
    }

    /// Labels that will be taken by [`observe_label`](Self::observe_label): scores
    /// waiting for one.
    pub fn waiting_for_labels(&self) -> usize {
        self.join.scores_waiting()
    }

    /// The reference the warm-up collected, once, right after it completed (so the stage
    /// can save it and a restart can start from it); the monitor keeps its binned copy.
    pub fn take_completed_warmup(&mut self) -> Option<ReferenceProfile> {
        self.completed_warmup.take()
    }

    /// The monitor's event-time watermark (ms), once every active partition has one.
    pub fn watermark(&self) -> Option<u64> {
        self.clock.watermark()
    }

    /// Partitions holding the watermark back now (assigned, not idle).
    pub fn active_partitions(&self) -> usize {
        self.clock.active_partitions()
    }

    /// Partitions now read (a rebalance assigned them): each holds the watermark back
    /// until its first score, or until it has been idle `idle_timeout_secs` from `now_ms`.
    pub fn assign_partitions(&mut self, partitions: &[Source<'_>], now_ms: u64) {
        self.clock.set_now(now_ms);
        self.clock.assign(partitions);
    }

    /// Partitions no longer read (revoked on a rebalance): they stop holding the
    /// watermark back at once; returns the alerts of the windows that closes.
    pub fn revoke_partitions(&mut self, partitions: &[Source<'_>], now_ms: u64) -> Vec<DriftAlert> {
        self.clock.revoke(partitions);
        self.tick(now_ms)
    }

    /// Processing time moves to `now_ms`: partitions silent for `idle_timeout_secs` stop
    /// holding the watermark back; returns the alerts of the windows that closes.
    pub fn tick(&mut self, now_ms: u64) -> Vec<DriftAlert> {
        self.clock.set_now(now_ms);
        let mut alerts = Vec::new();
        self.advance_watermark(&mut alerts);
        alerts
    }

    /// Counts one scored event of a single in-order stream (see [`Source::SINGLE`]);
    /// returns the alerts of the windows it closed, if any.
    pub fn observe_score(&mut self, score: &Score) -> Vec<DriftAlert> {
        self.observe_score_from(score, Source::SINGLE, self.clock.now_ms())
    }

    /// Counts one scored event read from `source` at processing time `now_ms`; returns
    /// the alerts of the windows whose panes the watermark passed, if any.
    pub fn observe_score_from(&mut self, score: &Score, source: Source<'_>, now_ms: u64) -> Vec<DriftAlert> {
        self.counts.scores += 1;
        self.clock.set_now(now_ms);
        let Ok(t) = u64::try_from(score.event_time) else {
            self.counts.invalid_event_time += 1;
            self.quality.count_invalid_time(self.clock.first_open_ms());
            return Vec::new();
        };
        let mut alerts = Vec::new();
        let arrival = self.clock.arrive(source, t);
        self.evaluate_panes(arrival.forced, &mut alerts);
        if arrival.late {
            self.count_late(t, score);
        } else {
            self.count_on_time(t, score);
        }
        self.advance_watermark(&mut alerts);
        alerts
    }

    /// A score whose pane is open: into the reference or the sketches, data quality,
    /// fairness, and the label join.
    fn count_on_time(&mut self, t: u64, score: &Score) {
        if self.model_version.as_deref() != Some(score.model_version.as_str()) {
            self.model_version = Some(score.model_version.clone());
        }
        let values = self.reference.observe(t, score, &self.cfg);
        if !self.reference.hold_past_span(t, score, self.cfg.warmup_buffer) {
            self.counts.unbinned_before_reference += 1;
        }
        self.quality.count(t, values);
        let group = self.fairness.group_of(score);
        self.fairness.count(t, group, score);
        self.wait_for_label(score, group);
    }

    /// A score whose pane has closed: counted in `late_rate` of the first open pane, not
    /// in the statistics.
    fn count_late(&mut self, t: u64, score: &Score) {
        self.reference.observe_late(t, score, &self.cfg);
        self.counts.late += 1;
        self.quality.count_late(self.clock.first_open_ms());
        // Its label still joins: the error and label detectors run in label order, not
        // in the windows.
        let group = self.fairness.group_of(score);
        self.wait_for_label(score, group);
    }

    fn wait_for_label(&mut self, score: &Score, group: usize) {
        let waiting = WaitingScore { group, flagged: score.decision != "approve" };
        if let Some(joined) = self.join.score(&score.event_id, waiting) {
            self.apply_label(joined);
        }
    }

    /// Counts one label: joins it to its waiting score and feeds the detectors. A label
    /// whose score has not come yet waits for it (bounded like the scores).
    pub fn observe_label(&mut self, label: &Label) {
        self.counts.labels += 1;
        match self.join.label(label) {
            LabelArrival::Joined(joined) => self.apply_label(joined),
            LabelArrival::Waits { evicted } => self.counts.labels_unmatched += evicted as u64,
        }
    }

    fn apply_label(&mut self, joined: Joined) {
        self.counts.labels_joined += 1;
        self.outcomes.count(&joined);
        self.concept.update(&joined);
    }

    /// Evaluates the window ending with the newest pane now, as if it had closed (end of
    /// a replay, or a test). A later score in the same pane is still counted, and that
    /// pane is evaluated again when it closes.
    pub fn flush(&mut self) -> Vec<DriftAlert> {
        match self.clock.newest_pane() {
            Some(p) => self.evaluate_pane(p),
            None => Vec::new(),
        }
    }

    /// Moves the watermark; evaluates the panes it closed, then ends the warm-up if it
    /// is a window past its span.
    fn advance_watermark(&mut self, alerts: &mut Vec<DriftAlert>) {
        let Some(closed) = self.clock.advance() else { return };
        self.evaluate_panes(closed, alerts);
        if let Some(profile) = self.reference.complete(self.clock.watermark(), &self.cfg, self.window) {
            self.completed_warmup = Some(profile);
        }
    }

    fn evaluate_panes(&mut self, panes: std::ops::Range<u64>, alerts: &mut Vec<DriftAlert>) {
        for pane in panes {
            alerts.extend(self.evaluate_pane(pane));
        }
    }

    /// Evaluates the window ending with `pane`: every part reads its statistics, then the
    /// checks are judged. Panes after it may still be open (filling from partitions
    /// behind the others); every part reports the window ending with this one.
    fn evaluate_pane(&mut self, pane: u64) -> Vec<DriftAlert> {
        self.counts.evaluations += 1;
        let window = self.clock.window_of(pane);
        let end = Some(pane);
        let mut sheet = Sheet::default();
        let min_events = self.cfg.min_window_events;
        let events = self.quality.read(end, min_events, &self.cfg.quality, &self.rules, &mut sheet);
        if let Some(sketches) = self.reference.sketches() {
            sketches.read(end, events >= min_events, &self.cfg, &self.rules, &mut sheet);
        }
        self.fairness.read(pane, &self.outcomes, &self.rules, &mut sheet);
        self.concept.read(&self.outcomes, &self.rules, &mut sheet);

        let alerts = self.alerts.judge(sheet.checks, window, self.model_version.as_deref());
        self.concept.evaluated();
        let (window_start, window_end) = (window.0 as i64, window.1 as i64);
        self.last = Some(Evaluation { window_start, window_end, events, readings: sheet.readings });
        alerts
    }
}
