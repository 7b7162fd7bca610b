//! The streaming monitor on seeded streams with controlled event time: drift injected at
//! a known event fires exactly one alert within a bounded delay and none before it,
//! clears once after recovery; the same for a new category, a fairness gap, a jump in the
//! error rate, and invalid values.

use std::collections::BTreeMap;

use weir_monitor::config::MonitorConfig;
use weir_monitor::watch::{Evaluation, Monitor, ReferenceProfile, Source, ERROR_RATE_SUBJECT, QUALITY_SUBJECT, SCORE_SUBJECT};
use weir_schemas::events::{DriftAlert, FeatureValue, Label, ModelOutput, Score};

/// xorshift64* and Box–Muller: seeded, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// 10 events per second of event time; panes of 10 s (100 events), windows of 6 panes.
const STEP_MS: i64 = 100;

fn config() -> MonitorConfig {
    MonitorConfig {
        pane_secs: 10,
        window_panes: 6,
        warmup_secs: 100, // the first 1 000 scores; ready at score 1 600 (one window later)
        min_window_events: 300,
        persist_windows: 3,
        clear_windows: 3,
        // One in-order stream: the watermark is the newest event time.
        out_of_orderness_secs: 0,
        ..MonitorConfig::default()
    }
}

#[derive(Clone, Copy, Default)]
struct Shape {
    x_shift: f64,
    new_country: f64,
    premium_flag_rate: Option<f64>,
    nan_rate: f64,
}

fn score(i: i64, rng: &mut Rng, shape: Shape) -> Score {
    let x = rng.normal() + shape.x_shift;
    let y = if rng.uniform() < shape.nan_rate { f64::NAN } else { rng.uniform() * 10.0 };
    let segment = if rng.uniform() < 0.5 { "retail" } else { "premium" };
    let country = if rng.uniform() < shape.new_country {
        "MX"
    } else {
        ["FR", "DE", "ES"][(rng.next() % 3) as usize]
    };
    let flag_rate = match (segment, shape.premium_flag_rate) {
        ("premium", Some(r)) => r,
        _ => 0.1,
    };
    let flagged = rng.uniform() < flag_rate;
    let p = rng.uniform() * 0.5 + if flagged { 0.5 } else { 0.0 };
    Score {
        event_id: format!("e{i}"),
        key: format!("c{}", i % 97),
        event_time: 1_700_000_000_000 + i * STEP_MS,
        model_name: "m".into(),
        model_version: "v1".into(),
        output: ModelOutput::binary(p),
        decision: if flagged { "decline" } else { "approve" }.into(),
        features: vec![FeatureValue { name: "x".into(), value: x }, FeatureValue { name: "y".into(), value: y }],
        reasons: vec![],
        scored_at: 0,
        attributes: BTreeMap::from([("country".into(), country.into()), ("customer_segment".into(), segment.into())]),
    }
}

/// Feeds `n` scores shaped by `shape(i)`; returns every alert with the index of the score
/// whose arrival produced it.
fn run(monitor: &mut Monitor, n: i64, seed: u64, shape: impl Fn(i64) -> Shape) -> Vec<(i64, DriftAlert)> {
    run_shaped(monitor, 0, n, seed, shape)
}

fn run_from(monitor: &mut Monitor, from: i64, to: i64, seed: u64) -> Vec<(i64, DriftAlert)> {
    run_shaped(monitor, from, to, seed, |_| Shape::default())
}

fn run_shaped(monitor: &mut Monitor, from: i64, to: i64, seed: u64, shape: impl Fn(i64) -> Shape) -> Vec<(i64, DriftAlert)> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for i in from..to {
        for a in monitor.observe_score(&score(i, &mut rng, shape(i))) {
            out.push((i, a));
        }
    }
    out
}

fn of<'a>(alerts: &'a [(i64, DriftAlert)], subject: &str, statistic: &str) -> Vec<&'a (i64, DriftAlert)> {
    alerts.iter().filter(|(_, a)| a.subject == subject && a.statistic == statistic).collect()
}

