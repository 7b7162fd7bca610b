//! Golden tests: weir-monitor's drift statistics and detectors against independent
//! computations (numpy/scipy for the statistics, River for the detectors), recorded by
//! `tools/golden/drift_golden.py` into `tests/golden/*.json`.
//!
//! - Exact statistics (quantile edges, bin counts, PSI, Jensen–Shannon, KS, Wasserstein-1,
//!   chi-square and its p-value) must agree to 1e-9 (p-values: 1e-9 relative).
//! - The streaming sketch ([`NumericDrift`]) must give PSI and JS equal to the exact ones
//!   (same bins), and KS and W1 within its stated error bound of scipy's exact values.
//! - Detectors must flag drift at exactly River's indices.
//!
//! Run with `--nocapture` to see the largest differences.

use std::collections::BTreeMap;

use serde::Deserialize;
use weir_monitor::detectors::{Adwin, AdwinConfig, DriftDetector, PageHinkley, PageHinkleyConfig, PhMode};
use weir_monitor::drift::exact;
use weir_monitor::drift::{CategoricalDrift, CategoricalReference, NumericDrift, NumericReference, WindowSpec};

const TOL: f64 = 1e-9;

fn golden<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

#[derive(Deserialize)]
struct File<C> {
    psi_epsilon: Option<f64>,
    cases: Vec<C>,
}

#[derive(Deserialize)]
struct NumericCase {
    name: String,
    scale: i64,
    bins: usize,
    reference: Vec<i64>,
    current: Vec<i64>,
    edges: Vec<f64>,
    reference_counts: Vec<u64>,
    current_counts: Vec<u64>,
    psi: f64,
    js: f64,
    ks: f64,
    w1: f64,
}

fn values(ks: &[i64], scale: i64) -> Vec<f64> {
    ks.iter().map(|&k| k as f64 / scale as f64).collect()
}

fn as_f64(c: &[u64]) -> Vec<f64> {
    c.iter().map(|&c| c as f64).collect()
}

fn close(what: &str, case: &str, ours: f64, theirs: f64, tol: f64, max_diff: &mut f64) {
    let d = (ours - theirs).abs();
    *max_diff = max_diff.max(d);
    assert!(d <= tol, "{case}: {what} = {ours}, scipy {theirs}, |diff| {d:e} > {tol:e}");
}

#[test]
fn numeric_statistics_match_scipy() {
    let file: File<NumericCase> = golden("numeric.json");
    assert_eq!(file.psi_epsilon, Some(exact::PSI_EPSILON));
    let mut max_diff: BTreeMap<&str, f64> = BTreeMap::new();
    for c in &file.cases {
        let r = values(&c.reference, c.scale);
        let q = values(&c.current, c.scale);
        let edges = exact::quantile_edges(&r, c.bins);
        assert_eq!(edges.len(), c.edges.len(), "{}: edges {edges:?} vs numpy {:?}", c.name, c.edges);
        for (a, b) in edges.iter().zip(&c.edges) {
            close("edge", &c.name, *a, *b, TOL, max_diff.entry("edges").or_default());
        }
        let rc = exact::bin_counts(&edges, &r);
        let qc = exact::bin_counts(&edges, &q);
        assert_eq!(rc, c.reference_counts, "{}: reference bin counts", c.name);
        assert_eq!(qc, c.current_counts, "{}: current bin counts", c.name);
        let psi = exact::psi(&as_f64(&rc), &as_f64(&qc), exact::PSI_EPSILON);
        close("psi", &c.name, psi, c.psi, TOL, max_diff.entry("psi").or_default());
        let js = exact::js_distance(&as_f64(&rc), &as_f64(&qc));
        close("js", &c.name, js, c.js, TOL, max_diff.entry("js").or_default());
        close("ks", &c.name, exact::ks_statistic(&r, &q), c.ks, TOL, max_diff.entry("ks").or_default());
        close("w1", &c.name, exact::wasserstein1(&r, &q), c.w1, TOL, max_diff.entry("w1").or_default());
    }
    eprintln!("numeric, max |ours - scipy| over {} cases: {max_diff:?}", file.cases.len());
}

#[test]
fn streaming_sketch_is_exact_for_psi_js_and_within_bounds_for_ks_w1() {
    let file: File<NumericCase> = golden("numeric.json");
    let mut worst_ks: (f64, f64) = (0.0, 0.0); // (|sketch - exact|, bound)
    let mut worst_w1: (f64, f64) = (0.0, 0.0);
    for c in &file.cases {
        let r = values(&c.reference, c.scale);
        let q = values(&c.current, c.scale);
        let reference = NumericReference::from_sample(&r, c.bins).unwrap();
        assert_eq!(reference.edges(), exact::quantile_edges(&r, c.bins).as_slice());
        // Spread the current sample over event time inside one window of 4 panes.
        let mut drift = NumericDrift::new(reference, WindowSpec::new(1_000, 4).unwrap());
        for (i, &x) in q.iter().enumerate() {
            drift.observe((i as u64 * 3_999) / q.len() as u64, x);
        }
        let rep = drift.report();
        assert_eq!(rep.n_current as usize, q.len(), "{}", c.name);
        assert_eq!(rep.n_reference as usize, r.len(), "{}", c.name);
        assert!((rep.psi - c.psi).abs() <= TOL, "{}: streaming psi {} vs {}", c.name, rep.psi, c.psi);
        assert!((rep.js - c.js).abs() <= TOL, "{}: streaming js {} vs {}", c.name, rep.js, c.js);
        // KS: the sketch is a lower bound, the exact value within max_error above it.
        assert!(rep.ks.value <= c.ks + TOL, "{}: ks sketch {:?} above exact {}", c.name, rep.ks, c.ks);
        assert!(c.ks <= rep.ks.value + rep.ks.max_error + TOL, "{}: ks {} outside {:?}", c.name, c.ks, rep.ks);
        let d = (c.ks - rep.ks.value).abs();
        if d > worst_ks.0 {
            worst_ks = (d, rep.ks.max_error);
        }
        assert!((rep.w1.value - c.w1).abs() <= rep.w1.max_error + TOL, "{}: w1 {} outside {:?}", c.name, c.w1, rep.w1);
        let d = (c.w1 - rep.w1.value).abs();
        if d > worst_w1.0 {
            worst_w1 = (d, rep.w1.max_error);
        }
        eprintln!(
            "{:28} ks exact {:.4} sketch {:.4} (+{:.4})  w1 exact {:.4} sketch {:.4} (±{:.4})",
            c.name, c.ks, rep.ks.value, rep.ks.max_error, c.w1, rep.w1.value, rep.w1.max_error
        );
    }
    eprintln!("worst sketch error: ks {worst_ks:?}, w1 {worst_w1:?} (error, stated bound)");
}

