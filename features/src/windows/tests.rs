use super::codec::MAGIC;
use super::distinct::{Newest, PositionTable};
use super::hll::{LINEAR_COUNTING, PANE_SPARSE_MAX, PaneRegs, Sketch, hll_add, hll_merge};
use super::panes::EMPTY_PANE;
use super::*;
use proptest::prelude::*;
use weir_schemas::store::{Applied, Observation, ObservationResult, SourcePosition};

/// 2026-01-01T00:00:00Z, a multiple of every pane below.
const T0: i64 = 1_767_225_600_000;
const LATENESS: i64 = 60_000;

fn agg(kind: AggKind, field: usize, alias: &str) -> Aggregation {
    Aggregation { kind, field, alias: alias.into() }
}

/// Every aggregation on one numeric field `x` and one distinct field `d`, plus
/// seconds_since_last and an extra mean of the last window.
fn full_def(windows: Vec<WindowSpec>, lateness: i64, limit: usize) -> EntityDef {
    let last = windows.len() - 1;
    EntityDef::new(
        "e",
        windows,
        vec!["x".into()],
        1,
        vec![
            agg(AggKind::Count, 0, ""),
            agg(AggKind::Sum, 0, "x"),
            agg(AggKind::Mean, 0, "x"),
            agg(AggKind::Min, 0, "x"),
            agg(AggKind::Max, 0, "x"),
            agg(AggKind::Distinct, 0, "d"),
        ],
        true,
        vec![(0, last)],
        lateness,
        limit,
    )
}

fn default_windows(lateness: i64) -> Vec<WindowSpec> {
    vec![WindowSpec::new("1m", 60_000, 5_000, lateness), WindowSpec::new("1h", 3_600_000, 60_000, lateness)]
}

/// The default card: count and sum of the amount, and the mean of the longest window.
fn card_def() -> EntityDef {
    EntityDef::new(
        "card",
        default_windows(LATENESS),
        vec!["amount".into()],
        0,
        vec![agg(AggKind::Count, 0, ""), agg(AggKind::Sum, 0, "amount")],
        false,
        vec![(0, 1)],
        LATENESS,
        256,
    )
}

/// Count, then sum, mean, min and max of each of three numeric fields (see
/// [`three_field_obs`]), then the mean of the third in the last window.
fn three_field_def(windows: Vec<WindowSpec>, lateness: i64) -> EntityDef {
    let last = windows.len() - 1;
    let mut aggregations = vec![agg(AggKind::Count, 0, "")];
    for (k, name) in ["x", "y", "z"].into_iter().enumerate() {
        for kind in [AggKind::Sum, AggKind::Mean, AggKind::Min, AggKind::Max] {
            aggregations.push(agg(kind, k, name));
        }
    }
    let fields = vec!["x".into(), "y".into(), "z".into()];
    EntityDef::new("e", windows, fields, 0, aggregations, false, vec![(2, last)], lateness, 256)
}

/// An event's three numeric fields: x, 2x + 1 (both missing together), and the distinct
/// value as a number (missing on its own), so the fields' stats differ pane by pane.
fn three_field_values(e: Ev) -> [Option<f64>; 3] {
    [e.1, e.1.map(|x| 2.0 * x + 1.0), e.2.map(f64::from)]
}

fn three_field_obs(e: Ev, offset: i64) -> Observation {
    Observation { values: three_field_values(e).to_vec(), distinct: vec![], ..obs(e, offset) }
}

/// [`three_field_def`]'s values as of `t`, from the events alone.
fn three_field_brute_force(def: &EntityDef, events: &[Ev], t: i64) -> Vec<f64> {
    let window = |w: &WindowSpec| -> Vec<[Option<f64>; 3]> {
        let last = t.div_euclid(w.pane_ms);
        let first = last - w.length_ms / w.pane_ms + 1;
        events.iter().filter(|e| (first..=last).contains(&e.0.div_euclid(w.pane_ms))).map(|&e| three_field_values(e)).collect()
    };
    let mean = |xs: &[f64]| if xs.is_empty() { 0.0 } else { xs.iter().sum::<f64>() / xs.len() as f64 };
    let mut out = Vec::new();
    for w in &def.windows {
        let inside = window(w);
        out.push(inside.len() as f64);
        for k in 0..3 {
            let xs: Vec<f64> = inside.iter().filter_map(|v| v[k]).collect();
            out.push(xs.iter().sum());
            out.push(mean(&xs));
            out.push(xs.iter().copied().reduce(f64::min).unwrap_or(0.0));
            out.push(xs.iter().copied().reduce(f64::max).unwrap_or(0.0));
        }
    }
    let zs: Vec<f64> = window(&def.windows[def.windows.len() - 1]).iter().filter_map(|v| v[2]).collect();
    out.push(mean(&zs));
    out
}

/// An event: time, numeric value (maybe missing), distinct value (maybe missing).
type Ev = (i64, Option<f64>, Option<u32>);

fn obs_at(topic: &str, partition: i32, e: Ev, offset: i64) -> Observation {
    Observation {
        kind: "e".into(),
        entity: "e-1".into(),
        event_time_ms: e.0,
        values: vec![e.1],
        distinct: vec![e.2.map(|d| distinct_hash(d.to_string().as_bytes()))],
        position: SourcePosition { topic: topic.into(), partition, offset },
    }
}

fn obs(e: Ev, offset: i64) -> Observation {
    obs_at("t", 0, e, offset)
}

fn card(t: i64, amount: f64, offset: i64) -> Observation {
    Observation { kind: "card".into(), values: vec![Some(amount)], distinct: vec![], ..obs((t, None, None), offset) }
}

