//! The streaming monitor: every scored event in, drift alerts out. No I/O — the stage in
//! the `weir` binary feeds it from the scores and labels topics and ships what it returns.
//!
//! # What it watches, per rolling window of event time
//!
//! | subject | statistics (readings) | alert on |
//! |---|---|---|
//! | each numeric feature of the scored vector | `psi`, `ks`, `js`, `wasserstein1` | the feature's [`Threshold`] (default PSI > 0.25) |
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
//! its [`AlertMachine`], and the transitions come back as [`DriftAlert`]s (firing or
//! cleared, same `alert_id` for both ends of an episode). Panes after it that are still
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

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use weir_schemas::events::{DriftAlert, Label, Score};

use crate::alert::{AlertMachine, AlertRule, Severity, Transition};
use crate::config::{MonitorConfig, Statistic, Threshold};
use crate::detectors::{Adwin, AdwinConfig, DriftDetector, PageHinkley, PageHinkleyConfig};
use crate::drift::window::{PaneClock, Placement};
use crate::drift::{CategoricalDrift, CategoricalReference, NumericDrift, NumericReference, Observed, WindowSpec};
use crate::error::{MonitorError, Result};

/// Subject name of the score (prediction) distribution.
pub const SCORE_SUBJECT: &str = "score";
/// Subject name of the data-quality rates.
pub const QUALITY_SUBJECT: &str = "data_quality";
/// Subject name of the error indicator's concept drift.
pub const ERROR_RATE_SUBJECT: &str = "error_rate";
/// Subject name of the label indicator's concept drift.
pub const LABEL_RATE_SUBJECT: &str = "label_rate";

/// The reference distributions drift is measured against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    /// A sample of each numeric feature, by name.
    #[serde(default)]
    pub numeric: BTreeMap<String, Vec<f64>>,
    /// Category counts of each attribute, by name.
    #[serde(default)]
    pub categorical: BTreeMap<String, BTreeMap<String, u64>>,
    /// A sample of the model's scores.
    #[serde(default)]
    pub score: Vec<f64>,
}

/// One statistic read at an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub subject: String,
    pub statistic: &'static str,
    pub value: f64,
}

/// Everything read when a window was evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Event time, ms: `[window_start, window_end)`.
    pub window_start: i64,
    pub window_end: i64,
    /// Scores counted in the window.
    pub events: u64,
    pub readings: Vec<Reading>,
}

impl Evaluation {
    pub fn get(&self, subject: &str, statistic: &str) -> Option<f64> {
        self.readings.iter().find(|r| r.subject == subject && r.statistic == statistic).map(|r| r.value)
    }
}

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

/// Per-pane counters of `groups` groups.
#[derive(Debug, Clone)]
struct Ring<const K: usize> {
    clock: PaneClock,
    groups: usize,
    cells: Vec<[u64; K]>,
}

impl<const K: usize> Ring<K> {
    fn new(spec: WindowSpec, groups: usize) -> Self {
        Ring { clock: PaneClock::new(spec), groups, cells: vec![[0; K]; groups * spec.slots()] }
    }

    /// Adds `v` to `group` at time `t`; false if `t` is older than the window.
    fn add(&mut self, t: u64, group: usize, v: [u64; K]) -> bool {
        let (groups, cells) = (self.groups, &mut self.cells);
        match self.clock.place(t, |slot| cells[slot * groups..(slot + 1) * groups].fill([0; K])) {
            Placement::Late => false,
            Placement::Slot(slot) => {
                let cell = &mut self.cells[slot * self.groups + group.min(self.groups - 1)];
                for (c, x) in cell.iter_mut().zip(v) {
                    *c += x;
                }
                true
            }
        }
    }

    /// `group`'s totals over the window ending with pane `end` (default the newest).
    fn group_totals(&self, group: usize, end: Option<u64>) -> [u64; K] {
        let mut out = [0; K];
        for slot in self.clock.window_slots(end) {
            for (o, c) in out.iter_mut().zip(&self.cells[slot * self.groups + group]) {
                *o += c;
            }
        }
        out
    }

    /// All groups' totals over the window ending with pane `end` (default the newest).
    fn totals(&self, end: Option<u64>) -> [u64; K] {
        let mut out = [0; K];
        for slot in self.clock.window_slots(end) {
            for cell in &self.cells[slot * self.groups..(slot + 1) * self.groups] {
                for (o, c) in out.iter_mut().zip(cell) {
                    *o += c;
                }
            }
        }
        out
    }
}

// Quality ring columns.
const Q_EVENTS: usize = 0;
const Q_EXPECTED: usize = 1;
const Q_INVALID: usize = 2;
const Q_MISSING: usize = 3;
const Q_LATE: usize = 4;
// Score ring columns (per group): events, flagged, sum of scores in millionths.
const S_EVENTS: usize = 0;
const S_FLAGGED: usize = 1;
const S_SCORE_MICROS: usize = 2;
// Label ring columns (per group): labels, positives, flagged positives, errors.
const L_LABELS: usize = 0;
const L_POSITIVES: usize = 1;
const L_TRUE_POSITIVES: usize = 2;
const L_ERRORS: usize = 3;