#[derive(Deserialize)]
struct CategoricalCase {
    name: String,
    max_categories: usize,
    reference: BTreeMap<String, u64>,
    current: BTreeMap<String, u64>,
    bucket_names: Vec<String>,
    reference_buckets: Vec<u64>,
    current_buckets: Vec<u64>,
    psi: f64,
    chi_square: f64,
    dof: usize,
    p_value: f64,
}

#[test]
fn categorical_statistics_match_scipy() {
    let file: File<CategoricalCase> = golden("categorical.json");
    let (mut d_psi, mut d_chi, mut d_p): (f64, f64, f64) = (0.0, 0.0, 0.0);
    for c in &file.cases {
        let reference =
            CategoricalReference::from_counts(c.reference.iter().map(|(k, v)| (k.as_str(), *v)), c.max_categories).unwrap();
        assert_eq!(reference.names(), c.bucket_names.as_slice(), "{}", c.name);
        assert_eq!(reference.counts(), as_f64(&c.reference_buckets).as_slice(), "{}", c.name);
        let mut drift = CategoricalDrift::new(reference, WindowSpec::unbounded());
        let mut t = 0;
        for (k, n) in &c.current {
            for _ in 0..*n {
                drift.observe(t, k);
                t += 1;
            }
        }
        assert_eq!(drift.current(), as_f64(&c.current_buckets), "{}", c.name);
        let rep = drift.report();
        close("psi", &c.name, rep.psi, c.psi, TOL, &mut d_psi);
        // The statistic can be in the thousands: compare relatively.
        close("chi_square", &c.name, rep.chi_square / c.chi_square.max(1.0), 1.0_f64.min(c.chi_square), TOL, &mut d_chi);
        assert_eq!(rep.dof, c.dof, "{}", c.name);
        let rel = if c.p_value == 0.0 { rep.p_value } else { (rep.p_value - c.p_value).abs() / c.p_value };
        d_p = d_p.max(rel);
        assert!(rel <= TOL, "{}: p {} vs scipy {} (rel {rel:e})", c.name, rep.p_value, c.p_value);
    }
    eprintln!("categorical, max diff: psi {d_psi:e}, chi-square (relative) {d_chi:e}, p-value (relative) {d_p:e}");
}

#[derive(Deserialize)]
struct DetectorCase {
    name: String,
    scale: i64,
    values: Vec<i64>,
    detections: BTreeMap<String, Vec<usize>>,
}

fn detector(config: &str) -> Box<dyn DriftDetector> {
    let adwin = |c| Box::new(Adwin::new(c).unwrap()) as Box<dyn DriftDetector>;
    let ph = |c| Box::new(PageHinkley::new(c).unwrap()) as Box<dyn DriftDetector>;
    match config {
        "adwin_default" => adwin(AdwinConfig::default()),
        "adwin_clock1_delta0.01" => adwin(AdwinConfig { delta: 0.01, clock: 1, ..Default::default() }),
        "adwin_mb3_mwl10_grace50" => adwin(AdwinConfig {
            max_buckets: 3,
            min_window_length: 10,
            grace_period: 50,
            clock: 16,
            ..Default::default()
        }),
        "ph_default" => ph(PageHinkleyConfig::default()),
        "ph_threshold10" => ph(PageHinkleyConfig { threshold: 10.0, ..Default::default() }),
        "ph_up_t5_d0.01_a0.999" => ph(PageHinkleyConfig {
            threshold: 5.0,
            delta: 0.01,
            alpha: 0.999,
            mode: PhMode::Up,
            min_instances: 50,
        }),
        "ph_down_t3" => ph(PageHinkleyConfig { threshold: 3.0, mode: PhMode::Down, ..Default::default() }),
        other => panic!("golden file names an unknown detector config {other}"),
    }
}

#[test]
fn detectors_flag_drift_at_rivers_indices() {
    let file: File<DetectorCase> = golden("detectors.json");
    let mut compared = 0;
    for c in &file.cases {
        for (config, theirs) in &c.detections {
            let mut d = detector(config);
            let ours: Vec<usize> = values(&c.values, c.scale)
                .into_iter()
                .enumerate()
                .filter_map(|(i, x)| d.update(x).then_some(i))
                .collect();
            assert_eq!(&ours, theirs, "{} / {config}: weir vs River detection indices", c.name);
            compared += theirs.len();
        }
    }
    eprintln!("detectors: {} streams, {compared} River detections matched exactly", file.cases.len());
}
