//! Property test: the flattened layout and its branch-free step decide exactly what a
//! plain evaluator decides, walking the ONNX attribute arrays node by node with f64
//! comparisons, on random small ensembles (random shapes, ids, modes, thresholds
//! including NaN, non-f32 and out-of-f32-range doubles, missing-value tracks, leaves
//! with zero or several weights) and random rows (NaN, ±inf, ties with thresholds).

use std::collections::HashMap;

use proptest::prelude::*;

use super::attrs::{Aggregate, Kind, Labels, Mode, PostTransform, TreeAttrs};
use super::ensemble::{Ensemble, Label};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const THRESHOLDS: [f64; 9] = [-1.0, -0.5, 0.0, 0.5, 1.0, 0.1, 0.3, 1e40, f64::NAN];
const VALUES: [f32; 10] = [-1.0, -0.5, 0.0, 0.5, 1.0, 0.1, 0.3, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
const MODES: [Mode; 6] = [Mode::Leq, Mode::Lt, Mode::Gte, Mode::Gt, Mode::Eq, Mode::Neq];
const FEATURES: usize = 4;

fn random_attrs(seed: u64) -> TreeAttrs {
    let mut r = Rng(seed);
    let classifier = r.below(2) == 0;
    let n_out = if classifier { 2 + r.below(3) as usize } else { 1 + r.below(3) as usize };
    let mut a = TreeAttrs {
        kind: if classifier {
            Kind::Classifier(Labels::Int64((0..n_out as i64).map(|c| c * 10).collect()))
        } else {
            Kind::Regressor { n_targets: n_out }
        },
        nodes_treeids: vec![],
        nodes_nodeids: vec![],
        nodes_featureids: vec![],
        nodes_values: vec![],
        nodes_modes: vec![],
        nodes_truenodeids: vec![],
        nodes_falsenodeids: vec![],
        nodes_missing_value_tracks_true: vec![],
        leaf_treeids: vec![],
        leaf_nodeids: vec![],
        leaf_ids: vec![],
        leaf_weights: vec![],
        base_values: vec![],
        post_transform: r.pick(&[
            PostTransform::None,
            PostTransform::Logistic,
            PostTransform::Softmax,
            PostTransform::SoftmaxZero,
            PostTransform::Probit,
        ]),
        aggregate: r.pick(&[Aggregate::Sum, Aggregate::Average, Aggregate::Min, Aggregate::Max]),
        v5: false,
    };
    let n_trees = 1 + r.below(5);
    for t in 0..n_trees {
        let tree = (t * 2 + 1) as i64; // ids need not be contiguous
        // Nodes of this tree: (id, mode, feature, threshold, track, true, false).
        let mut nodes: Vec<(i64, Mode, i64, f64, bool, i64, i64)> = Vec::new();
        fn grow(r: &mut Rng, depth: u32, nodes: &mut Vec<(i64, Mode, i64, f64, bool, i64, i64)>) -> i64 {
            let id = nodes.len() as i64 * 3 + 5;
            let at = nodes.len();
            nodes.push((id, Mode::Leaf, 0, 0.0, false, 0, 0));
            let leaf = depth == 4 || (depth > 0 && r.below(10) < 3) || (depth == 0 && r.below(10) == 0);
            if !leaf {
                let mode = r.pick(&MODES);
                let feature = r.below(FEATURES as u64) as i64;
                let threshold = r.pick(&THRESHOLDS);
                let track = r.below(2) == 0;
                let t = grow(r, depth + 1, nodes);
                let f = grow(r, depth + 1, nodes);
                nodes[at] = (id, mode, feature, threshold, track, t, f);
            }
            id
        }
        grow(&mut r, 0, &mut nodes);
        // The root stays first (onnxruntime takes a tree's first node as its root); the
        // rest in random order.
        for i in (2..nodes.len()).rev() {
            let j = 1 + r.below(i as u64) as usize;
            nodes.swap(i, j);
        }
        for &(id, mode, feature, threshold, track, t, f) in &nodes {
            a.nodes_treeids.push(tree);
            a.nodes_nodeids.push(id);
            a.nodes_featureids.push(feature);
            a.nodes_values.push(threshold);
            a.nodes_modes.push(mode);
            a.nodes_missing_value_tracks_true.push(track);
            a.nodes_truenodeids.push(t);
            a.nodes_falsenodeids.push(f);
            if mode == Mode::Leaf {
                for _ in 0..r.below(3) {
                    a.leaf_treeids.push(tree);
                    a.leaf_nodeids.push(id);
                    a.leaf_ids.push(r.below(n_out as u64) as i64);
                    a.leaf_weights.push(r.pick(&[-1.5, -0.25, 0.0, 0.125, 0.75, 2.0]));
                }
            }
        }
    }
    let base_len = r.pick(&[0usize, 1, n_out]);
    let base_len = if classifier && base_len == 1 && n_out != 2 { 0 } else { base_len };
    a.base_values = (0..base_len).map(|_| r.pick(&[-0.5, 0.0, 0.25, 1.0])).collect();
    a
}

/// The plain evaluator: look nodes up by (tree, id), compare in f64.
fn reference(a: &TreeAttrs, e: &Ensemble<f32>, x: &[f32], z: &mut [f32]) -> Option<Label> {
    let index: HashMap<(i64, i64), usize> =
        (0..a.nodes_treeids.len()).map(|i| ((a.nodes_treeids[i], a.nodes_nodeids[i]), i)).collect();
    let mut roots = Vec::new();
    for i in 0..a.nodes_treeids.len() {
        if !roots.iter().any(|&r: &usize| a.nodes_treeids[r] == a.nodes_treeids[i]) {
            roots.push(i);
        }
    }
    let k = a.n_outputs();
    let mut s = vec![0f32; k];
    let mut h = vec![false; k];
    let aggregate = if a.is_classifier() { Aggregate::Sum } else { a.aggregate };
    for &root in &roots {
        let mut i = root;
        while a.nodes_modes[i] != Mode::Leaf {
            let v = f64::from(x[a.nodes_featureids[i] as usize]);
            let t = a.nodes_values[i];
            let cond = match a.nodes_modes[i] {
                Mode::Leq => v <= t,
                Mode::Lt => v < t,
                Mode::Gte => v >= t,
                Mode::Gt => v > t,
                Mode::Eq => v == t,
                Mode::Neq => v != t,
                Mode::Leaf => unreachable!(),
            } || (a.nodes_missing_value_tracks_true[i] && v.is_nan());
            let next = if cond { a.nodes_truenodeids[i] } else { a.nodes_falsenodeids[i] };
            i = index[&(a.nodes_treeids[i], next)];
        }
        for j in 0..a.leaf_ids.len() {
            if (a.leaf_treeids[j], a.leaf_nodeids[j]) != (a.nodes_treeids[i], a.nodes_nodeids[i]) {
                continue;
            }
            let o = a.leaf_ids[j] as usize;
            let w = a.leaf_weights[j] as f32;
            match aggregate {
                Aggregate::Sum | Aggregate::Average => s[o] += w,
                Aggregate::Min => s[o] = if !h[o] || w < s[o] { w } else { s[o] },
                Aggregate::Max => s[o] = if !h[o] || w > s[o] { w } else { s[o] },
            }
            h[o] = true;
        }
    }
    if a.is_classifier() {
        Some(e.finalize_classifier(&mut s, &mut h, z))
    } else {
        e.finalize_regressor(&mut s, &mut h, z);
        None
    }
}

fn same(a: f32, b: f32) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn layout_decides_like_the_plain_evaluator(seed in any::<u64>(), row_seed in any::<u64>(), n_rows in 1usize..150) {
        let attrs = random_attrs(seed);
        let e = Ensemble::<f32>::build(&attrs).map_err(TestCaseError::fail)?;
        let mut r = Rng(row_seed);
        let x: Vec<f32> = (0..n_rows * FEATURES).map(|_| r.pick(&VALUES)).collect();
        let k = attrs.n_outputs();
        let mut z = vec![0f32; n_rows * k];
        let mut labels = vec![Label::Index(usize::MAX); if attrs.is_classifier() { n_rows } else { 0 }];
        e.eval(&x, FEATURES, &mut z, &mut labels).map_err(TestCaseError::fail)?;
        for row in 0..n_rows {
            let mut want = vec![0f32; k];
            let label = reference(&attrs, &e, &x[row * FEATURES..(row + 1) * FEATURES], &mut want);
            let got = &z[row * k..(row + 1) * k];
            prop_assert!(got.iter().zip(&want).all(|(a, b)| same(*a, *b)), "row {row}: layout {got:?} vs reference {want:?}");
            if let Some(l) = label {
                prop_assert_eq!(labels[row], l, "row {}", row);
            }
        }
    }
}