/// The drift sketches once the reference is known.
struct Sketches {
    names: Vec<String>,
    index: HashMap<String, usize>,
    numeric: Vec<NumericDrift>,
    attributes: Vec<(String, CategoricalDrift)>,
    score: Option<NumericDrift>,
    seen: Vec<bool>,
}

/// The reference being collected from the first scores.
#[derive(Default)]
struct Warmup {
    profile: ReferenceProfile,
    /// Values offered to each reservoir (features by name, then the score).
    offered: BTreeMap<String, u64>,
    score_offered: u64,
    rng: u64,
    /// Event time the warm-up span ends (exclusive), set by the first score.
    span_end: Option<u64>,
    features: Option<Vec<String>>,
    attributes: Option<Vec<String>>,
    /// Scores past the span read before the reference is ready (a partition read ahead),
    /// binned once it is; at most `warmup_buffer`.
    after_span: Vec<Score>,
}

/// Algorithm R: `x` is the `offered`-th value (1-based) offered to `sample`.
fn reservoir(sample: &mut Vec<f64>, cap: usize, offered: u64, x: f64, rng: &mut u64) {
    if sample.len() < cap {
        sample.push(x);
    } else {
        // xorshift64*: deterministic, so the same stream gives the same reference.
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        let j = rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % offered;
        if (j as usize) < cap {
            sample[j as usize] = x;
        }
    }
}

enum Reference {
    Warmup(Box<Warmup>),
    Ready(Box<Sketches>),
}

#[derive(Clone, Copy)]
struct WaitingScore {
    group: usize,
    flagged: bool,
}

/// One side of the label join waiting for the other, by event id, oldest evicted first.
struct LabelJoin<V> {
    waiting: HashMap<String, V>,
    order: VecDeque<String>,
    capacity: usize,
}

impl<V> LabelJoin<V> {
    fn new(capacity: usize) -> Self {
        LabelJoin { waiting: HashMap::new(), order: VecDeque::new(), capacity }
    }

    /// Inserts; returns whether an entry still waiting was evicted to make room.
    fn insert(&mut self, event_id: &str, v: V) -> bool {
        let mut evicted = false;
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            evicted = self.waiting.remove(&old).is_some();
        }
        self.order.push_back(event_id.to_string());
        self.waiting.insert(event_id.to_string(), v);
        evicted
    }

    fn take(&mut self, event_id: &str) -> Option<V> {
        self.waiting.remove(event_id)
    }
}

/// A label that came before its score (a replay, or labels read ahead of scores).
#[derive(Clone, Copy)]
struct EarlyLabel {
    is_fraud: bool,
    label_time: i64,
}

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

struct Concept {
    error_adwin: Watched<Adwin>,
    error_ph: Watched<PageHinkley>,
    label_adwin: Watched<Adwin>,
    labels_since_evaluation: u64,
}

/// Where a score was read from: a partition of the scores topic. Its watermark is kept
/// apart from the others'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
}

impl Source<'static> {
    /// The one source of [`Monitor::observe_score`]: a single, in-order stream.
    pub const SINGLE: Source<'static> = Source { topic: "", partition: 0 };
}

/// One partition's watermark.
#[derive(Debug, Clone)]
struct PartitionClock {
    topic: String,
    partition: i32,
    /// Newest event time read from it; `None` while assigned but not read yet (then it
    /// holds the watermark back until it delivers or goes idle).
    newest: Option<u64>,
    /// Processing time (ms) of its last score, or of its assignment.
    last_seen_ms: u64,
}