/// Event index of a window end.
fn index_at(t_ms: i64) -> i64 {
    (t_ms - 1_700_000_000_000) / STEP_MS
}

#[test]
fn a_numeric_shift_fires_once_within_bounded_delay_and_clears_once() {
    let mut m = Monitor::new(config()).unwrap();
    let (drift_at, back_at, end) = (4_000, 8_000, 12_000);
    let alerts = run(&mut m, end, 7, |i| Shape {
        x_shift: if (drift_at..back_at).contains(&i) { 1.0 } else { 0.0 },
        ..Shape::default()
    });
    assert!(alerts.iter().all(|(i, _)| *i >= drift_at), "alert before the drift: {alerts:#?}");
    let x = of(&alerts, "x", "psi");
    assert_eq!(x.len(), 2, "{x:#?}");
    let (fired_at, fired) = x[0];
    let (cleared_at, cleared) = x[1];
    assert_eq!(fired.state, "firing");
    assert_eq!(cleared.state, "cleared");
    assert_eq!(fired.alert_id, cleared.alert_id);
    assert!(fired.value > 0.25 && fired.threshold == 0.25, "{fired:?}");
    assert_eq!(fired.model_version.as_deref(), Some("v1"));
    // Bounded delay: the window must hold enough shifted events, then persist 3 panes:
    // at most a full window (600 events) plus 3 panes (300) plus the closing pane.
    let delay = fired_at - drift_at;
    assert!(delay <= 600 + 300 + 100, "fired {delay} events after the shift");
    assert!(index_at(fired.window_end) > drift_at);
    let recovery = cleared_at - back_at;
    assert!(recovery > 0 && recovery <= 600 + 300 + 100, "cleared {recovery} events after recovery");
    // Nothing else drifted: y, the country, the score and the quality rates stayed put.
    let others: Vec<_> = alerts.iter().filter(|(_, a)| a.subject != "x").collect();
    assert!(others.is_empty(), "{others:#?}");
    // The statistics behind the alert are all read and in range.
    let e = m.last_evaluation().unwrap();
    for stat in ["psi", "ks", "js", "wasserstein1"] {
        assert!(e.get("x", stat).is_some_and(|v| v.is_finite() && v >= 0.0), "{stat}");
    }
    assert_eq!(e.events, 600);
    assert!(m.firing().is_empty());
}

#[test]
fn a_new_category_fires_on_the_attribute() {
    let mut m = Monitor::new(config()).unwrap();
    let drift_at = 3_000;
    let alerts = run(&mut m, 6_000, 11, |i| Shape { new_country: if i >= drift_at { 0.2 } else { 0.0 }, ..Shape::default() });
    let c = of(&alerts, "country", "psi");
    assert_eq!(c.len(), 1, "{alerts:#?}");
    assert!(c[0].0 >= drift_at && c[0].0 - drift_at <= 1_000, "{:?}", c[0]);
    assert_eq!(c[0].1.severity, "critical", "20% in a bucket the reference never saw: PSI ≈ 1.5");
    assert!(m.last_evaluation().unwrap().get("country", "other_share").is_some_and(|s| (0.15..0.25).contains(&s)));
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
}

#[test]
fn a_fairness_gap_fires_on_decision_rates() {
    let mut m = Monitor::new(config()).unwrap();
    let drift_at = 3_000;
    let alerts = run(&mut m, 6_000, 5, |i| Shape {
        premium_flag_rate: (i >= drift_at).then_some(0.4),
        ..Shape::default()
    });
    let f = of(&alerts, "fairness:customer_segment", "decision_rate_gap");
    assert_eq!(f.len(), 1, "{alerts:#?}");
    assert!(f[0].0 >= drift_at);
    let e = m.last_evaluation().unwrap();
    let gap = e.get("fairness:customer_segment", "decision_rate_gap").unwrap();
    assert!((0.2..0.4).contains(&gap), "{gap}");
    let premium = e.get("fairness:customer_segment:premium", "decision_rate").unwrap();
    assert!((0.3..0.5).contains(&premium), "{premium}");
    // The score distribution moved too (more high scores), and that is reported.
    assert!(of(&alerts, SCORE_SUBJECT, "psi").len() <= 1);
}