#[test]
fn malformed_ensembles_are_refused_with_the_attribute_named() {
    let base = random_attrs(3);
    let mut dangling = base.clone();
    let i = dangling.nodes_modes.iter().position(|m| *m != Mode::Leaf).expect("a branch");
    dangling.nodes_truenodeids[i] = 9999;
    let err = Ensemble::<f32>::build(&dangling).unwrap_err();
    assert!(err.contains("nodes_truenodeids") && err.contains("9999"), "{err}");

    let mut cycle = base.clone();
    let root_id = cycle.nodes_nodeids[i];
    let branch_child = cycle.nodes_falsenodeids[i];
    if let Some(c) = (0..cycle.nodes_nodeids.len()).find(|&c| cycle.nodes_nodeids[c] == branch_child && cycle.nodes_treeids[c] == cycle.nodes_treeids[i]) {
        cycle.nodes_modes[c] = Mode::Leq;
        cycle.nodes_truenodeids[c] = root_id;
        cycle.nodes_falsenodeids[c] = root_id;
        let err = Ensemble::<f32>::build(&cycle).unwrap_err();
        assert!(err.contains("cycle"), "{err}");
    }

    let mut bad_output = base.clone();
    bad_output.leaf_ids.push(99);
    bad_output.leaf_treeids.push(bad_output.nodes_treeids[0]);
    bad_output.leaf_nodeids.push(bad_output.nodes_nodeids[0]);
    bad_output.leaf_weights.push(1.0);
    let err = Ensemble::<f32>::build(&bad_output).unwrap_err();
    assert!(err.contains("output 99"), "{err}");

    let mut bad_base = base.clone();
    bad_base.base_values = vec![0.0; 7];
    let err = Ensemble::<f32>::build(&bad_base).unwrap_err();
    assert!(err.contains("base_values"), "{err}");
}