/// Brute force, independent of the engine: per window the events whose pane is in the
/// window as of t, then each aggregation over them; then seconds since the newest
/// earlier event; then the mean of the last window.
fn brute_force(def: &EntityDef, events: &[Ev], t: i64) -> Vec<f64> {
    let mut out = Vec::new();
    let window = |w: &WindowSpec| -> Vec<Ev> {
        let last = t.div_euclid(w.pane_ms);
        let first = last - w.length_ms / w.pane_ms + 1;
        events.iter().filter(|e| (first..=last).contains(&e.0.div_euclid(w.pane_ms))).copied().collect()
    };
    let mean = |xs: &[f64]| if xs.is_empty() { 0.0 } else { xs.iter().sum::<f64>() / xs.len() as f64 };
    for w in &def.windows {
        let inside = window(w);
        let xs: Vec<f64> = inside.iter().filter_map(|e| e.1).collect();
        let ds: std::collections::BTreeSet<u32> = inside.iter().filter_map(|e| e.2).collect();
        for a in &def.aggregations {
            out.push(match a.kind {
                AggKind::Count => inside.len() as f64,
                AggKind::Sum => xs.iter().sum(),
                AggKind::Mean => mean(&xs),
                AggKind::Min => xs.iter().copied().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x)))).unwrap_or(0.0),
                AggKind::Max => xs.iter().copied().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))).unwrap_or(0.0),
                AggKind::Distinct => ds.len() as f64,
            });
        }
    }
    if def.seconds_since_last {
        out.push(events.iter().map(|e| e.0).filter(|&u| u < t).max().map_or(-1.0, |u| (t - u) as f64 / 1000.0));
    }
    for &(_, w) in &def.extra_means {
        let xs: Vec<f64> = window(&def.windows[w]).iter().filter_map(|e| e.1).collect();
        out.push(mean(&xs));
    }
    out
}

/// Values are multiples of 1/4 below 2^20: every sum is exact, so the engine must match
/// the brute force exactly whatever order it adds and subtracts in.
fn value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![1 => Just(None), 6 => (0u32..4_000).prop_map(|q| Some(q as f64 / 4.0))]
}

fn distinct_value() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![1 => Just(None), 6 => (0u32..25).prop_map(Some)]
}

/// (windows, lateness): the defaults, and small windows whose rings wrap often.
fn configs() -> impl Strategy<Value = (Vec<WindowSpec>, i64)> {
    prop_oneof![
        Just((default_windows(LATENESS), LATENESS)),
        Just((vec![WindowSpec::new("4s", 4_000, 1_000, 7_500), WindowSpec::new("10s", 10_000, 2_000, 7_500)], 7_500)),
    ]
}

/// A config and events spanning less than its lateness (none late), and a permutation.
fn in_lateness_events() -> impl Strategy<Value = (Vec<WindowSpec>, i64, Vec<Ev>, Vec<Ev>)> {
    configs().prop_flat_map(|(w, lateness)| {
        let event = (0..lateness, value(), distinct_value());
        (Just(w), Just(lateness), 0..10_000_000i64, proptest::collection::vec(event, 1..60)).prop_flat_map(|(w, lateness, base, events)| {
            let events: Vec<Ev> = events.into_iter().map(|(dt, v, d)| (T0 + base + dt, v, d)).collect();
            let shuffled = Just(events.clone()).prop_shuffle();
            (Just(w), Just(lateness), Just(events), shuffled)
        })
    })
}

fn apply_all(def: &EntityDef, events: &[Ev]) -> (EntityState, Vec<ObservationResult>) {
    let mut s = EntityState::new(def);
    let results = events.iter().enumerate().map(|(i, &e)| s.apply(def, &obs(e, i as i64), None)).collect();
    (s, results)
}

/// Applies a walk in time (each step moves the clock by `dt` from `T0`) to a fresh state,
/// checking every event: one more than the lateness behind the newest is refused and
/// answers as of its time, any other is applied and answers `expected(applied so far,
/// its time)`. Returns the state, the applied events and the newest time.
fn apply_walk(
    def: &EntityDef,
    lateness: i64,
    steps: &[(i64, Option<f64>, Option<u32>)],
    to_obs: fn(Ev, i64) -> Observation,
    expected: impl Fn(&[Ev], i64) -> Vec<f64>,
) -> Result<(EntityState, Vec<Ev>, i64), TestCaseError> {
    let mut s = EntityState::new(def);
    let mut t = T0;
    let mut max_t = None::<i64>;
    let mut applied = Vec::new();
    for (i, &(dt, v, d)) in steps.iter().enumerate() {
        t += dt;
        let r = s.apply(def, &to_obs((t, v, d), i as i64), None);
        let late = max_t.is_some_and(|m| t < m - lateness);
        prop_assert_eq!(r.applied, if late { Applied::Late } else { Applied::Applied }, "#{}", i);
        if late {
            prop_assert_eq!(&r.values, &s.values_at(def, t), "#{}", i);
        } else {
            applied.push((t, v, d));
            max_t = Some(max_t.map_or(t, |m| m.max(t)));
            prop_assert_eq!(&r.values, &expected(&applied, t), "#{}", i);
        }
    }
    Ok((s, applied, max_t.unwrap_or(T0)))
}

