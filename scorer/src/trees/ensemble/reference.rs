//! The plain evaluator, the oracle of the hand-tuned kernels: look nodes up by (tree,
//! id) in the ONNX attribute arrays, compare in f64, sum in `T`, then finalize as the
//! ensemble does. Test-only.

use std::collections::HashMap;

use super::layout::{Ensemble, Label};
use super::real::Real;
use crate::trees::attrs::{Aggregate, Mode, TreeAttrs};

/// The plain evaluator: look nodes up by (tree, id), compare in f64, sum in `T`.
pub(crate) fn reference<T: Real>(a: &TreeAttrs, e: &Ensemble<T>, x: &[T], z: &mut [T]) -> Option<Label> {
    let index: HashMap<(i64, i64), usize> =
        (0..a.nodes_treeids.len()).map(|i| ((a.nodes_treeids[i], a.nodes_nodeids[i]), i)).collect();
    let mut roots = Vec::new();
    for i in 0..a.nodes_treeids.len() {
        if !roots.iter().any(|&r: &usize| a.nodes_treeids[r] == a.nodes_treeids[i]) {
            roots.push(i);
        }
    }
    let k = a.n_outputs();
    let mut s = vec![T::ZERO; k];
    let mut h = vec![false; k];
    let aggregate = if a.is_classifier() { Aggregate::Sum } else { a.aggregate };
    for &root in &roots {
        let mut i = root;
        while a.nodes_modes[i] != Mode::Leaf {
            let v = x[a.nodes_featureids[i] as usize].to_f64();
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
        let mine = (0..a.leaf_ids.len()).filter(|&j| (a.leaf_treeids[j], a.leaf_nodeids[j]) == (a.nodes_treeids[i], a.nodes_nodeids[i]));
        if !a.is_classifier() && k == 1 {
            // onnxruntime's one-target rule: the leaf's first weight, or 0.
            let w = mine.map(|j| a.leaf_weights[j]).next().unwrap_or(0.0);
            fold(aggregate, &mut s, &mut h, 0, T::from_f64(w));
            continue;
        }
        for j in mine {
            fold(aggregate, &mut s, &mut h, a.leaf_ids[j] as usize, T::from_f64(a.leaf_weights[j]));
        }
    }
    if a.is_classifier() {
        Some(e.finalize_classifier(&mut s, &mut h, z))
    } else {
        e.finalize_regressor(&mut s, &mut h, z);
        None
    }
}

/// Adds (or, for MIN/MAX, folds) one weight into a row's scores, as the kernels do.
pub(crate) fn fold<T: Real>(aggregate: Aggregate, s: &mut [T], h: &mut [bool], o: usize, w: T) {
    match aggregate {
        Aggregate::Sum | Aggregate::Average => s[o] += w,
        Aggregate::Min => s[o] = if !h[o] || w < s[o] { w } else { s[o] },
        Aggregate::Max => s[o] = if !h[o] || w > s[o] { w } else { s[o] },
    }
    h[o] = true;
}