#[test]
fn error_rate_detectors_fire_once_labels_show_a_change_and_tpr_is_per_group() {
    let mut m = Monitor::new(config()).unwrap();
    let mut rng = Rng(3);
    let mut labels = Vec::new();
    let mut alerts = Vec::new();
    let change = 6_000;
    for i in 0..12_000i64 {
        let s = score(i, &mut rng, Shape::default());
        // Labels 3 s later; before the change they agree with the decision 95% of the
        // time, after it only 70%.
        let agree = rng.uniform() < if i < change { 0.95 } else { 0.7 };
        let flagged = s.decision != "approve";
        labels.push((s.event_time + 3_000, Label {
            event_id: s.event_id.clone(),
            card_id: s.key.clone(),
            is_fraud: if agree { flagged } else { !flagged },
            event_time: s.event_time,
            label_time: s.event_time + 3_000,
        }));
        alerts.extend(m.observe_score(&s).into_iter().map(|a| (i, a)));
        while labels.first().is_some_and(|(t, _)| *t <= s.event_time) {
            m.observe_label(&labels.remove(0).1);
        }
    }
    assert_eq!(m.counts().labels_unmatched, 0);
    let adwin = of(&alerts, ERROR_RATE_SUBJECT, "adwin");
    assert!(!adwin.is_empty(), "{alerts:#?}");
    assert!(adwin.iter().all(|(i, _)| *i >= change), "{adwin:#?}");
    let (at, first) = adwin[0];
    assert_eq!(first.state, "firing");
    assert!(at - change <= 1_500, "detected {} events after the change", at - change);
    assert!(first.threshold < 0.1 && first.value > first.threshold, "before {} after {}", first.threshold, first.value);
    let ph = of(&alerts, ERROR_RATE_SUBJECT, "page_hinkley");
    assert!(ph.iter().all(|(i, _)| *i >= change), "{ph:#?}");
    let firing = |v: &[&(i64, DriftAlert)]| v.iter().filter(|(_, a)| a.state == "firing").count();
    assert!(firing(&ph) >= 1);
    let e = m.last_evaluation().unwrap();
    assert!(e.get("fairness:customer_segment:retail", "tpr").is_some());
    assert!(e.get(ERROR_RATE_SUBJECT, "rate").is_some_and(|r| (0.2..0.4).contains(&r)));
}

#[test]
fn invalid_values_fire_data_quality() {
    let mut m = Monitor::new(config()).unwrap();
    let alerts = run(&mut m, 6_000, 9, |i| Shape { nan_rate: if i >= 3_000 { 0.2 } else { 0.0 }, ..Shape::default() });
    let q = of(&alerts, QUALITY_SUBJECT, "invalid_rate");
    assert_eq!(q.len(), 1, "{alerts:#?}");
    assert!(q[0].0 >= 3_000);
    // 20% of one of 2 features + 2 attributes + the score: 4% of values.
    let rate = m.last_evaluation().unwrap().get(QUALITY_SUBJECT, "invalid_rate").unwrap();
    assert!((0.03..0.05).contains(&rate), "{rate}");
}

#[test]
fn late_scores_are_counted_not_binned() {
    let mut m = Monitor::new(config()).unwrap();
    let mut rng = Rng(1);
    for i in 0..2_000 {
        m.observe_score(&score(i, &mut rng, Shape::default()));
    }
    let late = score(0, &mut rng, Shape { x_shift: 100.0, ..Shape::default() });
    m.observe_score(&late);
    assert_eq!(m.counts().late, 1);
    m.flush();
    let e = m.last_evaluation().unwrap();
    assert!(e.get(QUALITY_SUBJECT, "late_rate").is_some_and(|r| r > 0.0 && r < 0.01));
    assert!(e.get("x", "psi").is_some_and(|p| p < 0.1), "the late outlier did not reach the bins");
}