#[test]
fn window_spec_geometry() {
    let w = default_windows(LATENESS);
    assert_eq!((w[0].panes, w[0].slots), (12, 25));
    assert_eq!((w[1].panes, w[1].slots), (60, 62));
    let odd = WindowSpec::new("x", 10_000, 1_000, 2_500);
    assert_eq!((odd.panes, odd.slots), (10, 10 + 3 + 1));
    assert_eq!([odd.pane_of(0), odd.pane_of(999), odd.pane_of(1_000), odd.pane_of(-1), odd.pane_of(-1_001)], [0, 0, 1, -1, -2]);
}

#[test]
fn value_names_follow_windows_then_aggregations() {
    let def = full_def(default_windows(LATENESS), LATENESS, 256);
    assert_eq!(
        def.value_names(),
        [
            "count_1m", "x_sum_1m", "x_mean_1m", "x_min_1m", "x_max_1m", "d_distinct_1m", "count_1h", "x_sum_1h", "x_mean_1h",
            "x_min_1h", "x_max_1h", "d_distinct_1h", "seconds_since_last", "x_mean_1h"
        ]
    );
    assert_eq!(card_def().value_names(), ["count_1m", "amount_sum_1m", "count_1h", "amount_sum_1h", "amount_mean_1h"]);
}

#[test]
fn unknown_entity_is_empty() {
    let def = full_def(default_windows(LATENESS), LATENESS, 256);
    let s = EntityState::new(&def);
    assert_eq!(s.max_event_time(), None);
    assert_eq!(s.current_values(&def), None);
    let mut empty = vec![0.0; 12];
    empty.extend([-1.0, 0.0]);
    assert_eq!(s.values_at(&def, T0), empty);
}

/// One card through both default windows (the baseline's features). Pane indices
/// relative to T0: p = 1m pane (5 s), q = 1h pane (60 s). Values are [count_1m, sum_1m,
/// count_1h, sum_1h, mean_1h].
#[test]
fn golden_stream_for_one_card() {
    let def = card_def();
    let mut s = EntityState::new(&def);
    let mut apply = |o: Observation| s.apply(&def, &o, None);
    let applied = |v: [f64; 4]| ObservationResult { applied: Applied::Applied, values: vec![v[0], v[1], v[2], v[3], v[3] / v[2]] };
    assert_eq!(apply(card(T0, 10.0, 0)), applied([1.0, 10.0, 1.0, 10.0]));
    assert_eq!(apply(card(T0 + 4_999, 20.0, 1)), applied([2.0, 30.0, 2.0, 30.0]));
    assert_eq!(apply(card(T0 + 5_000, 5.0, 2)), applied([3.0, 35.0, 3.0, 35.0]));
    assert_eq!(apply(card(T0 + 59_999, 1.0, 3)), applied([4.0, 36.0, 4.0, 36.0]));
    // p12: the 1m window is [p1, p12], #0 and #1 (p0) slide out.
    assert_eq!(apply(card(T0 + 60_000, 100.0, 4)), applied([3.0, 106.0, 5.0, 136.0]));
    // Out of order, 30 s behind: as of its time 1m [p-5, p6] = #0 #1 #2 #5; 1h q0 = all but #4.
    assert_eq!(apply(card(T0 + 30_000, 7.0, 5)), applied([4.0, 42.0, 5.0, 43.0]));
    // Exactly lateness behind: applied.
    assert_eq!(apply(card(T0, 2.0, 6)), applied([3.0, 32.0, 6.0, 45.0]));
    // One ms further: late, values as of T0 - 1: empty.
    assert_eq!(apply(card(T0 - 1, 1_000.0, 7)), ObservationResult { applied: Applied::Late, values: vec![0.0; 5] });
    let before = s.clone();
    assert_eq!(s.apply(&def, &card(T0 + 60_000, 100.0, 4), None), ObservationResult { applied: Applied::Replayed, values: vec![4.0, 113.0, 7.0, 145.0, 145.0 / 7.0] });
    assert_eq!(s, before, "replays change nothing");
    // A gap longer than both rings: all old panes go.
    assert_eq!(s.apply(&def, &card(T0 + 3_750_000, 50.0, 8), None), applied([1.0, 50.0, 1.0, 50.0]));
    assert_eq!(s.apply(&def, &card(T0 + 3_690_000, 3.0, 9), None), applied([1.0, 3.0, 1.0, 3.0]));
    assert_eq!(s.current_values(&def), Some(vec![1.0, 50.0, 2.0, 53.0, 26.5]));
}

#[test]
fn min_max_follow_expiry_of_the_pane_holding_them() {
    let w = vec![WindowSpec::new("10s", 10_000, 1_000, 0)];
    let def = full_def(w, 0, 256);
    let mut s = EntityState::new(&def);
    let mut at = |dt: i64, x: f64, o: i64| {
        let r = s.apply(&def, &obs((T0 + dt, Some(x), None), o), None).values;
        (r[3], r[4])
    };
    assert_eq!(at(0, 5.0, 0), (5.0, 5.0));
    assert_eq!(at(1_000, 9.0, 1), (5.0, 9.0));
    assert_eq!(at(2_000, 1.0, 2), (1.0, 9.0));
    assert_eq!(at(9_999, 3.0, 3), (1.0, 9.0));
    // Pane 0 (the 5) slides out: not the min or max.
    assert_eq!(at(10_000, 4.0, 4), (1.0, 9.0));
    // Pane 1 (the max 9) slides out: recomputed.
    assert_eq!(at(11_000, 2.0, 5), (1.0, 4.0));
    // Pane 2 (the min 1) too.
    assert_eq!(at(12_500, 6.0, 6), (2.0, 6.0));
    // A jump past the window: only the new event.
    assert_eq!(at(60_000, -7.5, 7), (-7.5, -7.5));
}

