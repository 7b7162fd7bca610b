//! From the ONNX attribute arrays to the layout: nodes indexed, checked (dangling
//! children, cycles, weights for missing nodes or outputs), every branch rewritten into
//! its ordered form, trees laid out depth first, the payload form chosen.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::layout::{Ensemble, Node, Payload};
use super::real::Real;
use crate::trees::attrs::{Aggregate, Mode, TreeAttrs};

/// Features are < 2^24 (and a node's key is a feature or feature + n_features).
const FEATURE_LIMIT: i64 = 1 << 24;

/// Where one `x <= threshold` node of a branch's ordered form sends a row: the branch's
/// true or false child, or the next node of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum To {
    True,
    False,
    Next,
}

/// One node of a branch's ordered form: `x <= threshold` goes to `le`, else to `gt`;
/// NaN (which compares false) goes to `gt`, unless `nan_le`: then the node reads the
/// row's copy where NaN is -inf, which is <= every threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cut<T> {
    pub(super) threshold: T,
    pub(super) le: To,
    pub(super) gt: To,
    pub(super) nan_le: bool,
}

/// The ordered form of a branch: one or two `x <= threshold` nodes that decide, for
/// every `x` of type `T`, NaN included, exactly what onnxruntime's
/// `x MODE t || (track && isnan(x))` decides with `t` in f64. LEQ/LT/GTE/GT are one node
/// (a threshold rounded to `T` the right way, children swapped for GTE/GT); EQ and NEQ
/// are two (`prev(t) < x <= t`); a branch no `x` can take (a threshold `T` cannot hold
/// for EQ, a NaN threshold, LT -inf) is one node on +inf, which every non-NaN `x` passes.
pub(super) fn ordered_form<T: Real>(mode: Mode, t: f64, track: bool) -> Vec<Cut<T>> {
    use To::{False, Next, True};
    // NaN compares false, and unequal: it takes the true branch for NEQ, else if tracked.
    let nan_to = if mode == Mode::Neq || track { True } else { False };
    let sub = |threshold: T, le: To, gt: To| Cut { threshold, le, gt, nan_le: false };
    let constant = |value: To| vec![sub(T::INFINITY, value, nan_to)];
    // Largest value strictly below t: `x < t` is `x <= below(t)`. None for t = -inf.
    let below = |t: f64| -> Option<T> {
        let d = T::down(t);
        if d.to_f64() < t {
            Some(d)
        } else if d == T::NEG_INFINITY {
            None
        } else {
            Some(d.next_down())
        }
    };
    let mut subs = if t.is_nan() {
        constant(if mode == Mode::Neq { True } else { False })
    } else {
        match mode {
            Mode::Leq => vec![sub(T::down(t), True, False)],
            Mode::Lt => below(t).map_or_else(|| constant(False), |b| vec![sub(b, True, False)]),
            Mode::Gt => vec![sub(T::down(t), False, True)],
            Mode::Gte => below(t).map_or_else(|| constant(True), |b| vec![sub(b, False, True)]),
            Mode::Eq | Mode::Neq => {
                let (equal, unequal) = if mode == Mode::Eq { (True, False) } else { (False, True) };
                let v = T::from_f64(t);
                if v.to_f64() != t {
                    constant(unequal)
                } else if v == T::NEG_INFINITY {
                    vec![sub(v, equal, unequal)]
                } else if v == T::INFINITY {
                    vec![sub(T::MAX, unequal, equal)]
                } else {
                    vec![sub(v.next_down(), unequal, Next), sub(v, equal, unequal)]
                }
            }
            Mode::Leaf => Vec::new(),
        }
    };
    for s in &mut subs {
        s.nan_le = if s.gt == nan_to {
            false
        } else if s.le == nan_to {
            true
        } else {
            // NaN's branch is further down the form: follow `Next`.
            s.le == Next
        };
    }
    subs
}

/// A leaf's weights: (output, weight) in onnxruntime's order.
type LeafWeights = Vec<(u32, f64)>;