#[test]
fn warmup_reference_equals_a_given_reference() {
    let cfg = config();
    let mut warm = Monitor::new(cfg.clone()).unwrap();
    let mut rng = Rng(21);
    let scores: Vec<Score> = (0..5_000).map(|i| score(i, &mut rng, Shape::default())).collect();
    let mut ready_at = None;
    let mut profile: Option<ReferenceProfile> = None;
    for (i, s) in scores.iter().enumerate() {
        warm.observe_score(s);
        if let Some(p) = warm.take_completed_warmup() {
            profile = Some(p);
            ready_at = Some(i);
            break;
        }
    }
    // 100 s of warm-up span + one 60 s window of grace, at 10 scores per second.
    assert_eq!(ready_at, Some(1_600));
    let profile = profile.unwrap();
    assert_eq!(profile.numeric["x"].len(), 1_000, "the span's scores only");
    assert_eq!(profile.categorical["country"].values().sum::<u64>(), 1_000);
    let mut given = Monitor::with_reference(cfg, &profile).unwrap();
    assert!(warm.reference_ready() && given.reference_ready());
    for s in &scores[1_601..] {
        warm.observe_score(s);
        given.observe_score(s);
    }
    warm.flush();
    given.flush();
    let (a, b) = (warm.last_evaluation().unwrap(), given.last_evaluation().unwrap());
    for subject in ["x", "y", SCORE_SUBJECT] {
        assert_eq!(a.get(subject, "psi"), b.get(subject, "psi"), "{subject}");
    }
    assert_eq!(a.get("country", "chi2"), b.get("country", "chi2"));
}

#[test]
fn a_reference_is_a_bounded_sample_of_its_span_whatever_the_arrival_order() {
    // Scores of the warm-up span arrive late and interleaved with scores from far past
    // it (a consumer reading one partition ahead of another): the later ones never enter
    // the reference, the late ones of the span do, and the sample stays bounded.
    let cfg = MonitorConfig { reference_sample: 500, ..config() };
    let mut m = Monitor::new(cfg).unwrap();
    let mut rng = Rng(8);
    let early: Vec<Score> = (0..1_000).map(|i| score(i, &mut rng, Shape::default())).collect();
    let later: Vec<Score> = (1_000..1_500).map(|i| score(i, &mut rng, Shape { x_shift: 50.0, ..Shape::default() })).collect();
    for (a, b) in early.iter().zip(later.iter().chain(later.iter())) {
        m.observe_score(a);
        m.observe_score(b);
    }
    let done = (1_500..2_000).map(|i| score(i, &mut rng, Shape::default()));
    let mut profile = None;
    for s in done {
        m.observe_score(&s);
        profile = profile.or(m.take_completed_warmup());
    }
    let profile = profile.expect("the warm-up completes one window after its span");
    assert_eq!(profile.numeric["x"].len(), 500);
    assert!(profile.numeric["x"].iter().all(|x| x.abs() < 10.0), "a drifted value entered the reference");
    assert_eq!(profile.categorical["country"].values().sum::<u64>(), 1_000);
}

#[test]
fn the_label_join_is_bounded() {
    let cfg = MonitorConfig {
        concept: weir_monitor::config::ConceptConfig { label_join_capacity: 100, ..Default::default() },
        ..config()
    };
    let mut m = Monitor::new(cfg).unwrap();
    run(&mut m, 1_000, 2, |_| Shape::default());
    assert_eq!(m.waiting_for_labels(), 100);
    let label = |id: &str| Label { event_id: id.into(), card_id: "c0".into(), is_fraud: true, event_time: 0, label_time: 0 };
    m.observe_label(&label("e0")); // its score was evicted: the label waits
    m.observe_label(&label("e999"));
    assert_eq!(m.counts().labels_joined, 1);
    // Labels ahead of their scores wait too, bounded the same way: 150 early labels, the
    // oldest 50 (and e0) are dropped, the rest join when their scores come.
    for i in 1_000..1_150 {
        m.observe_label(&label(&format!("e{i}")));
    }
    assert_eq!(m.counts().labels_unmatched, 51);
    run_from(&mut m, 1_000, 1_200, 2);
    assert_eq!(m.counts().labels_joined, 1 + 100);
}