#[test]
fn missing_values_count_but_do_not_aggregate() {
    let def = full_def(vec![WindowSpec::new("10s", 10_000, 1_000, 0)], 0, 256);
    let mut s = EntityState::new(&def);
    let r = s.apply(&def, &obs((T0, None, None), 0), None).values;
    assert_eq!(r, vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0]);
    let r = s.apply(&def, &obs((T0 + 2_500, Some(3.0), Some(1)), 1), None).values;
    assert_eq!(r, vec![2.0, 3.0, 3.0, 3.0, 3.0, 1.0, 2.5, 3.0]);
}

#[test]
fn seconds_since_last_is_exact_out_of_order() {
    let def = full_def(default_windows(LATENESS), LATENESS, 256);
    let mut s = EntityState::new(&def);
    let mut ssl = |dt: i64, o: i64| s.apply(&def, &obs((T0 + dt, None, None), o), None).values[12];
    assert_eq!(ssl(0, 0), -1.0);
    assert_eq!(ssl(10_000, 1), 10.0);
    assert_eq!(ssl(4_000, 2), 4.0, "out of order: the newest before it is T0");
    assert_eq!(ssl(4_000, 3), 4.0, "same time: strictly before");
    assert_eq!(ssl(-1_000, 4), -1.0, "nothing before it");
    // Far ahead: every kept time falls out of the lateness horizon, the newest is kept.
    assert_eq!(ssl(500_000, 5), 490.0);
    assert_eq!(ssl(440_000, 6), 430.0, "exactly lateness behind; the one before is the dropped max");
}

#[test]
fn partition_floor_makes_an_event_late() {
    let def = full_def(default_windows(LATENESS), LATENESS, 256);
    let mut s = EntityState::new(&def);
    assert_eq!(s.apply(&def, &obs((T0, Some(1.0), None), 0), Some(T0 + 1)).applied, Applied::Late);
    assert_eq!(s.apply(&def, &obs((T0 + 1, Some(1.0), None), 1), Some(T0 + 1)).applied, Applied::Applied);
}

#[test]
fn watermarks_per_partition() {
    let mut wm = PartitionWatermarks::new(10);
    let batch = [obs_at("a", 0, (100, None, None), 0), obs_at("a", 0, (50, None, None), 1), obs_at("a", 1, (70, None, None), 0), obs_at("a", 0, (200, None, None), 2)];
    assert_eq!(wm.floors(&batch), vec![None, Some(90), None, Some(90)]);
    assert_eq!(wm.of_batch(&batch), vec![("a".to_string(), 0, 190), ("a".to_string(), 1, 60)]);
    wm.raise("a", 1, 500);
    wm.raise("a", 1, 5);
    assert_eq!(wm.watermark("a", 1), Some(500));
    // Topics interleaved in a batch: each partition of each topic keeps its own watermark.
    let mixed = [obs_at("b", 0, (300, None, None), 0), obs_at("a", 0, (250, None, None), 3), obs_at("b", 0, (100, None, None), 1), obs_at("a", 0, (260, None, None), 4)];
    assert_eq!(wm.floors(&mixed), vec![None, Some(190), Some(290), Some(240)]);
    assert_eq!((wm.watermark("a", 0), wm.watermark("b", 0), wm.watermark("b", 1)), (Some(250), Some(290), None));
}

#[test]
fn state_bytes_round_trip_and_refuse_another_layout() {
    let def = full_def(default_windows(LATENESS), LATENESS, 4);
    let mut s = EntityState::new(&def);
    for i in 0..3 {
        s.apply(&def, &obs_at("tx", 3, (T0 + i * 7_000, Some(i as f64), Some(i as u32)), i), None);
    }
    let exact = s.to_bytes(&def);
    assert_eq!(EntityState::from_bytes(&def, &exact).as_ref(), Ok(&s));
    for i in 3..20 {
        s.apply(&def, &obs_at("t\u{e9}", 0, (T0 + i * 7_000, Some(i as f64), Some(i as u32)), i), None);
    }
    assert!(s.is_sketched(0), "more than 4 occurrences: sketches");
    let bytes = s.to_bytes(&def);
    let back = EntityState::from_bytes(&def, &bytes).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.to_bytes(&def), bytes);
    assert_eq!(back.current_values(&def), s.current_values(&def));
    assert_eq!(back.fences(), vec![("tx".to_string(), 3, 2), ("t\u{e9}".to_string(), 0, 19)]);
    // Other panes, lateness, limits or fields change the layout; names do not.
    let mut renamed = full_def(vec![WindowSpec::new("a", 60_000, 5_000, LATENESS), WindowSpec::new("b", 3_600_000, 60_000, LATENESS)], LATENESS, 4);
    renamed.kind = "other".into();
    assert_eq!(renamed.fingerprint(), def.fingerprint());
    for other in [
        full_def(default_windows(0), 0, 4),
        full_def(default_windows(LATENESS), LATENESS, 5),
        full_def(vec![WindowSpec::new("1m", 60_000, 10_000, LATENESS), WindowSpec::new("1h", 3_600_000, 60_000, LATENESS)], LATENESS, 4),
        card_def(),
    ] {
        assert_ne!(other.fingerprint(), def.fingerprint());
        let e = EntityState::from_bytes(&other, &bytes).unwrap_err();
        assert!(e.contains("layout fingerprint"), "{e}");
    }
    assert!(EntityState::from_bytes(&def, &bytes[..bytes.len() - 3]).unwrap_err().contains("truncated"));
    assert!(EntityState::from_bytes(&def, &[b'x', 1]).unwrap_err().contains("format"));
    let mut long = bytes.clone();
    long.push(0);
    assert!(EntityState::from_bytes(&def, &long).unwrap_err().contains("trailing"));
}

