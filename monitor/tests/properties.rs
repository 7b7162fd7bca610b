//! Property tests for the drift statistics: 0 for identical distributions, symmetric where
//! the definition is, in range, the sketch's bounds hold, and the rolling window counts
//! exactly the events of its panes.

use proptest::prelude::*;
use weir_monitor::drift::exact;
use weir_monitor::drift::{CategoricalDrift, CategoricalReference, NumericDrift, NumericReference, WindowSpec};

fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        // continuous-ish values
        prop::collection::vec(-1_000.0f64..1_000.0, 1..150),
        // heavy ties
        prop::collection::vec((0i32..6).prop_map(f64::from), 1..150),
    ]
}

fn counts() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((0u32..50).prop_map(f64::from), 2..12)
}

fn scale(a: &[f64], b: &[f64]) -> f64 {
    a.iter().chain(b).fold(1.0f64, |m, x| m.max(x.abs()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn identical_samples_have_zero_drift(a in sample(), bins in 2usize..20) {
        prop_assert_eq!(exact::ks_statistic(&a, &a), 0.0);
        prop_assert_eq!(exact::wasserstein1(&a, &a), 0.0);
        let edges = exact::quantile_edges(&a, bins);
        let c: Vec<f64> = exact::bin_counts(&edges, &a).into_iter().map(|c| c as f64).collect();
        prop_assert_eq!(exact::psi(&c, &c, exact::PSI_EPSILON), 0.0);
        prop_assert_eq!(exact::js_distance(&c, &c), 0.0);
        let (chi, _, p) = exact::chi_square_homogeneity(&c, &c);
        prop_assert!(chi.abs() < 1e-9 && (p - 1.0).abs() < 1e-9, "chi {chi} p {p}");

        // The streaming sketch of the reference sample itself.
        let mut d = NumericDrift::new(NumericReference::from_sample(&a, bins).unwrap(), WindowSpec::unbounded());
        for (i, &x) in a.iter().enumerate() {
            d.observe(i as u64, x);
        }
        let r = d.report();
        prop_assert_eq!(r.psi, 0.0);
        prop_assert_eq!(r.js, 0.0);
        prop_assert_eq!(r.ks.value, 0.0);
        prop_assert!(r.w1.value <= 1e-12 * scale(&a, &a), "w1 {}", r.w1.value);
    }

    #[test]
    fn statistics_are_symmetric_and_in_range(a in sample(), b in sample()) {
        let ks = exact::ks_statistic(&a, &b);
        prop_assert_eq!(ks, exact::ks_statistic(&b, &a));
        prop_assert!((0.0..=1.0).contains(&ks));
        let w = exact::wasserstein1(&a, &b);
        prop_assert!(w >= 0.0);
        prop_assert!((w - exact::wasserstein1(&b, &a)).abs() <= 1e-12 * scale(&a, &b), "w1 not symmetric");
    }

    #[test]
    fn binned_statistics_are_symmetric_and_in_range(p in counts(), q in counts()) {
        let n = p.len().min(q.len());
        let (p, q) = (&p[..n], &q[..n]);
        let psi = exact::psi(p, q, exact::PSI_EPSILON);
        prop_assert!(psi >= 0.0);
        prop_assert!((psi - exact::psi(q, p, exact::PSI_EPSILON)).abs() <= 1e-12 * psi.max(1.0));
        let js = exact::js_distance(p, q);
        prop_assert!((0.0..=1.0).contains(&js));
        prop_assert_eq!(js, exact::js_distance(q, p));
        let (chi, dof, pv) = exact::chi_square_homogeneity(p, q);
        let (chi2, dof2, pv2) = exact::chi_square_homogeneity(q, p);
        prop_assert!(chi >= 0.0 && (0.0..=1.0).contains(&pv));
        prop_assert_eq!(dof, dof2);
        prop_assert!((chi - chi2).abs() <= 1e-9 * chi.max(1.0) && (pv - pv2).abs() <= 1e-9);
    }

    #[test]
    fn sketch_bounds_contain_the_exact_values(a in sample(), b in sample(), bins in 2usize..16) {
        let mut d = NumericDrift::new(NumericReference::from_sample(&a, bins).unwrap(), WindowSpec::unbounded());
        for (i, &x) in b.iter().enumerate() {
            d.observe(i as u64, x);
        }
        let r = d.report();
        let ks = exact::ks_statistic(&a, &b);
        prop_assert!(r.ks.value <= ks + 1e-12 && ks <= r.ks.value + r.ks.max_error + 1e-12, "ks {ks} vs {:?}", r.ks);
        let w = exact::wasserstein1(&a, &b);
        prop_assert!((w - r.w1.value).abs() <= r.w1.max_error + 1e-9 * scale(&a, &b), "w1 {w} vs {:?}", r.w1);
        // PSI and JS are exact on the bins
        let edges = r_edges(&d);
        let ca: Vec<f64> = exact::bin_counts(&edges, &a).into_iter().map(|c| c as f64).collect();
        let cb: Vec<f64> = exact::bin_counts(&edges, &b).into_iter().map(|c| c as f64).collect();
        prop_assert_eq!(r.psi, exact::psi(&ca, &cb, exact::PSI_EPSILON));
        prop_assert_eq!(r.js, exact::js_distance(&ca, &cb));
    }

    /// Events at arbitrary (also out-of-order) event times: the window holds exactly the
    /// events whose pane is among the last `panes` panes of the newest time seen, counted
    /// when they arrived no later than that.
    #[test]
    fn rolling_window_counts_exactly_its_panes(
        events in prop::collection::vec((0u64..2_000, -10.0f64..10.0), 1..300),
        pane_len in 1u64..200,
        panes in 1usize..8,
    ) {
        let reference: Vec<f64> = (0..100).map(|i| f64::from(i) / 5.0 - 10.0).collect();
        let mut d = NumericDrift::new(NumericReference::from_sample(&reference, 10).unwrap(), WindowSpec::new(pane_len, panes).unwrap());
        let mut accepted: Vec<(u64, f64)> = Vec::new();
        let mut newest = 0u64;
        for &(t, x) in &events {
            newest = newest.max(t / pane_len);
            let late = newest - t / pane_len >= panes as u64;
            let obs = d.observe(t, x);
            prop_assert_eq!(obs == weir_monitor::drift::Observed::Late, late);
            if !late {
                accepted.push((t, x));
            }
        }
        let in_window: Vec<f64> =
            accepted.iter().filter(|(t, _)| newest - t / pane_len < panes as u64).map(|e| e.1).collect();
        let expected: Vec<f64> = exact::bin_counts(&r_edges(&d), &in_window).into_iter().map(|c| c as f64).collect();
        prop_assert_eq!(d.current().counts, expected);
    }

    #[test]
    fn categorical_identical_mix_has_zero_drift(counts in prop::collection::vec(1u64..40, 1..10)) {
        let names: Vec<String> = (0..counts.len()).map(|i| format!("c{i}")).collect();
        let reference = CategoricalReference::from_counts(names.iter().map(String::as_str).zip(counts.iter().copied()), 64).unwrap();
        let mut d = CategoricalDrift::new(reference, WindowSpec::unbounded());
        for (name, &n) in names.iter().zip(&counts) {
            for t in 0..n {
                d.observe(t, name);
            }
        }
        let r = d.report();
        prop_assert_eq!(r.psi, 0.0);
        prop_assert!(r.chi_square.abs() < 1e-9 && (r.p_value - 1.0).abs() < 1e-9);
        prop_assert_eq!(r.other_share, 0.0);
    }
}

fn r_edges(d: &NumericDrift) -> Vec<f64> {
    d.reference().edges().to_vec()
}

#[test]
fn an_unseen_category_lands_in_other() {
    let reference = CategoricalReference::from_sample(["web", "web", "pos"], 64).unwrap();
    let mut d = CategoricalDrift::new(reference, WindowSpec::unbounded());
    d.observe(0, "web");
    d.observe(1, "crypto");
    assert_eq!(d.current(), vec![1.0, 0.0, 1.0]);
    let r = d.report();
    assert_eq!(r.other_share, 0.5);
    assert!(r.psi > 0.25);
}
