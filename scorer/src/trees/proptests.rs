//! Property tests: the flattened layout and its one-comparison step decide exactly what
//! a plain evaluator decides, walking the ONNX attribute arrays node by node with f64
//! comparisons, on random small ensembles (random shapes, ids, modes, thresholds
//! including NaN, ±inf, non-f32 and out-of-f32-range doubles, missing-value tracks,
//! leaves with zero or several weights) and random rows (NaN, ±inf, ties with
//! thresholds and doubles one ulp off them), in f32 and in f64; and a `TreeEnsemble`
//! (opset 5) node, read into the flat form, decides what a plain walker over its own
//! arrays decides (BRANCH_MEMBER sets, leaves shared by branches, one-leaf trees).

use std::collections::HashMap;

use proptest::prelude::*;
use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto, NodeProto, TensorProto};

use super::attrs::{self, Aggregate, Kind, Labels, Mode, PostTransform, TreeAttrs};
use super::ensemble::reference::{fold, reference};
use super::ensemble::{Ensemble, Label, Real};

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

const THRESHOLDS: [f64; 11] = [-1.0, -0.5, 0.0, 0.5, 1.0, 0.1, 0.3, 1e40, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
const VALUES: [f32; 10] = [-1.0, -0.5, 0.0, 0.5, 1.0, 0.1, 0.3, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
/// Doubles: the thresholds, their f32 neighbours, one ulp off them.
const VALUES64: [f64; 16] = [
    -1.0,
    -0.5,
    0.0,
    0.5,
    1.0,
    0.1,
    0.100_000_000_000_000_01, // 0.1's next double up
    0.099_999_999_999_999_99, // 0.1's next double down (rounds to 0.1 in f32)
    0.100_000_001_490_116_12, // 0.1f32 as a double
    0.3,
    1e40,
    1.000_000_000_000_000_2, // 1.0's next double up
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -1.000_000_000_000_000_2,
];
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

fn same<T: Real>(a: T, b: T) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// Scores `n_rows` rows with the layout and with the plain evaluator.
fn check_against_reference<T: Real>(attrs: &TreeAttrs, x: &[T], n_rows: usize) -> Result<(), TestCaseError> {
    let e = Ensemble::<T>::build(attrs).map_err(TestCaseError::fail)?;
    let k = attrs.n_outputs();
    let mut z = vec![T::ZERO; n_rows * k];
    let mut labels = vec![Label::Index(usize::MAX); if attrs.is_classifier() { n_rows } else { 0 }];
    e.eval(x, FEATURES, &mut z, &mut labels).map_err(TestCaseError::fail)?;
    for row in 0..n_rows {
        let mut want = vec![T::ZERO; k];
        let label = reference(attrs, &e, &x[row * FEATURES..(row + 1) * FEATURES], &mut want);
        let got = &z[row * k..(row + 1) * k];
        prop_assert!(got.iter().zip(&want).all(|(a, b)| same(*a, *b)), "row {row}: layout {got:?} vs reference {want:?}");
        if let Some(l) = label {
            prop_assert_eq!(labels[row], l, "row {}", row);
        }
    }
    Ok(())
}

/// A random `TreeEnsemble` node: its arrays, and the membership sets by node.
struct V5 {
    node: NodeProto,
    n_targets: usize,
    featureids: Vec<i64>,
    splits: Vec<f64>,
    modes: Vec<u8>,
    tracks: Vec<bool>,
    truenodeids: Vec<i64>,
    trueleafs: Vec<bool>,
    falsenodeids: Vec<i64>,
    falseleafs: Vec<bool>,
    roots: Vec<i64>,
    targets: Vec<i64>,
    weights: Vec<f64>,
    sets: HashMap<usize, Vec<f64>>,
    aggregate: Aggregate,
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: v, ..Default::default() }
}

/// A tensor attribute; the test's loader reads `double_data`.
fn doubles(name: &str, v: &[f64]) -> AttributeProto {
    let t = TensorProto { dims: vec![v.len() as i64], data_type: 11, double_data: v.to_vec(), ..Default::default() };
    AttributeProto { name: name.into(), r#type: AttributeType::Tensor as i32, t: Some(t), ..Default::default() }
}

fn random_v5(seed: u64) -> V5 {
    let mut r = Rng(seed);
    let n_targets = 1 + r.below(3) as usize;
    let aggregate = r.pick(&[Aggregate::Sum, Aggregate::Average, Aggregate::Min, Aggregate::Max]);
    let mut v = V5 {
        node: NodeProto::default(),
        n_targets,
        featureids: vec![],
        splits: vec![],
        modes: vec![],
        tracks: vec![],
        truenodeids: vec![],
        trueleafs: vec![],
        falsenodeids: vec![],
        falseleafs: vec![],
        roots: vec![],
        targets: vec![],
        weights: vec![],
        sets: HashMap::new(),
        aggregate,
    };
    let n_leaves = 1 + r.below(6) as usize;
    for _ in 0..n_leaves {
        v.targets.push(r.below(n_targets as u64) as i64);
        v.weights.push(r.pick(&[-1.5, -0.25, 0.0, 0.125, 0.75, 2.0]));
    }
    // Nodes whose branches go to leaves or to later nodes (no cycles), several roots.
    let n_nodes = 1 + r.below(10) as usize;
    for i in 0..n_nodes {
        let mode = r.below(7) as u8;
        v.featureids.push(r.below(FEATURES as u64) as i64);
        v.splits.push(r.pick(&THRESHOLDS));
        v.modes.push(mode);
        v.tracks.push(r.below(2) == 0);
        if mode == 6 {
            let size = r.below(3) as usize; // may be empty
            let set = (0..size).map(|_| r.pick(&[-1.0, 0.0, 0.5, 1.0, 0.1, 40.0])).collect();
            v.sets.insert(i, set);
        }
        let branch = |r: &mut Rng| -> (i64, bool) {
            if i + 1 < n_nodes && r.below(2) == 0 {
                ((i + 1 + r.below((n_nodes - i - 1) as u64) as usize) as i64, false)
            } else {
                (r.below(n_leaves as u64) as i64, true)
            }
        };
        let (t, tl) = branch(&mut r);
        let (f, fl) = branch(&mut r);
        v.truenodeids.push(t);
        v.trueleafs.push(tl);
        v.falsenodeids.push(f);
        v.falseleafs.push(fl);
    }
    for _ in 0..1 + r.below(3) {
        v.roots.push(r.below(n_nodes as u64) as i64);
    }
    let membership: Vec<f64> = (0..n_nodes).filter(|i| v.modes[*i] == 6).flat_map(|i| v.sets[&i].iter().copied().chain([f64::NAN])).collect();
    let b = |x: &[bool]| x.iter().map(|&t| i64::from(t)).collect::<Vec<_>>();
    let mut attrs = vec![
        int("n_targets", n_targets as i64),
        int("aggregate_function", [Aggregate::Average, Aggregate::Sum, Aggregate::Min, Aggregate::Max].iter().position(|a| *a == aggregate).unwrap() as i64),
        ints("nodes_featureids", &v.featureids),
        doubles("nodes_splits", &v.splits),
        doubles("nodes_modes", &v.modes.iter().map(|&m| f64::from(m)).collect::<Vec<_>>()),
        ints("nodes_missing_value_tracks_true", &b(&v.tracks)),
        ints("nodes_truenodeids", &v.truenodeids),
        ints("nodes_trueleafs", &b(&v.trueleafs)),
        ints("nodes_falsenodeids", &v.falsenodeids),
        ints("nodes_falseleafs", &b(&v.falseleafs)),
        ints("tree_roots", &v.roots),
        ints("leaf_targetids", &v.targets),
        doubles("leaf_weights", &v.weights),
    ];
    if !membership.is_empty() {
        attrs.push(doubles("membership_values", &membership));
    }
    v.node = NodeProto { op_type: "TreeEnsemble".into(), domain: "ai.onnx.ml".into(), attribute: attrs, ..Default::default() };
    v
}

/// The plain `TreeEnsemble` walker, over the node's own arrays (the spec's reading).
fn reference_v5(v: &V5, e: &Ensemble<f64>, x: &[f64], z: &mut [f64]) {
    let mut s = vec![0.0; v.n_targets];
    let mut h = vec![false; v.n_targets];
    for &root in &v.roots {
        let mut i = root as usize;
        let leaf = loop {
            let x = x[v.featureids[i] as usize];
            let t = v.splits[i];
            let cond = match v.modes[i] {
                0 => x <= t,
                1 => x < t,
                2 => x >= t,
                3 => x > t,
                4 => x == t,
                5 => x != t,
                _ => v.sets[&i].contains(&x),
            } || (v.tracks[i] && x.is_nan());
            let (next, is_leaf) = if cond { (v.truenodeids[i], v.trueleafs[i]) } else { (v.falsenodeids[i], v.falseleafs[i]) };
            if is_leaf {
                break next as usize;
            }
            i = next as usize;
        };
        fold(v.aggregate, &mut s, &mut h, v.targets[leaf] as usize, v.weights[leaf]);
    }
    e.finalize_regressor(&mut s, &mut h, z);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn layout_decides_like_the_plain_evaluator(seed in any::<u64>(), row_seed in any::<u64>(), n_rows in 1usize..150) {
        let attrs = random_attrs(seed);
        let mut r = Rng(row_seed);
        let x: Vec<f32> = (0..n_rows * FEATURES).map(|_| r.pick(&VALUES)).collect();
        check_against_reference(&attrs, &x, n_rows)?;
    }

    #[test]
    fn layout_decides_like_the_plain_evaluator_in_f64(seed in any::<u64>(), row_seed in any::<u64>(), n_rows in 1usize..150) {
        let attrs = random_attrs(seed);
        let mut r = Rng(row_seed);
        let x: Vec<f64> = (0..n_rows * FEATURES).map(|_| r.pick(&VALUES64)).collect();
        check_against_reference(&attrs, &x, n_rows)?;
    }

    #[test]
    fn tree_ensemble_reads_as_the_plain_walker_decides(seed in any::<u64>(), row_seed in any::<u64>(), n_rows in 1usize..80) {
        let v = random_v5(seed);
        let load = |t: &TensorProto| -> Result<Vec<f64>, String> { Ok(t.double_data.clone()) };
        let attrs = attrs::read(&v.node, &load).map_err(TestCaseError::fail)?;
        let e = Ensemble::<f64>::build(&attrs).map_err(TestCaseError::fail)?;
        let mut r = Rng(row_seed);
        let x: Vec<f64> = (0..n_rows * FEATURES).map(|_| r.pick(&VALUES64)).collect();
        let k = v.n_targets;
        let mut z = vec![0.0; n_rows * k];
        e.eval(&x, FEATURES, &mut z, &mut []).map_err(TestCaseError::fail)?;
        for row in 0..n_rows {
            let mut want = vec![0.0; k];
            reference_v5(&v, &e, &x[row * FEATURES..(row + 1) * FEATURES], &mut want);
            let got = &z[row * k..(row + 1) * k];
            prop_assert!(got.iter().zip(&want).all(|(a, b)| same(*a, *b)), "row {row}: layout {got:?} vs walker {want:?}");
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