#[test]
fn hash_is_fixed() {
    // Pinned: states and sketches are shared between processes and versions.
    assert_eq!(format!("{:016x}", distinct_hash(b"")), "efd01f60ba992926");
    assert_eq!(format!("{:016x}", distinct_hash(b"card-1")), "2ef6cb114039dc73");
}

/// Regression: once sketched, a field stayed sketched for the life of the state. It goes
/// back to exact counts one ring after it calmed down, and is exact from then on.
#[test]
fn a_sketched_field_goes_back_to_exact_after_a_quiet_horizon() {
    let windows = vec![WindowSpec::new("4s", 4_000, 1_000, 2_000), WindowSpec::new("10s", 10_000, 2_000, 2_000)];
    let def = full_def(windows, 2_000, 5);
    let mut s = EntityState::new(&def);
    let mut applied: Vec<Ev> = Vec::new();
    let mut offset = 0;
    let mut push = |s: &mut EntityState, e: Ev| {
        offset += 1;
        applied.push(e);
        (s.apply(&def, &obs(e, offset), None), applied.clone())
    };
    // A burst of 20 distinct values in 2 s: over the limit of 5, sketched.
    for i in 0..20 {
        push(&mut s, (T0 + i * 100, Some(1.0), Some(i as u32)));
    }
    assert!(s.is_sketched(0));
    // Quiet: one value every 3 s. The rings (10 s + lateness) forget the burst after ~14 s.
    let mut t = T0 + 2_000;
    let mut back_at = None;
    for k in 0..10 {
        t += 3_000;
        let (r, so_far) = push(&mut s, (t, Some(2.0), Some(100 + (k % 3) as u32)));
        if !s.is_sketched(0) {
            back_at.get_or_insert(t);
            assert_eq!(r.values, brute_force(&def, &so_far, t), "exact again at {t}");
        }
    }
    let back_at = back_at.expect("the field went back to exact");
    assert!(back_at - T0 <= 2_000 + 10_000 + 2_000 + 2 * 3_000 + 2_000, "back to exact only at +{} ms", back_at - T0);
    // The state survives its encoding in exact mode again.
    let read = EntityState::from_bytes(&def, &s.to_bytes(&def)).unwrap();
    assert_eq!(read.current_values(&def), s.current_values(&def));
    assert!(!read.is_sketched(0));
}

/// States written by the previous format (3: no shadow mark for sketched fields) are read,
/// not refused: an upgrade must not stop the pipeline on every entity already in Redis.
#[test]
fn format_3_states_are_read() {
    let def = full_def(default_windows(LATENESS), LATENESS, 5);
    let events: Vec<Ev> = (0..40).map(|i| (T0 + i * 700, Some(i as f64), Some((i % 9) as u32))).collect();
    let (state, _) = apply_all(&def, &events);
    assert!(state.is_sketched(0));
    // Format 3 is format 4 without the 8-byte mark after each distinct field's mode byte.
    let v4 = state.to_bytes(&def);
    let mut v3 = vec![MAGIC, 3];
    v3.extend_from_slice(&def.fingerprint_of_format(3).to_le_bytes());
    let mut at = 6;
    let times = u32::from_le_bytes(v4[at + 16..at + 20].try_into().unwrap()) as usize;
    let distinct_at = at + 20 + 8 * times;
    v3.extend_from_slice(&v4[at..distinct_at + 1]);
    at = distinct_at + 1 + 8;
    v3.extend_from_slice(&v4[at..]);
    let read = EntityState::from_bytes(&def, &v3).unwrap();
    assert_eq!(read.current_values(&def), state.current_values(&def));
    assert!(read.is_sketched(0));
    // Another format is still refused by name.
    let mut v2 = v4.clone();
    v2[1] = 2;
    assert!(EntityState::from_bytes(&def, &v2).unwrap_err().contains("format"));
}

/// Regression (found in review): a preview of a live state answered the distinct count of
/// the windows before the previewed event slid them, when that event had no distinct value
/// (the incremental index was taken as current). The embedded store previews live states,
/// the Redis store decoded ones, so request-time vectors differed between the stores.
#[test]
fn preview_of_an_event_without_a_distinct_value_slides_the_distinct_counts() {
    let def = full_def(default_windows(LATENESS), LATENESS, 256);
    let (state, _) = apply_all(&def, &[(T0, Some(1.0), Some(7))]);
    let next: Ev = (T0 + 120_000, Some(2.0), None);
    let previewed = state.preview(&def, &obs(next, 1)).values;
    let applied = state.clone().apply(&def, &obs(next, 1), None).values;
    let decoded = EntityState::from_bytes(&def, &state.to_bytes(&def)).unwrap().preview(&def, &obs(next, 1)).values;
    assert_eq!(previewed[5], 0.0, "distinct_1m two minutes later");
    assert_eq!(previewed, applied);
    assert_eq!(previewed, decoded);
}