// ---- Event-time watermarks per partition ----

const P0: Source<'static> = Source { topic: "scores", partition: 0 };
const P1: Source<'static> = Source { topic: "scores", partition: 1 };

/// A reference profile of the undrifted shape (so runs compared do not depend on when a
/// warm-up completes).
fn reference(seed: u64) -> ReferenceProfile {
    let mut rng = Rng(seed);
    let mut profile = ReferenceProfile::default();
    for i in 0..2_000 {
        let s = score(i, &mut rng, Shape::default());
        for f in &s.features {
            profile.numeric.entry(f.name.clone()).or_default().push(f.value);
        }
        for (k, v) in &s.attributes {
            *profile.categorical.entry(k.clone()).or_default().entry(v.clone()).or_default() += 1;
        }
        profile.score.push(s.value());
    }
    profile
}

/// Scores 0..n, x shifted by 1 from `drift_at`; score i is read from partition i % 2.
fn two_partition_stream(n: i64, drift_at: i64) -> Vec<(Source<'static>, Score)> {
    let mut rng = Rng(33);
    (0..n)
        .map(|i| {
            let shape = Shape { x_shift: if i >= drift_at { 1.0 } else { 0.0 }, ..Shape::default() };
            (if i % 2 == 0 { P0 } else { P1 }, score(i, &mut rng, shape))
        })
        .collect()
}