impl<T: Real> Ensemble<T> {
    pub fn build(a: &TreeAttrs) -> Result<Ensemble<T>, String> {
        let op = a.op_name();
        let n_outputs = a.n_outputs();
        let n = a.nodes_treeids.len();
        if n == 0 {
            return Err(format!("{op}: nodes_treeids: no nodes"));
        }
        let mut index = HashMap::with_capacity(n);
        for i in 0..n {
            if index.insert((a.nodes_treeids[i], a.nodes_nodeids[i]), i).is_some() {
                return Err(format!("{op}: nodes_nodeids: node {} of tree {} is defined twice", a.nodes_nodeids[i], a.nodes_treeids[i]));
            }
        }
        let mut n_features = 0usize;
        for (i, &f) in a.nodes_featureids.iter().enumerate() {
            if a.nodes_modes[i] == Mode::Leaf {
                continue;
            }
            if !(0..FEATURE_LIMIT).contains(&f) {
                return Err(format!("{op}: nodes_featureids: feature {f} out of range"));
            }
            n_features = n_features.max(f as usize + 1);
        }
        let child = |i: usize, which: &[i64], name: &str| -> Result<usize, String> {
            index.get(&(a.nodes_treeids[i], which[i])).copied().ok_or_else(|| {
                format!("{op}: {name}: node {} of tree {} points to node {}, which does not exist", a.nodes_nodeids[i], a.nodes_treeids[i], which[i])
            })
        };
        // Leaf weights, grouped by (tree, node) in onnxruntime's order.
        let mut order: Vec<usize> = (0..a.leaf_ids.len()).collect();
        order.sort_by_key(|&j| (a.leaf_treeids[j], a.leaf_nodeids[j], j));
        let mut leaf_weights: HashMap<usize, LeafWeights> = HashMap::new();
        let mut classes = BTreeSet::new();
        let mut weights_are_all_positive = true;
        for j in order {
            let node = *index.get(&(a.leaf_treeids[j], a.leaf_nodeids[j])).ok_or_else(|| {
                format!("{op}: weight {j} names node {} of tree {}, which does not exist", a.leaf_nodeids[j], a.leaf_treeids[j])
            })?;
            let out = a.leaf_ids[j];
            if !(0..n_outputs as i64).contains(&out) {
                return Err(format!("{op}: weight {j} is for output {out}, the op has {n_outputs}"));
            }
            classes.insert(out);
            if a.leaf_weights[j] < 0.0 {
                weights_are_all_positive = false;
            }
            // onnxruntime ignores weights on branch nodes (old onnxmltools wrote some).
            if a.nodes_modes[node] == Mode::Leaf {
                leaf_weights.entry(node).or_default().push((out as u32, a.leaf_weights[j]));
            }
        }
        if !a.is_classifier() && n_outputs == 1 {
            // onnxruntime's one-target rule: every leaf gives exactly one value, its first
            // weight, or 0 if it has none (and then still counts for MIN/MAX).
            for i in (0..n).filter(|&i| a.nodes_modes[i] == Mode::Leaf) {
                let w = leaf_weights.entry(i).or_default();
                w.truncate(1);
                if w.is_empty() {
                    w.push((0, 0.0));
                }
            }
        }
        let track = |i: usize| a.nodes_missing_value_tracks_true.get(i).copied().unwrap_or(false);
        // Every branch's ordered form (one or two layout nodes).
        let forms: Vec<Vec<Cut<T>>> = (0..n).map(|i| ordered_form::<T>(a.nodes_modes[i], a.nodes_values[i], track(i))).collect();
        // Trees in the order of their first node, as onnxruntime sums them.
        let mut roots_attr = Vec::new();
        let mut seen_tree = HashSet::new();
        for i in 0..n {
            if seen_tree.insert(a.nodes_treeids[i]) {
                roots_attr.push(i);
            }
        }
        // Depth first, false child first: the false child is usually the next node. A
        // node already placed is not placed again, so a cycle cannot make this loop
        // forever; cycles are found below.
        let mut placed_order: Vec<usize> = Vec::with_capacity(n);
        let mut slot = vec![u32::MAX; n];
        let mut n_nodes = 0usize;
        let mut roots = Vec::with_capacity(roots_attr.len());
        let mut leaves_of_tree: Vec<Vec<usize>> = Vec::with_capacity(roots_attr.len());
        for &root in &roots_attr {
            let mut stack = vec![root];
            let mut leaves = Vec::new();
            while let Some(i) = stack.pop() {
                if slot[i] != u32::MAX {
                    continue;
                }
                slot[i] = n_nodes as u32;
                n_nodes += forms[i].len().max(1);
                placed_order.push(i);
                if a.nodes_modes[i] == Mode::Leaf {
                    leaves.push(i);
                } else {
                    stack.push(child(i, &a.nodes_truenodeids, "nodes_truenodeids")?);
                    stack.push(child(i, &a.nodes_falsenodeids, "nodes_falsenodeids")?);
                }
            }
            roots.push(slot[root]);
            leaves_of_tree.push(leaves);
        }
        if n_nodes >= u32::MAX as usize / 2 {
            return Err(format!("{op}: too many nodes ({n_nodes})"));
        }
        let aggregate = if a.is_classifier() { Aggregate::Sum } else { a.aggregate };
        let empty = Vec::new();
        let weights_of = |i: usize| leaf_weights.get(&i).unwrap_or(&empty);
        // The payload form: inline if every leaf has one weight and each tree one output,
        // dense if every leaf has one weight per output, else sparse.
        let mut tree_output = Vec::with_capacity(roots.len());
        let inline = leaves_of_tree.iter().all(|leaves| {
            let out = leaves.first().and_then(|&l| weights_of(l).first()).map(|w| w.0);
            tree_output.push(out.unwrap_or(0));
            leaves.iter().all(|&l| weights_of(l).len() == 1 && Some(weights_of(l)[0].0) == out)
        });
        let dense = !inline
            && leaves_of_tree.iter().flatten().all(|&l| {
                let w = weights_of(l);
                let mut outs: Vec<u32> = w.iter().map(|p| p.0).collect();
                outs.sort_unstable();
                outs.len() == n_outputs && outs.iter().enumerate().all(|(o, &p)| p as usize == o)
            });
        let mut payload = if inline {
            Payload::Inline { tree_output }
        } else if dense {
            Payload::Dense { values: Vec::new() }
        } else {
            Payload::Sparse { start: vec![0], weights: Vec::new() }
        };
        let always_seen = match &payload {
            // MIN/MAX fold on "has a score" per row: tracked, never preset.
            _ if matches!(aggregate, Aggregate::Min | Aggregate::Max) => None,
            Payload::Inline { tree_output } => {
                let mut seen = vec![false; n_outputs];
                for (t, leaves) in leaves_of_tree.iter().enumerate() {
                    if !leaves.is_empty() {
                        seen[tree_output[t] as usize] = true;
                    }
                }
                Some(seen)
            }
            Payload::Dense { .. } => Some(vec![true; n_outputs]),
            Payload::Sparse { .. } => None,
        };
        let mut nodes: Vec<Node<T>> = Vec::with_capacity(n_nodes);
        let mut is_leaf = Vec::with_capacity(n_nodes);
        for &i in &placed_order {
            let me = nodes.len() as u32;
            if a.nodes_modes[i] == Mode::Leaf {
                is_leaf.push(true);
                let w = weights_of(i);
                let node = match &mut payload {
                    Payload::Inline { .. } => Node { key: 0, threshold: T::from_f64(w[0].1), children: [me, me] },
                    Payload::Dense { values } => {
                        let leaf = (values.len() / n_outputs.max(1)) as u32;
                        let mut v = vec![T::ZERO; n_outputs];
                        for &(o, value) in w {
                            v[o as usize] = T::from_f64(value);
                        }
                        values.extend(v);
                        Node { key: 0, threshold: T::NAN, children: [me, leaf] }
                    }
                    Payload::Sparse { start, weights } => {
                        let leaf = (start.len() - 1) as u32;
                        weights.extend(w.iter().map(|&(o, value)| (o, T::from_f64(value))));
                        start.push(weights.len() as u32);
                        Node { key: 0, threshold: T::NAN, children: [me, leaf] }
                    }
                };
                nodes.push(node);
                continue;
            }
            let false_child = slot[child(i, &a.nodes_falsenodeids, "nodes_falsenodeids")?];
            let true_child = slot[child(i, &a.nodes_truenodeids, "nodes_truenodeids")?];
            let feature = a.nodes_featureids[i] as u32;
            for sub in &forms[i] {
                let me = nodes.len() as u32;
                let to = |t: To| match t {
                    To::True => true_child,
                    To::False => false_child,
                    To::Next => me + 1,
                };
                let key = if sub.nan_le { feature + n_features as u32 } else { feature };
                is_leaf.push(false);
                nodes.push(Node { key, threshold: sub.threshold, children: [to(sub.gt), to(sub.le)] });
            }
        }
        let nan_copy = forms.iter().flatten().any(|s| s.nan_le);
        // A cycle would make a walk loop forever: refuse it. Depth = most branches on a
        // path from the root.
        let mut depth: Vec<u32> = is_leaf.iter().map(|&l| if l { 0 } else { u32::MAX }).collect();
        let mut min_depth = depth.clone();
        let branch_children = |i: usize| -> [u32; 2] { nodes[i].children };
        let mut on_path = vec![false; nodes.len()];
        for &r in &roots {
            if is_leaf[r as usize] {
                continue;
            }
            let mut stack: Vec<(u32, u8)> = vec![(r, 0)];
            while let Some((i, state)) = stack.pop() {
                let iu = i as usize;
                if state == 0 {
                    if on_path[iu] {
                        return Err(format!("{op}: the trees contain a cycle"));
                    }
                    if depth[iu] != u32::MAX {
                        continue;
                    }
                    on_path[iu] = true;
                    stack.push((i, 1));
                    for c in branch_children(iu) {
                        if !is_leaf[c as usize] {
                            stack.push((c, 0));
                        }
                    }
                } else {
                    on_path[iu] = false;
                    let [f, t] = branch_children(iu);
                    depth[iu] = 1 + depth[f as usize].max(depth[t as usize]);
                    min_depth[iu] = 1 + min_depth[f as usize].min(min_depth[t as usize]);
                }
            }
        }
        let depths = roots.iter().map(|&r| depth[r as usize]).collect();
        let min_depths = roots.iter().map(|&r| min_depth[r as usize]).collect();
        let base_values: Vec<T> = a.base_values.iter().map(|&b| T::from_f64(b)).collect();
        let ok_base = base_values.is_empty() || base_values.len() == n_outputs || base_values.len() == 1 && (!a.is_classifier() || n_outputs == 2);
        if !ok_base {
            return Err(format!("{op}: base_values has {} values for {n_outputs} outputs", base_values.len()));
        }
        Ok(Ensemble {
            classifier: a.is_classifier(),
            n_outputs,
            n_features,
            nodes,
            roots,
            depths,
            min_depths,
            nan_copy,
            payload,
            always_seen,
            base_values,
            post_transform: a.post_transform,
            aggregate,
            binary_case: a.is_classifier() && n_outputs == 2 && classes.len() == 1,
            weights_are_all_positive,
            v5: a.v5,
        })
    }
}