/// Regression: the exact distinct count rescanned every occurrence of the entity on every
/// event. The incremental index (and every other cache) answers exactly what counting
/// from scratch does, checked on a long in-order stream where values repeat and expire.
#[test]
fn incremental_distinct_counts_equal_a_recount_on_a_long_stream() {
    let def = full_def(default_windows(LATENESS), LATENESS, 100_000);
    let mut s = EntityState::new(&def);
    let mut t = T0;
    let mut x: u64 = 7;
    for i in 0..6_000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        t += (x >> 60) as i64 * 250;
        let r = s.apply(&def, &obs((t, Some(1.0), Some((x >> 33) as u32 % 300)), i), None);
        if i % 500 == 0 {
            let read = EntityState::from_bytes(&def, &s.to_bytes(&def)).unwrap();
            assert_eq!(r.values, read.values_at(&def, t), "event {i}");
        }
    }
    assert!(!s.is_sketched(0));
}

#[test]
fn hyperloglog_error_on_50k_distinct_values() {
    // 50 000 distinct values over a 24 h window: the estimate is within 3 standard errors
    // (3 * 1.04 / 16 = 19.5 %); with 256 registers the error of one sketch is ~6.5 %.
    let def = full_def(vec![WindowSpec::new("24h", 86_400_000, 1_800_000, 0)], 0, 256);
    let mut s = EntityState::new(&def);
    let n = 50_000u32;
    let mut last = Vec::new();
    for i in 0..n {
        last = s.apply(&def, &obs((T0 + i as i64, Some(1.0), Some(i)), i as i64), None).values;
    }
    assert!(s.is_sketched(0));
    let estimate = last[5];
    let error = (estimate - n as f64).abs() / n as f64;
    assert!(error < 3.0 * 1.04 / 16.0, "estimate {estimate} for {n}: error {error}");
    // The scanned answer (no cache) is the same as the cached one.
    assert_eq!(s.values_at(&def, T0 + n as i64 - 1)[5], estimate);
    // Small ranges: linear counting is close to exact.
    let mut regs = [0u8; HLL_REGISTERS];
    for i in 0..20u32 {
        hll_add(&mut regs, distinct_hash(i.to_string().as_bytes()));
    }
    assert!((hll_estimate(&regs) - 20.0).abs() <= 2.0, "{}", hll_estimate(&regs));
    assert_eq!(hll_estimate(&[0; HLL_REGISTERS]), 0.0);
    // The linear counting table is the formula, bit for bit.
    for zeros in 1..=HLL_REGISTERS {
        let m = HLL_REGISTERS as f64;
        assert_eq!(LINEAR_COUNTING[zeros].to_bits(), (m * (m / zeros as f64).ln()).to_bits());
    }
    // The constant empty sketch is the sketch of zero registers, estimate included.
    let empty = Sketch::from_regs([0; HLL_REGISTERS]);
    assert_eq!((Sketch::EMPTY.sum, Sketch::EMPTY.zeros, Sketch::EMPTY.estimate), (empty.sum, empty.zeros, empty.estimate));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The value table of the exact-distinct index answers what a map does after any
    /// inserts and removals, with hashes that share their low bits (long probe runs,
    /// wrapping past the table's end, removals that shift entries back) and enough values
    /// to grow it.
    #[test]
    fn position_table_equals_a_map(
        ops in proptest::collection::vec((0u8..3, 0u64..48, 0u64..1_000), 0..400),
    ) {
        let mut table = PositionTable::with_capacity(4);
        let mut model = std::collections::HashMap::new();
        for (op, v, at) in ops {
            // A few hashes per home slot, homes near the end of the smallest table (16).
            let h = (v % 6 + 12) | (v / 6) << 40;
            match op {
                0 => prop_assert_eq!(table.insert(h, at), model.insert(h, at)),
                1 => {
                    table.remove(h);
                    model.remove(&h);
                }
                _ => prop_assert_eq!(table.get(h), model.get(&h).copied()),
            }
            prop_assert_eq!(table.get(h), model.get(&h).copied());
            prop_assert_eq!(table.0.len(), model.len());
        }
        for (&k, &p) in &model {
            prop_assert_eq!(table.get(k), Some(p));
        }
        let mut positions: Vec<u64> = table.positions().collect();
        let mut expected: Vec<u64> = model.values().copied().collect();
        positions.sort_unstable();
        expected.sort_unstable();
        prop_assert_eq!(positions, expected);
    }

    /// A pane's registers, sparse or dense, answer what 256 plain registers do: after any
    /// sequence of hashes (few, so it stays a list, or many, so it switches), merged into
    /// any registers, and read back from their encoding.
    #[test]
    fn pane_registers_equal_plain_registers(
        hashes in proptest::collection::vec(any::<u64>(), 0..40),
        into in proptest::collection::vec(0u8..8, HLL_REGISTERS),
    ) {
        let mut pane = PaneRegs::default();
        let mut plain = [0u8; HLL_REGISTERS];
        for &h in &hashes {
            pane.add(h);
            hll_add(&mut plain, h);
            prop_assert_eq!(pane.to_dense(), plain);
        }
        let set = plain.iter().filter(|&&r| r != 0).count();
        prop_assert_eq!(matches!(pane, PaneRegs::Sparse(_)), set <= PANE_SPARSE_MAX);
        let (mut a, mut b): ([u8; HLL_REGISTERS], [u8; HLL_REGISTERS]) = (into.clone().try_into().unwrap(), into.try_into().unwrap());
        pane.merge_into(&mut a);
        hll_merge(&mut b, &plain);
        prop_assert_eq!(a, b);
        prop_assert_eq!(PaneRegs::from_dense(&plain), pane);
    }

    /// The division-free pane lookup answers what the division does, for any time and hint
    /// (including the empty window's and ones whose pane start overflows).
    #[test]
    fn pane_near_equals_pane_of(
        pane_ms in prop_oneof![Just(1i64), 1i64..5_000, Just(1_800_000i64)],
        t in prop_oneof![-10_000_000i64..10_000_000, any::<i64>()],
        offset in -3i64..4,
        wild in prop_oneof![Just(EMPTY_PANE), Just(i64::MAX), Just(i64::MIN), any::<i64>()],
        use_wild in any::<bool>(),
    ) {
        let spec = WindowSpec::new("w", pane_ms as u64 * 4, pane_ms as u64, 0);
        let near = if use_wild { wild } else { spec.pane_of(t).saturating_add(offset) };
        prop_assert_eq!(spec.pane_near(t, near), spec.pane_of(t));
    }

    #[test]
    fn any_order_within_lateness_gives_the_same_windows((w, lateness, events, shuffled) in in_lateness_events()) {
        let def = full_def(w, lateness, 1_000);
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| e.0);
        let (a, _) = apply_all(&def, &sorted);
        let (b, results) = apply_all(&def, &shuffled);
        prop_assert!(results.iter().all(|r| r.applied == Applied::Applied));
        let max_t = events.iter().map(|e| e.0).max().unwrap();
        prop_assert_eq!(a.current_values(&def), b.current_values(&def));
        prop_assert_eq!(a.current_values(&def).unwrap(), brute_force(&def, &events, max_t));
    }

    /// Every answer, in any order, is the brute force over the events applied so far, as of
    /// the event's own time.
    #[test]
    fn each_answer_is_the_brute_force_as_of_its_time((w, lateness, _events, shuffled) in in_lateness_events()) {
        let def = full_def(w, lateness, 1_000);
        let (_, results) = apply_all(&def, &shuffled);
        for (i, r) in results.iter().enumerate() {
            prop_assert_eq!(&r.values, &brute_force(&def, &shuffled[..=i], shuffled[i].0), "#{}", i);
        }
    }

    /// A span wider than the lateness: late ones are refused exactly when
    /// `t < max_t - lateness`; the rest are exact; a late answer is as of its time.
    #[test]
    fn late_events_are_refused_and_the_rest_are_exact(
        (w, lateness) in configs(),
        steps in proptest::collection::vec((-40_000i64..40_000, value(), distinct_value()), 1..80),
    ) {
        let def = full_def(w, lateness, 1_000);
        let (s, applied, max_t) = apply_walk(&def, lateness, &steps, obs, |applied, t| brute_force(&def, applied, t))?;
        prop_assert_eq!(s.current_values(&def).unwrap(), brute_force(&def, &applied, max_t));
        // And the state survives its encoding.
        let back = EntityState::from_bytes(&def, &s.to_bytes(&def)).unwrap();
        prop_assert_eq!(back.current_values(&def), s.current_values(&def));
    }

    /// A kind with three numeric fields (each pane's stats for several fields, at a field's
    /// offset): out of order, late, sliding and dropped panes, each field's answers are its
    /// brute force, and the state survives its encoding.
    #[test]
    fn every_numeric_field_of_a_wide_kind_answers_its_brute_force(
        (w, lateness) in configs(),
        steps in proptest::collection::vec((-40_000i64..40_000, value(), distinct_value()), 1..120),
    ) {
        let def = three_field_def(w, lateness);
        let (s, _, _) = apply_walk(&def, lateness, &steps, three_field_obs, |applied, t| three_field_brute_force(&def, applied, t))?;
        let back = EntityState::from_bytes(&def, &s.to_bytes(&def)).unwrap();
        prop_assert!(back == s);
        prop_assert_eq!(back.current_values(&def), s.current_values(&def));
    }

    /// Replaying any prefix of the offsets changes nothing and answers as of each replayed
    /// event's time.
    #[test]
    fn replaying_a_prefix_changes_nothing(
        (w, lateness) in configs(),
        steps in proptest::collection::vec((-20_000i64..20_000, value(), distinct_value()), 1..60),
        prefix in any::<proptest::sample::Index>(),
        limit in prop_oneof![Just(0usize), Just(5), Just(1_000)],
    ) {
        let def = full_def(w, lateness, limit);
        let mut s = EntityState::new(&def);
        let mut t = T0;
        let mut batch = Vec::new();
        for (i, (dt, v, d)) in steps.into_iter().enumerate() {
            t += dt;
            batch.push(obs((t, v, d), 100 + i as i64));
        }
        for o in &batch {
            s.apply(&def, o, None);
        }
        let before = s.clone();
        let k = prefix.index(batch.len() + 1);
        for o in &batch[..k] {
            let r = s.apply(&def, o, None);
            prop_assert_eq!(r.applied, Applied::Replayed);
            prop_assert_eq!(r.values, before.values_at(&def, o.event_time_ms));
        }
        prop_assert_eq!(&s, &before);
        let next = obs((before.max_event_time().unwrap(), Some(1.0), None), 100 + batch.len() as i64);
        prop_assert_eq!(s.apply(&def, &next, None).applied, Applied::Applied);
    }

    /// The live state's caches (incremental exact distinct counts, cached min/max, merged
    /// sketches with their running harmonic sum) answer exactly what the same state read
    /// back from its bytes does (no caches: everything counted from panes and
    /// occurrences), after every event, in any order, across switches between exact and
    /// sketched and back.
    #[test]
    fn caches_answer_like_a_state_read_back(
        (w, lateness) in configs(),
        steps in proptest::collection::vec((-6_000i64..15_000, value(), distinct_value()), 1..150),
        limit in prop_oneof![Just(0usize), Just(4), Just(12), Just(1_000)],
    ) {
        let def = full_def(w, lateness, limit);
        let mut s = EntityState::new(&def);
        let mut t = T0;
        for (i, (dt, v, d)) in steps.into_iter().enumerate() {
            t += dt;
            let r = s.apply(&def, &obs((t, v, d), i as i64), None);
            let read = EntityState::from_bytes(&def, &s.to_bytes(&def)).unwrap();
            prop_assert_eq!(&r.values, &read.values_at(&def, t), "event {}", i);
            prop_assert_eq!(s.current_values(&def), read.current_values(&def), "event {}", i);
        }
    }

    /// A preview answers the same from a live state (caches warm) as from the same state
    /// read back from its bytes (the Redis store's case), and as applying would.
    #[test]
    fn previews_agree_live_and_read_back(
        (w, lateness) in configs(),
        steps in proptest::collection::vec((-6_000i64..15_000, value(), distinct_value()), 2..80),
        limit in prop_oneof![Just(0usize), Just(5), Just(1_000)],
    ) {
        let def = full_def(w, lateness, limit);
        let mut s = EntityState::new(&def);
        let mut t = T0;
        let events: Vec<Ev> = steps.iter().map(|&(dt, v, d)| { t += dt; (t, v, d) }).collect();
        let (last, rest) = events.split_last().unwrap();
        for (i, &e) in rest.iter().enumerate() {
            s.apply(&def, &obs(e, i as i64), None);
        }
        let next = obs(*last, rest.len() as i64);
        let live = s.preview(&def, &next);
        let read = EntityState::from_bytes(&def, &s.to_bytes(&def)).unwrap().preview(&def, &next);
        prop_assert_eq!(&live.values, &read.values);
        prop_assert_eq!(live.applied, read.applied);
        let applied = s.clone().apply(&def, &next, None);
        if applied.applied == Applied::Applied {
            prop_assert_eq!(&live.values, &applied.values);
        }
    }

    /// Switching to sketches is lossless: an entity that switched mid-stream answers like
    /// one that sketched from its first event.
    #[test]
    fn switching_to_sketches_is_lossless(
        (w, lateness) in configs(),
        steps in proptest::collection::vec((0i64..3_000, distinct_value()), 1..80),
    ) {
        let (late, early) = (full_def(w.clone(), lateness, 6), full_def(w, lateness, 0));
        let (mut a, mut b) = (EntityState::new(&late), EntityState::new(&early));
        let mut t = T0;
        for (i, (dt, d)) in steps.into_iter().enumerate() {
            t += dt;
            let ra = a.apply(&late, &obs((t, Some(1.0), d), i as i64), None);
            let rb = b.apply(&early, &obs((t, Some(1.0), d), i as i64), None);
            if a.is_sketched(0) {
                prop_assert_eq!(ra.values, rb.values);
            }
        }
    }
}