/// Reads partition 0 `lead` scores ahead of partition 1, as a consumer catching up on a
/// backlog does.
fn read_ahead(stream: &[(Source<'static>, Score)], lead: usize) -> Vec<(Source<'static>, Score)> {
    let p0: Vec<_> = stream.iter().filter(|(s, _)| *s == P0).cloned().collect();
    let p1: Vec<_> = stream.iter().filter(|(s, _)| *s == P1).cloned().collect();
    let (mut a, mut b, mut out) = (0, 0, Vec::new());
    while a < p0.len() || b < p1.len() {
        if a < p0.len() && (a < b + lead || b >= p1.len()) {
            out.push(p0[a].clone());
            a += 1;
        } else {
            out.push(p1[b].clone());
            b += 1;
        }
    }
    out
}

/// Feeds `order` (processing time 1 ms per score); returns every evaluation in order
/// and every alert.
fn evaluations(m: &mut Monitor, order: &[(Source<'static>, Score)]) -> (Vec<Evaluation>, Vec<DriftAlert>) {
    m.assign_partitions(&[P0, P1], 0);
    let (mut evals, mut alerts) = (Vec::new(), Vec::new());
    for (now, (src, s)) in order.iter().enumerate() {
        let before = m.counts().evaluations;
        alerts.extend(m.observe_score_from(s, *src, now as u64));
        let closed = m.counts().evaluations - before;
        assert!(closed <= 1, "one pane at a time here, {closed} closed at once");
        if closed == 1 {
            evals.push(m.last_evaluation().unwrap().clone());
        }
    }
    (evals, alerts)
}

fn assert_same_windows(a: &[Evaluation], b: &[Evaluation]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!((x.window_start, x.window_end, x.events), (y.window_start, y.window_end, y.events));
        assert_eq!(x.readings.len(), y.readings.len(), "window ending {}", x.window_end);
        for (r, q) in x.readings.iter().zip(&y.readings) {
            assert_eq!((&r.subject, r.statistic), (&q.subject, q.statistic));
            // Bin counts are exact; bin sums (Wasserstein-1) are added in another order.
            let tol = 1e-9 * r.value.abs().max(1.0);
            assert!((r.value - q.value).abs() <= tol, "{} {} {} vs {}", r.subject, r.statistic, r.value, q.value);
        }
    }
}

#[test]
fn a_partition_read_far_behind_loses_no_scores_and_gives_the_in_order_windows() {
    let cfg = MonitorConfig { out_of_orderness_secs: 0, ..config() };
    let profile = reference(5);
    let stream = two_partition_stream(8_000, 4_000);

    let mut in_order = Monitor::with_reference(cfg.clone(), &profile).unwrap();
    let (expected, expected_alerts) = evaluations(&mut in_order, &stream);
    // Partition 0 read 2 000 scores (400 s of event time, 40 panes) ahead of partition 1.
    let lagging = read_ahead(&stream, 2_000);
    assert_eq!(lagging.len(), stream.len());
    let mut behind = Monitor::with_reference(cfg.clone(), &profile).unwrap();
    let (got, got_alerts) = evaluations(&mut behind, &lagging);

    assert_eq!(in_order.counts().late, 0);
    assert_eq!(behind.counts().late, 0, "scores of the lagging partition counted late");
    assert_eq!(behind.counts().forced_closes, 0);
    assert!(expected.len() > 50 && expected.iter().all(|e| e.get(QUALITY_SUBJECT, "late_rate") == Some(0.0)));
    assert_same_windows(&expected, &got);
    assert_eq!(expected_alerts, got_alerts);
    assert_eq!(of(&got_alerts.iter().map(|a| (0, a.clone())).collect::<Vec<_>>(), "x", "psi").len(), 1, "{got_alerts:#?}");

    // The old behaviour for contrast: one watermark over both partitions (a single
    // source) counts most of the lagging partition late.
    let mut merged = Monitor::with_reference(cfg, &profile).unwrap();
    for (_, s) in &lagging {
        merged.observe_score(s);
    }
    assert!(merged.counts().late > 1_000, "{}", merged.counts().late);
}

#[test]
fn an_idle_partition_stops_holding_the_watermark_back() {
    let cfg = MonitorConfig { idle_timeout_secs: 30, ..config() };
    let mut m = Monitor::with_reference(cfg, &reference(5)).unwrap();
    let mut rng = Rng(4);
    m.assign_partitions(&[P0, P1], 0);
    // Partition 1 delivers its first 10 scores, then nothing; partition 0 goes on, one
    // score per 10 ms of processing time.
    let mut evaluated_at = None;
    for i in 0..6_000i64 {
        let src = if i < 20 && i % 2 == 1 { P1 } else { P0 };
        let now = (i * 10) as u64;
        m.observe_score_from(&score(i, &mut rng, Shape::default()), src, now);
        if i == 2_000 {
            // 20 s of processing time: partition 1 still holds the watermark at its
            // newest score, 2 s of event time; nothing past it closed.
            assert_eq!(m.counts().evaluations, 0);
            assert_eq!(m.active_partitions(), 2);
        }
        if evaluated_at.is_none() && m.counts().evaluations > 0 {
            evaluated_at = Some(now);
        }
    }
    // Partition 1's last score came at 190 ms; it is idle from 30 190 ms on.
    assert_eq!(evaluated_at, Some(30_190));
    assert_eq!(m.active_partitions(), 1);
    // 600 s of event time: every pane but the last one or two closed, nothing late.
    assert!(m.counts().evaluations >= 58, "{}", m.counts().evaluations);
    assert_eq!(m.counts().late, 0);
    // When it delivers again it is active again; a score behind the watermark is late.
    m.observe_score_from(&score(21, &mut rng, Shape::default()), P1, 60_010);
    assert_eq!(m.counts().late, 1);
    assert_eq!(m.active_partitions(), 2);
}

#[test]
fn a_partition_assigned_but_silent_holds_the_watermark_until_idle_and_tick_releases_it() {
    let mut m = Monitor::with_reference(config(), &reference(5)).unwrap();
    let mut rng = Rng(4);
    m.assign_partitions(&[P0, P1], 0);
    for i in 0..1_000i64 {
        m.observe_score_from(&score(i, &mut rng, Shape::default()), P0, (i * 29) as u64);
    }
    assert_eq!(m.watermark(), None, "partition 1 has not delivered yet");
    assert_eq!(m.counts().evaluations, 0);
    // No more scores at all: processing time alone makes partition 1 idle.
    m.tick(29_999);
    assert_eq!(m.counts().evaluations, 0);
    m.tick(30_000);
    assert_eq!(m.watermark(), Some(1_700_000_000_000 + 999 * STEP_MS as u64));
    assert_eq!(m.counts().evaluations, 9, "panes 0..9 of 100 s closed");
}

#[test]
fn a_revoked_partition_is_dropped_at_once() {
    let mut m = Monitor::with_reference(config(), &reference(5)).unwrap();
    let mut rng = Rng(4);
    m.assign_partitions(&[P0, P1], 0);
    for i in 0..2_000i64 {
        let src = if i < 100 && i % 2 == 1 { P1 } else { P0 };
        m.observe_score_from(&score(i, &mut rng, Shape::default()), src, 1);
    }
    // Partition 1 stopped at 9.9 s of event time: only pane 0 closed.
    assert_eq!(m.counts().evaluations, 0);
    m.revoke_partitions(&[P1], 2);
    assert_eq!(m.active_partitions(), 1);
    assert_eq!(m.watermark(), Some(1_700_000_000_000 + 1_999 * STEP_MS as u64));
    assert_eq!(m.counts().evaluations, 19, "panes 0..19 closed by partition 0 alone");
    assert_eq!(m.counts().late, 0);
}

#[test]
fn a_partition_lagging_past_the_open_span_is_closed_anyway_and_its_scores_counted_late() {
    // At most 100 s (10 panes) open: partition 0 read 2 000 scores (400 s) ahead.
    let cfg = MonitorConfig { max_open_secs: 100, ..config() };
    let stream = two_partition_stream(6_000, 6_000);
    let mut m = Monitor::with_reference(cfg, &reference(5)).unwrap();
    m.assign_partitions(&[P0, P1], 0);
    for (src, s) in read_ahead(&stream, 2_000) {
        m.observe_score_from(&s, src, 1);
    }
    let c = m.counts();
    // Partition 0 reached 600 s while partition 1 was 400 s behind: the panes before
    // 600 s - 100 s were closed without waiting, and partition 1's 2 500 scores before
    // 500 s are late. The 9 panes after them closed on the watermark as usual.
    assert_eq!((c.forced_closes, c.late, c.evaluations), (50, 2_500, 59), "{c:?}");
}

#[test]
fn a_warm_up_read_unevenly_gives_the_in_order_reference_and_windows() {
    // No reference given: the warm-up span (100 s) is read while partition 0 runs 400 s
    // ahead; its scores past the span wait (bounded) and are binned once the reference
    // is ready, so every window equals the in-order run's.
    let cfg = MonitorConfig { out_of_orderness_secs: 0, ..config() };
    let stream = two_partition_stream(8_000, 4_000);
    let mut in_order = Monitor::new(cfg.clone()).unwrap();
    let (expected, expected_alerts) = evaluations(&mut in_order, &stream);
    let mut behind = Monitor::new(cfg.clone()).unwrap();
    let (got, got_alerts) = evaluations(&mut behind, &read_ahead(&stream, 2_000));
    assert_eq!((behind.counts().late, behind.counts().unbinned_before_reference), (0, 0));
    assert!(expected.iter().filter(|e| e.get("x", "psi").is_some()).count() > 40);
    assert_same_windows(&expected, &got);
    assert_eq!(expected_alerts, got_alerts);

    // With too small a buffer, what does not fit is counted, not binned.
    let mut small = Monitor::new(MonitorConfig { warmup_buffer: 100, ..cfg }).unwrap();
    evaluations(&mut small, &read_ahead(&stream, 2_000));
    assert!(small.counts().unbinned_before_reference > 1_000, "{:?}", small.counts());
}