/// The streaming monitor. See the module docs.
pub struct Monitor {
    cfg: MonitorConfig,
    window: WindowSpec,
    pane_ms: u64,
    /// Most panes open at once (ahead of the last closed one), from `max_open_secs`.
    open_panes: u64,
    /// Newest pane any score fell in.
    newest_pane: Option<u64>,
    /// Oldest pane a score fell in before the first pane closed.
    oldest_pane: Option<u64>,
    /// Panes before this one are closed (evaluated); a score in one of them is late.
    closed_until: Option<u64>,
    newest_t: u64,
    /// Event-time watermark (ms): the minimum over active partitions; never goes back.
    watermark: Option<u64>,
    partitions: Vec<PartitionClock>,
    /// Processing time (ms) as last given by the caller.
    now_ms: u64,
    reference: Reference,
    quality: Ring<5>,
    scores: Ring<3>,
    labels: Ring<4>,
    groups: Vec<String>,
    group_index: HashMap<String, usize>,
    join: LabelJoin<WaitingScore>,
    early_labels: LabelJoin<EarlyLabel>,
    concept: Concept,
    machines: BTreeMap<(String, &'static str), (AlertMachine, String)>,
    model_version: Option<String>,
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
        let open_panes = (cfg.max_open_secs / cfg.pane_secs).max(1);
        let spec = WindowSpec::new(cfg.pane_secs * 1000, cfg.window_panes)?;
        // The ring holds the evaluated window and the panes still open after it.
        let window = spec.with_open_panes(open_panes as usize);
        let groups = cfg.fairness.max_groups + 1; // the last one gathers the overflow
        let concept = Concept {
            error_adwin: Watched::new(Adwin::new(AdwinConfig { delta: cfg.concept.adwin_delta, ..Default::default() })?),
            error_ph: Watched::new(PageHinkley::new(PageHinkleyConfig {
                threshold: cfg.concept.page_hinkley_threshold,
                ..Default::default()
            })?),
            label_adwin: Watched::new(Adwin::new(AdwinConfig { delta: cfg.concept.adwin_delta, ..Default::default() })?),
            labels_since_evaluation: 0,
        };
        Ok(Monitor {
            window,
            pane_ms: cfg.pane_secs * 1000,
            open_panes,
            newest_pane: None,
            oldest_pane: None,
            closed_until: None,
            newest_t: 0,
            watermark: None,
            partitions: Vec::new(),
            now_ms: 0,
            reference: Reference::Warmup(Box::new(Warmup { rng: 0x9e37_79b9_7f4a_7c15, ..Warmup::default() })),
            quality: Ring::new(window, 1),
            scores: Ring::new(window, groups),
            // Labels are windowed by their own time, ending with the newest label.
            labels: Ring::new(spec, groups),
            groups: Vec::new(),
            group_index: HashMap::new(),
            join: LabelJoin::new(cfg.concept.label_join_capacity),
            early_labels: LabelJoin::new(cfg.concept.label_join_capacity),
            concept,
            machines: BTreeMap::new(),
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
        m.reference = Reference::Ready(Box::new(m.build(profile)?));
        Ok(m)
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.cfg
    }

    /// Whether the reference is known (drift statistics are being computed).
    pub fn reference_ready(&self) -> bool {
        matches!(self.reference, Reference::Ready(_))
    }

    pub fn counts(&self) -> MonitorCounts {
        self.counts
    }

    /// The most recent evaluation (for gauges).
    pub fn last_evaluation(&self) -> Option<&Evaluation> {
        self.last.as_ref()
    }

    /// Subjects and statistics currently firing.
    pub fn firing(&self) -> Vec<(String, &'static str)> {
        self.machines.iter().filter(|(_, (m, _))| m.is_firing()).map(|(k, _)| k.clone()).collect()
    }

    /// Labels that will be taken by [`observe_label`](Self::observe_label): scores
    /// waiting for one.
    pub fn waiting_for_labels(&self) -> usize {
        self.join.waiting.len()
    }

    fn build(&self, profile: &ReferenceProfile) -> Result<Sketches> {
        let keep = |list: &[String], name: &str| list.is_empty() || list.iter().any(|n| n == name);
        let mut names = Vec::new();
        let mut numeric = Vec::new();
        for (name, sample) in &profile.numeric {
            if keep(&self.cfg.features, name) {
                numeric.push(NumericDrift::new(NumericReference::from_sample(sample, self.cfg.bins)?, self.window));
                names.push(name.clone());
            }
        }
        let mut attributes = Vec::new();
        for (name, counts) in &profile.categorical {
            if keep(&self.cfg.attributes, name) {
                let reference = CategoricalReference::from_counts(
                    counts.iter().map(|(k, v)| (k.as_str(), *v)),
                    self.cfg.max_categories,
                )?;
                attributes.push((name.clone(), CategoricalDrift::new(reference, self.window)));
            }
        }
        let score = if profile.score.iter().any(|x| x.is_finite()) {
            Some(NumericDrift::new(NumericReference::from_sample(&profile.score, self.cfg.bins)?, self.window))
        } else {
            None
        };
        let index = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        Ok(Sketches { seen: vec![false; names.len()], names, index, numeric, attributes, score })
    }

    /// The reference the warm-up collected, once, right after it completed (so the stage
    /// can save it and a restart can start from it); the monitor keeps its binned copy.
    pub fn take_completed_warmup(&mut self) -> Option<ReferenceProfile> {
        self.completed_warmup.take()
    }

    fn group_of(&mut self, score: &Score) -> usize {
        let attr = &self.cfg.fairness.attribute;
        let name = if attr.is_empty() { "all" } else { score.attributes.get(attr).map(String::as_str).unwrap_or("") };
        if let Some(&g) = self.group_index.get(name) {
            return g;
        }
        if self.groups.len() < self.cfg.fairness.max_groups {
            let g = self.groups.len();
            self.groups.push(name.to_string());
            self.group_index.insert(name.to_string(), g);
            g
        } else {
            self.cfg.fairness.max_groups // overflow bucket, never reported
        }
    }

    /// Counts one scored event of a single in-order stream (see [`Source::SINGLE`]);
    /// returns the alerts of the windows it closed, if any.
    pub fn observe_score(&mut self, score: &Score) -> Vec<DriftAlert> {
        self.observe_score_from(score, Source::SINGLE, self.now_ms)
    }

    /// Partitions now read (a rebalance assigned them): each holds the watermark back
    /// until its first score, or until it has been idle `idle_timeout_secs` from `now_ms`.
    pub fn assign_partitions(&mut self, partitions: &[Source<'_>], now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        for src in partitions {
            if self.partition_index(*src).is_none() {
                self.partitions.push(PartitionClock {
                    topic: src.topic.to_string(),
                    partition: src.partition,
                    newest: None,
                    last_seen_ms: self.now_ms,
                });
            }
        }
    }

    /// Partitions no longer read (revoked on a rebalance): they stop holding the
    /// watermark back at once; returns the alerts of the windows that closes.
    pub fn revoke_partitions(&mut self, partitions: &[Source<'_>], now_ms: u64) -> Vec<DriftAlert> {
        self.partitions.retain(|p| !partitions.iter().any(|s| s.topic == p.topic && s.partition == p.partition));
        self.tick(now_ms)
    }

    /// Processing time moves to `now_ms`: partitions silent for `idle_timeout_secs` stop
    /// holding the watermark back; returns the alerts of the windows that closes.
    pub fn tick(&mut self, now_ms: u64) -> Vec<DriftAlert> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut alerts = Vec::new();
        self.advance_watermark(&mut alerts);
        alerts
    }

    /// The monitor's event-time watermark (ms), once every active partition has one.
    pub fn watermark(&self) -> Option<u64> {
        self.watermark
    }

    /// Partitions holding the watermark back now (assigned, not idle).
    pub fn active_partitions(&self) -> usize {
        let idle_ms = self.cfg.idle_timeout_secs * 1000;
        self.partitions.iter().filter(|p| self.now_ms.saturating_sub(p.last_seen_ms) < idle_ms).count()
    }

    fn partition_index(&self, src: Source<'_>) -> Option<usize> {
        self.partitions.iter().position(|p| p.partition == src.partition && p.topic == src.topic)
    }

    /// Recomputes the watermark and closes the panes it passed.
    fn advance_watermark(&mut self, alerts: &mut Vec<DriftAlert>) {
        let idle_ms = self.cfg.idle_timeout_secs * 1000;
        let disorder = self.cfg.out_of_orderness_secs * 1000;
        let mut min: Option<u64> = None;
        let mut max = 0;
        for p in &self.partitions {
            if self.now_ms.saturating_sub(p.last_seen_ms) >= idle_ms {
                continue; // idle: does not hold anyone back
            }
            match p.newest {
                // assigned, nothing read yet: hold until it delivers or goes idle
                None => return,
                Some(t) => {
                    let w = t.saturating_sub(disorder);
                    min = Some(min.map_or(w, |m| m.min(w)));
                    max = max.max(w);
                }
            }
        }
        if let Some(m) = min {
            self.counts.max_partition_skew_ms = self.counts.max_partition_skew_ms.max(max - m);
        }
        // No active partition: the watermark stays where it is (as Flink's idleness).
        let Some(w) = min else { return };
        if self.watermark.is_some_and(|old| old >= w) {
            return;
        }
        self.watermark = Some(w);
        let lateness = self.cfg.allowed_lateness_secs * 1000;
        // Pane p closes once the watermark reaches its end plus the allowed lateness.
        let through = w.saturating_sub(lateness) / self.pane_ms;
        self.close_until(through, alerts);
        self.complete_warmup();
    }

    /// Closes (evaluates) every open pane before `target`, oldest first. Panes whose
    /// window can hold no score (a jump in event time) are closed without evaluation.
    fn close_until(&mut self, target: u64, alerts: &mut Vec<DriftAlert>) {
        let Some(first) = self.closed_until.or(self.oldest_pane) else { return };
        if target <= first {
            return;
        }
        let last_with_data = self.newest_pane.map_or(first, |n| n + self.window.panes() as u64 - 1);
        for pane in first..target.min(last_with_data + 1) {
            alerts.extend(self.evaluate_pane(pane));
        }
        self.closed_until = Some(target);
    }

    /// The first pane still open, where a late score is counted.
    fn first_open_ms(&self) -> u64 {
        self.closed_until.or(self.oldest_pane).map_or(self.newest_t, |p| p * self.pane_ms)
    }

    fn count_late(&mut self, t: u64, score: &Score) {
        if matches!(self.reference, Reference::Warmup(_)) {
            // Late for the windows, not for the reference: the warm-up span takes its
            // scores whenever they come, until it completes.
            self.observe_reference(t, score);
        }
        self.counts.late += 1;
        let mut v = [0; 5];
        v[Q_EVENTS] = 1;
        v[Q_LATE] = 1;
        self.quality.add(self.first_open_ms(), 0, v);
        // Its label still joins: the error and label detectors run in label order, not
        // in the windows.
        let group = self.group_of(score);
        self.wait_for_label(score, group);
    }

    /// Counts one scored event read from `source` at processing time `now_ms`; returns
    /// the alerts of the windows whose panes the watermark passed, if any.
    pub fn observe_score_from(&mut self, score: &Score, source: Source<'_>, now_ms: u64) -> Vec<DriftAlert> {
        self.counts.scores += 1;
        self.now_ms = self.now_ms.max(now_ms);
        let Ok(t) = u64::try_from(score.event_time) else {
            self.counts.invalid_event_time += 1;
            self.quality.add(self.first_open_ms(), 0, [1, 1, 1, 0, 0]);
            return Vec::new();
        };
        let pane = t / self.pane_ms;
        let mut alerts = Vec::new();

        // This partition's watermark.
        let i = match self.partition_index(source) {
            Some(i) => i,
            None => {
                self.assign_partitions(&[source], self.now_ms);
                self.partitions.len() - 1
            }
        };
        let p = &mut self.partitions[i];
        p.last_seen_ms = self.now_ms;
        p.newest = Some(p.newest.map_or(t, |n| n.max(t)));

        // Memory bound: a partition this far ahead of the oldest open pane closes it.
        if let Some(first) = self.closed_until.or(self.oldest_pane)
            && pane >= first + self.open_panes
        {
            let target = pane + 1 - self.open_panes;
            self.counts.forced_closes += target - first;
            self.close_until(target, &mut alerts);
        }
        let late = match self.closed_until {
            Some(c) => pane < c,
            // Before the first close, only beyond the open span.
            None => self.newest_pane.is_some_and(|n| pane + self.open_panes <= n),
        };
        if late {
            self.count_late(t, score);
            self.advance_watermark(&mut alerts);
            return alerts;
        }
        if self.closed_until.is_none() {
            self.oldest_pane = Some(self.oldest_pane.map_or(pane, |o| o.min(pane)));
        }
        self.newest_pane = Some(self.newest_pane.map_or(pane, |n| n.max(pane)));
        self.newest_t = self.newest_t.max(t);
        if self.model_version.as_deref() != Some(score.model_version.as_str()) {
            self.model_version = Some(score.model_version.clone());
        }

        let (expected, invalid, missing) = self.observe_reference(t, score);
        if let Reference::Warmup(w) = &mut self.reference
            && w.span_end.is_some_and(|end| t >= end)
        {
            if w.after_span.len() < self.cfg.warmup_buffer {
                w.after_span.push(score.clone());
            } else {
                self.counts.unbinned_before_reference += 1;
            }
        }
        let mut q = [0; 5];
        q[Q_EVENTS] = 1;
        q[Q_EXPECTED] = expected;
        q[Q_INVALID] = invalid;
        q[Q_MISSING] = missing;
        self.quality.add(t, 0, q);

        let group = self.group_of(score);
        let flagged = score.decision != "approve";
        let micros = if score.score.is_finite() { (score.score.clamp(0.0, 1.0) * 1e6).round() as u64 } else { 0 };
        let mut s = [0; 3];
        s[S_EVENTS] = 1;
        s[S_FLAGGED] = flagged as u64;
        s[S_SCORE_MICROS] = micros;
        self.scores.add(t, group, s);
        self.wait_for_label(score, group);
        self.advance_watermark(&mut alerts);
        alerts
    }

    /// The warm-up ends once the watermark is a window past its span: its out-of-order
    /// scores have come by then, and later ones never enter it.
    fn complete_warmup(&mut self) {
        let Reference::Warmup(w) = &mut self.reference else { return };
        let (Some(span_end), Some(wm)) = (w.span_end, self.watermark) else { return };
        if wm < span_end.saturating_add(self.window.len()) {
            return;
        }
        let profile = std::mem::take(&mut w.profile);
        let after_span = std::mem::take(&mut w.after_span);
        // Every entry of a collected profile holds at least one finite value (only those
        // are pushed), so building cannot fail on emptiness.
        match self.build(&profile) {
            Ok(sketches) => {
                self.reference = Reference::Ready(Box::new(sketches));
                self.completed_warmup = Some(profile);
                // Their quality counts are in already; now their values reach the windows.
                for score in &after_span {
                    if let Ok(t) = u64::try_from(score.event_time) {
                        self.observe_reference(t, score);
                    }
                }
            }
            Err(_) => {
                // Unreachable by the above; start the warm-up over rather than panic.
                self.reference = Reference::Warmup(Box::new(Warmup { rng: 0x9e37_79b9_7f4a_7c15, ..Warmup::default() }));
            }
        }
    }

    fn wait_for_label(&mut self, score: &Score, group: usize) {
        let waiting = WaitingScore { group, flagged: score.decision != "approve" };
        match self.early_labels.take(&score.event_id) {
            Some(label) => self.apply_label(waiting, label),
            None => {
                self.join.insert(&score.event_id, waiting);
            }
        }
    }

    /// Feeds the reference collection or the sketches; returns (expected, invalid, missing)
    /// value counts for data quality.
    fn observe_reference(&mut self, t: u64, score: &Score) -> (u64, u64, u64) {
        let score_invalid = !(score.score.is_finite() && (0.0..=1.0).contains(&score.score)) as u64;
        match &mut self.reference {
            Reference::Ready(s) => {
                let (mut invalid, mut missing) = (score_invalid, 0u64);
                s.seen.fill(false);
                for (pos, f) in score.features.iter().enumerate() {
                    let i = match s.names.get(pos) {
                        Some(n) if *n == f.name => pos,
                        _ => match s.index.get(&f.name) {
                            Some(&i) => i,
                            None => continue,
                        },
                    };
                    s.seen[i] = true;
                    if s.numeric[i].observe(t, f.value) == Observed::Invalid {
                        invalid += 1;
                    }
                }
                missing += s.seen.iter().filter(|x| !**x).count() as u64;
                for (name, drift) in &mut s.attributes {
                    match score.attributes.get(name.as_str()) {
                        Some(v) => {
                            drift.observe(t, v);
                        }
                        None => missing += 1,
                    }
                }
                if let Some(d) = &mut s.score {
                    d.observe(t, score.score);
                }
                (1 + (s.names.len() + s.attributes.len()) as u64, invalid, missing)
            }
            Reference::Warmup(w) => {
                let cfg = &self.cfg;
                let span_end = *w.span_end.get_or_insert(t.saturating_add(cfg.warmup_secs * 1000));
                let features = w.features.get_or_insert_with(|| {
                    if cfg.features.is_empty() {
                        score.features.iter().map(|f| f.name.clone()).collect()
                    } else {
                        cfg.features.clone()
                    }
                });
                let attributes = w.attributes.get_or_insert_with(|| {
                    if cfg.attributes.is_empty() {
                        score.attributes.keys().cloned().collect()
                    } else {
                        cfg.attributes.clone()
                    }
                });
                let in_span = t < span_end;
                let (mut invalid, mut missing) = (score_invalid, 0u64);
                for name in features.iter() {
                    match score.features.iter().find(|f| f.name == *name) {
                        Some(f) if f.value.is_finite() => {
                            if in_span {
                                let offered = w.offered.entry(name.clone()).or_default();
                                *offered += 1;
                                let sample = w.profile.numeric.entry(name.clone()).or_default();
                                reservoir(sample, cfg.reference_sample, *offered, f.value, &mut w.rng);
                            }
                        }
                        Some(_) => invalid += 1,
                        None => missing += 1,
                    }
                }
                for name in attributes.iter() {
                    match score.attributes.get(name) {
                        Some(v) => {
                            if in_span {
                                let counts = w.profile.categorical.entry(name.clone()).or_default();
                                // Bounded: past 16× max_categories distinct values, new
                                // ones are not counted (they would land in "other" anyway).
                                if counts.len() < 16 * cfg.max_categories || counts.contains_key(v) {
                                    *counts.entry(v.clone()).or_default() += 1;
                                }
                            }
                        }
                        None => missing += 1,
                    }
                }
                if score_invalid == 0 && in_span {
                    w.score_offered += 1;
                    reservoir(&mut w.profile.score, cfg.reference_sample, w.score_offered, score.score, &mut w.rng);
                }
                let expected = 1 + (features.len() + attributes.len()) as u64;
                (expected, invalid, missing)
            }
        }
    }

    /// Counts one label: joins it to its waiting score and feeds the detectors. A label
    /// whose score has not come yet waits for it (bounded like the scores).
    pub fn observe_label(&mut self, label: &Label) {
        self.counts.labels += 1;
        let early = EarlyLabel { is_fraud: label.is_fraud, label_time: label.label_time };
        match self.join.take(&label.event_id) {
            Some(w) => self.apply_label(w, early),
            None => {
                if self.early_labels.insert(&label.event_id, early) {
                    self.counts.labels_unmatched += 1;
                }
            }
        }
    }

    fn apply_label(&mut self, w: WaitingScore, label: EarlyLabel) {
        self.counts.labels_joined += 1;
        let fraud = label.is_fraud;
        let error = w.flagged != fraud;
        let mut v = [0; 4];
        v[L_LABELS] = 1;
        v[L_POSITIVES] = fraud as u64;
        v[L_TRUE_POSITIVES] = (fraud && w.flagged) as u64;
        v[L_ERRORS] = error as u64;
        self.labels.add(u64::try_from(label.label_time).unwrap_or(0), w.group, v);
        self.concept.error_adwin.update(error as u8 as f64);
        self.concept.error_ph.update(error as u8 as f64);
        self.concept.label_adwin.update(fraud as u8 as f64);
        self.concept.labels_since_evaluation += 1;
    }

    /// Evaluates the window ending with the newest pane now, as if it had closed (end of
    /// a replay, or a test). A later score in the same pane is still counted, and that
    /// pane is evaluated again when it closes.
    pub fn flush(&mut self) -> Vec<DriftAlert> {
        match self.newest_pane {
            Some(p) => self.evaluate_pane(p),
            None => Vec::new(),
        }
    }

    fn rule(&self, t: &Threshold) -> AlertRule {
        AlertRule {
            warning: t.warning,
            critical: t.critical,
            clear: t.clear_level(),
            persist: self.cfg.persist_windows,
            clear_after: self.cfg.clear_windows,
        }
    }

    fn plain_rule(&self, warning: f64) -> AlertRule {
        AlertRule {
            warning,
            critical: None,
            clear: 0.8 * warning,
            persist: self.cfg.persist_windows,
            clear_after: self.cfg.clear_windows,
        }
    }

    fn evaluate_pane(&mut self, pane: u64) -> Vec<DriftAlert> {
        self.counts.evaluations += 1;
        let window_end = (pane + 1) * self.pane_ms;
        let window_start = (pane + 1).saturating_sub(self.window.panes() as u64) * self.pane_ms;
        // Every ring and sketch reports the window ending with this pane; panes after it
        // may still be open (filling from partitions behind the others).
        let end = Some(pane);

        let mut readings: Vec<Reading> = Vec::new();
        // (subject, statistic, value for the machine, rule, threshold reported)
        let mut checks: Vec<(String, &'static str, Option<f64>, AlertRule)> = Vec::new();
        let read = |readings: &mut Vec<Reading>, subject: &str, statistic: &'static str, value: f64| {
            readings.push(Reading { subject: subject.to_string(), statistic, value })
        };

        let q = self.quality.totals(end);
        let events = q[Q_EVENTS] - q[Q_LATE];
        let enough = events >= self.cfg.min_window_events;
        if q[Q_EVENTS] > 0 {
            let rate = |n: u64, d: u64| if d > 0 { n as f64 / d as f64 } else { 0.0 };
            let (inv, mis, late) =
                (rate(q[Q_INVALID], q[Q_EXPECTED]), rate(q[Q_MISSING], q[Q_EXPECTED]), rate(q[Q_LATE], q[Q_EVENTS]));
            read(&mut readings, QUALITY_SUBJECT, "invalid_rate", inv);
            read(&mut readings, QUALITY_SUBJECT, "missing_rate", mis);
            read(&mut readings, QUALITY_SUBJECT, "late_rate", late);
            let qc = &self.cfg.quality;
            let ok = enough.then_some(());
            checks.push((QUALITY_SUBJECT.into(), "invalid_rate", ok.map(|_| inv), self.plain_rule(qc.max_invalid_rate)));
            checks.push((QUALITY_SUBJECT.into(), "missing_rate", ok.map(|_| mis), self.plain_rule(qc.max_missing_rate)));
            checks.push((QUALITY_SUBJECT.into(), "late_rate", ok.map(|_| late), self.plain_rule(qc.max_late_rate)));
        }

        if let Reference::Ready(s) = &self.reference {
            let numeric = s.names.iter().map(String::as_str).zip(&s.numeric);
            for (name, drift) in numeric.chain(s.score.as_ref().map(|d| (SCORE_SUBJECT, d))) {
                let r = drift.report_at(end);
                let threshold = self.cfg.numeric_threshold(name);
                read(&mut readings, name, "psi", r.psi);
                read(&mut readings, name, "ks", r.ks.value);
                read(&mut readings, name, "js", r.js);
                read(&mut readings, name, "wasserstein1", r.w1.value);
                let value = match threshold.statistic {
                    Statistic::Psi => r.psi,
                    Statistic::Ks => r.ks.value,
                    Statistic::Js => r.js,
                    Statistic::Wasserstein1 => r.w1.value,
                };
                let ok = enough && r.n_current >= self.cfg.min_window_events;
                checks.push((name.to_string(), threshold.statistic.as_str(), ok.then_some(value), self.rule(threshold)));
            }
            for (name, drift) in &s.attributes {
                let r = drift.report_at(end);
                read(&mut readings, name, "psi", r.psi);
                read(&mut readings, name, "chi2", r.chi_square);
                read(&mut readings, name, "chi2_p", r.p_value);
                read(&mut readings, name, "other_share", r.other_share);
                let threshold = self.cfg.categorical_threshold(name);
                let ok = enough && r.n_current >= self.cfg.min_window_events;
                checks.push((name.clone(), "psi", ok.then_some(r.psi), self.rule(threshold)));
            }
        }

        self.fairness_readings(pane, &mut readings, &mut checks);
        self.concept_readings(&mut readings, &mut checks);

        let mut alerts = Vec::new();
        for (subject, statistic, value, rule) in checks {
            let key = (subject, statistic);
            let (machine, id) = self.machines.entry(key.clone()).or_insert_with(|| (AlertMachine::default(), String::new()));
            let reported = concept_reported(&self.concept, &key.0, statistic, &readings).or(value);
            match machine.step(value, &rule) {
                Some(Transition::Fired { episode, severity }) => {
                    *id = format!("{}/{}/{}@{}", key.0, statistic, episode, window_end);
                    self.counts.alerts_fired += 1;
                    alerts.push(DriftAlert {
                        alert_id: id.clone(),
                        state: "firing".into(),
                        subject: key.0.clone(),
                        statistic: statistic.into(),
                        value: reported.unwrap_or(f64::NAN),
                        threshold: concept_threshold(&self.concept, &key.0, statistic).unwrap_or(rule.warning),
                        window_start: window_start as i64,
                        window_end: window_end as i64,
                        severity: severity.as_str().into(),
                        model_version: self.model_version.clone(),
                        raised_at: window_end as i64,
                    });
                }
                Some(Transition::Cleared { .. }) => {
                    self.counts.alerts_cleared += 1;
                    alerts.push(DriftAlert {
                        alert_id: id.clone(),
                        state: "cleared".into(),
                        subject: key.0.clone(),
                        statistic: statistic.into(),
                        value: reported.unwrap_or(f64::NAN),
                        threshold: rule.clear,
                        window_start: window_start as i64,
                        window_end: window_end as i64,
                        severity: Severity::Info.as_str().into(),
                        model_version: self.model_version.clone(),
                        raised_at: window_end as i64,
                    });
                }
                None => {}
            }
        }
        self.concept.error_adwin.pending = 0;
        self.concept.error_ph.pending = 0;
        self.concept.label_adwin.pending = 0;
        self.concept.labels_since_evaluation = 0;
        self.last = Some(Evaluation { window_start: window_start as i64, window_end: window_end as i64, events, readings });
        alerts
    }

    fn fairness_readings(&self, pane: u64, readings: &mut Vec<Reading>, checks: &mut Vec<(String, &'static str, Option<f64>, AlertRule)>) {
        let fc = &self.cfg.fairness;
        if fc.attribute.is_empty() {
            return;
        }
        let subject = format!("fairness:{}", fc.attribute);
        let (mut rates, mut tprs) = (Vec::new(), Vec::new());
        for (g, name) in self.groups.iter().enumerate() {
            let s = self.scores.group_totals(g, Some(pane));
            let group_subject = format!("{subject}:{name}");
            if s[S_EVENTS] > 0 {
                let rate = s[S_FLAGGED] as f64 / s[S_EVENTS] as f64;
                readings.push(Reading { subject: group_subject.clone(), statistic: "decision_rate", value: rate });
                readings.push(Reading {
                    subject: group_subject.clone(),
                    statistic: "mean_score",
                    value: s[S_SCORE_MICROS] as f64 / 1e6 / s[S_EVENTS] as f64,
                });
                if s[S_EVENTS] >= fc.min_group_events {
                    rates.push(rate);
                }
            }
            let l = self.labels.group_totals(g, None);
            if l[L_POSITIVES] > 0 {
                let tpr = l[L_TRUE_POSITIVES] as f64 / l[L_POSITIVES] as f64;
                readings.push(Reading { subject: group_subject, statistic: "tpr", value: tpr });
                if l[L_POSITIVES] >= fc.min_group_positives {
                    tprs.push(tpr);
                }
            }
        }
        let gap = |v: &[f64]| {
            (v.len() >= 2).then(|| v.iter().cloned().fold(f64::MIN, f64::max) - v.iter().cloned().fold(f64::MAX, f64::min))
        };
        let (dgap, tgap) = (gap(&rates), gap(&tprs));
        if let Some(g) = dgap {
            readings.push(Reading { subject: subject.clone(), statistic: "decision_rate_gap", value: g });
        }
        if let Some(g) = tgap {
            readings.push(Reading { subject: subject.clone(), statistic: "tpr_gap", value: g });
        }
        checks.push((subject.clone(), "decision_rate_gap", dgap, self.plain_rule(fc.max_decision_rate_gap)));
        checks.push((subject, "tpr_gap", tgap, self.plain_rule(fc.max_tpr_gap)));
    }

    fn concept_readings(&self, readings: &mut Vec<Reading>, checks: &mut Vec<(String, &'static str, Option<f64>, AlertRule)>) {
        let l = self.labels.totals(None);
        if l[L_LABELS] > 0 {
            let n = l[L_LABELS] as f64;
            readings.push(Reading { subject: ERROR_RATE_SUBJECT.into(), statistic: "rate", value: l[L_ERRORS] as f64 / n });
            readings.push(Reading { subject: LABEL_RATE_SUBJECT.into(), statistic: "rate", value: l[L_POSITIVES] as f64 / n });
        }
        let c = &self.concept;
        // A detection is its own evidence: it fires at once, and clears after
        // `clear_windows` evaluations with labels and no detection.
        let rule = AlertRule { warning: 0.0, critical: None, clear: 0.0, persist: 1, clear_after: self.cfg.clear_windows };
        let labels_flowing = c.labels_since_evaluation > 0;
        for (subject, statistic, pending) in [
            (ERROR_RATE_SUBJECT, "adwin", c.error_adwin.pending),
            (ERROR_RATE_SUBJECT, "page_hinkley", c.error_ph.pending),
            (LABEL_RATE_SUBJECT, "adwin", c.label_adwin.pending),
        ] {
            readings.push(Reading { subject: subject.into(), statistic, value: pending as f64 });
            let value = (labels_flowing || pending > 0).then_some(pending as f64);
            checks.push((subject.into(), statistic, value, rule));
        }
    }
}

/// For detector alerts, the value reported is the window's rate, not the detection count.
fn concept_reported(_c: &Concept, subject: &str, statistic: &str, readings: &[Reading]) -> Option<f64> {
    if (subject == ERROR_RATE_SUBJECT || subject == LABEL_RATE_SUBJECT) && statistic != "rate" {
        readings.iter().find(|r| r.subject == subject && r.statistic == "rate").map(|r| r.value)
    } else {
        None
    }
}

/// For detector alerts, the threshold reported is the mean learned before the change.
fn concept_threshold(c: &Concept, subject: &str, statistic: &str) -> Option<f64> {
    match (subject, statistic) {
        (ERROR_RATE_SUBJECT, "adwin") => Some(c.error_adwin.before),
        (ERROR_RATE_SUBJECT, "page_hinkley") => Some(c.error_ph.before),
        (LABEL_RATE_SUBJECT, "adwin") => Some(c.label_adwin.before),
        _ => None,
    }
}