#[test]
fn the_newest_positions_answer_alike_in_a_short_list_and_in_a_map() {
    let mut newest = Newest::default();
    let mut model = std::collections::HashMap::new();
    let mut many = false;
    // Values 0..20 arrive, each twice; the ninth distinct one turns the list into a map.
    for (at, h) in (0..20u64).chain(0..20).enumerate() {
        let at = at as u64;
        assert_eq!(newest.insert(h, at), model.insert(h, at));
        // A map, once more than `FEW` values were held at once; it stays one.
        many |= model.len() > Newest::FEW;
        assert_eq!(matches!(newest, Newest::Many(_)), many);
        if at % 7 == 3 {
            newest.remove(h);
            model.remove(&h);
        }
        for v in 0..21 {
            assert_eq!(newest.get(v), model.get(&v).copied());
        }
        for from in [0, 5, 19, 25, 40] {
            assert_eq!(newest.count_from(from), model.values().filter(|&&p| p >= from).count());
        }
    }
    newest.clear();
    assert!(matches!(newest, Newest::Few(ref few) if few.is_empty()));
}

#[test]
fn a_kind_with_too_many_fields_for_the_gathered_answers_evaluates_them_one_by_one() {
    // 8 numeric fields: 1 + 4 × 8 + 1 slots, more than `WindowAnswers` holds.
    let fields: Vec<String> = (0..8).map(|k| format!("x{k}")).collect();
    let mut aggregations = vec![agg(AggKind::Count, 0, "")];
    for (k, name) in fields.iter().enumerate() {
        for kind in [AggKind::Sum, AggKind::Mean, AggKind::Min, AggKind::Max] {
            aggregations.push(agg(kind, k, name));
        }
    }
    aggregations.push(agg(AggKind::Distinct, 0, "d"));
    let def = EntityDef::new("e", default_windows(LATENESS), fields, 1, aggregations, false, vec![], LATENESS, 256);
    assert!(def.answer_slots.is_empty());
    let mut state = EntityState::new(&def);
    let event = |t: i64, scale: f64, d: u32, offset: i64| Observation {
        values: (1..=8).map(|k| Some(scale * f64::from(k))).collect(),
        ..obs((t, None, Some(d)), offset)
    };
    state.apply(&def, &event(T0, 1.0, 7, 0), None);
    let r = state.apply(&def, &event(T0 + 1_000, 10.0, 8, 1), None);
    // Per window (both hold both events): count 2; per field k (1-based) sum 11k, mean
    // 5.5k, min k, max 10k; 2 distinct.
    let mut expected = Vec::new();
    for _ in 0..2 {
        expected.push(2.0);
        for k in 1..=8 {
            let k = f64::from(k);
            expected.extend([11.0 * k, 5.5 * k, k, 10.0 * k]);
        }
        expected.push(2.0);
    }
    assert_eq!(r.values, expected);
}
