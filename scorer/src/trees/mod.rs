//! weir's own ONNX-ML tree-ensemble operators, inside tract.
//!
//! tract-onnx ships a `TreeEnsembleClassifier` that scores correctly but is far too slow
//! to serve forests and boosted trees (the comparison with onnxruntime is in
//! `docs/performance.md`), refuses scikit-learn's binary gradient boosting
//! (one base value) and has no `TreeEnsembleRegressor` nor `TreeEnsemble`. [`onnx`]
//! returns tract's ONNX loader with weir's `TreeEnsembleClassifier`,
//! `TreeEnsembleRegressor` and `TreeEnsemble` (domain `ai.onnx.ml`) registered in place
//! of tract's: a model file is still loaded, typed, optimized and run by tract, and the
//! rest of its graph (casts, arithmetic, post-processing) stays tract's. Only the
//! ensemble node is weir's.
//!
//! # What is supported
//!
//! - `TreeEnsembleClassifier` / `TreeEnsembleRegressor`, ai.onnx.ml opsets 1 and 3,
//!   every attribute: all node modes (`BRANCH_LEQ/LT/GTE/GT/EQ/NEQ`, `LEAF`),
//!   `nodes_missing_value_tracks_true`, weights per class/target, `base_values` (also
//!   the binary one-value form), `post_transform` `NONE/LOGISTIC/SOFTMAX/SOFTMAX_ZERO/
//!   PROBIT`, the regressor's `aggregate_function` `SUM/AVERAGE/MIN/MAX`,
//!   `classlabels_int64s`/`classlabels_strings` (the label output is int64 or string),
//!   and the double `*_as_tensor` forms. Where the spec is vague (two-class ensembles:
//!   one or two base values, one-class weights, the label rule; one-target regressors
//!   apply only `PROBIT` and take one value per leaf, its first weight or 0), weir
//!   follows onnxruntime rule for rule, since exporters write
//!   their models for it and users compare against it.
//! - `TreeEnsemble`, ai.onnx.ml opset 5, every attribute (`BRANCH_MEMBER` with
//!   `membership_values` included), float or double input and output. It is rewritten
//!   into the flat form of the older ops, as onnxruntime does ([`attrs`]). Where
//!   onnxruntime 1.32 departs from the spec, weir follows the spec: `post_transform` 1 is
//!   SOFTMAX and 2 LOGISTIC (onnxruntime swaps them), and the post-transform applies to
//!   a one-target ensemble too (onnxruntime applies only PROBIT, its issue #26596).
//! - Input types: float (and int32/int64, compared as float) for the older ops, float
//!   for `TreeEnsemble`; double for all three. An ensemble compares and sums in the
//!   input's precision, as onnxruntime does: f32 for a float input (a double threshold
//!   rounded so that every float compares as it would against the double), f64 for a
//!   double input. The older ops' scores are float whatever the input; `TreeEnsemble`'s
//!   are of the input's type.
//!
//! Hit rates are read and ignored (inference does not use them). Any other attribute,
//! a malformed ensemble (dangling child, cycle, weight for a missing node or output,
//! membership sets that do not match the `BRANCH_MEMBER` nodes), or an input type
//! outside the above is refused at load with the op's and attribute's name.
//!
//! # Layout
//!
//! At load the ONNX node lists (parallel arrays keyed by tree id and node id) become
//! one array of nodes, every tree laid out depth first (false child first), each node
//! 16 bytes in f32 (four to a cache line), 24 in f64: `key: u32`, `threshold`,
//! `children: [u32; 2]`.
//!
//! - **One comparison per step.** Every branch is rewritten into `x[key] <= threshold`
//!   (`children: [greater, less-or-equal]`), so one step is: load the node, load the
//!   feature, compare, load the child; no mode dispatch, no branch the CPU could
//!   mispredict. LEQ/LT/GTE/GT become one such node (the threshold rounded down, or to
//!   the value below it for LT/GTE, children swapped for GTE/GT); EQ/NEQ become two
//!   (`prev(t) < x <= t`); a branch no value can take (a threshold the precision cannot
//!   hold, for EQ; a NaN threshold; LT -inf) becomes one node on +inf.
//! - **Missing values without a test.** NaN compares false, so it goes to the greater
//!   side. A node whose NaN must go to the other side (its missing-value track, or its
//!   mode, says so) has `key` = feature + `n_features`: it reads a copy of the row, made
//!   once per row and block, where NaN is -inf, which is less than or equal to every
//!   threshold. Ensembles that need no such node (scikit-learn's classic trees) read the
//!   input in place.
//! - **Leaves are nodes.** A leaf's step lands on itself (its key reads slot 0; both
//!   children it can take are itself), so rows walk a tree in lockstep for a fixed
//!   number of steps. Its weights are where the accumulation wants them: inline in the
//!   leaf's `threshold` when every leaf has one weight and each tree one output
//!   (regressors, gradient boosting: one tree per class), so a row adds the node it
//!   stands on and loads nothing else; contiguous per leaf when every leaf weighs every
//!   output (multi-class random forests); else a list per leaf.
//!
//! Evaluation goes block by block (64 rows): for each tree, the block's rows walk it
//! eight at a time in lockstep (eight independent load chains the CPU overlaps,
//! instead of one chain of dependent loads per row): every row first takes the steps of
//! the tree's shortest path, then the lanes step until none moves (all on leaves) or
//! the tree's depth is reached. Each row then adds its leaf's weights to its scores.
//! One tree's nodes stay in L1 while the block's rows go through it, and the block's
//! scores (64 × outputs) stay in L1 across trees; trees are summed in onnxruntime's
//! order, so float sums round the same. Below eight rows, a row walks eight trees in
//! lockstep instead. Scratch (scores, the NaN copy) is allocated once per call, never
//! per row. Then each row's scores get base values, aggregation and the post-transform.

pub mod attrs;
pub mod ensemble;
mod op;
#[cfg(test)]
mod proptests;

pub use attrs::{Aggregate, Kind, Labels, Mode, PostTransform, TreeAttrs};
pub use ensemble::{Ensemble, Label, Real};
pub use op::register;

/// tract's ONNX loader with weir's tree-ensemble ops registered.
pub fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    register(&mut onnx.op_register);
    onnx
}
