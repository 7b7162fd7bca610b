//! weir's own ONNX-ML tree-ensemble operators, inside tract.
//!
//! tract-onnx 0.23.9 ships a `TreeEnsembleClassifier` that scores correctly but is
//! 300–600× slower than onnxruntime, refuses scikit-learn's binary gradient boosting
//! (one base value) and has no `TreeEnsembleRegressor`. [`onnx`] returns tract's ONNX
//! loader with weir's `TreeEnsembleClassifier` and `TreeEnsembleRegressor` (domain
//! `ai.onnx.ml`) registered in place of tract's: a model file is still loaded, typed,
//! optimized and run by tract, and the rest of its graph (casts, arithmetic,
//! post-processing) stays tract's. Only the ensemble node is weir's.
//!
//! # What is supported
//!
//! Every attribute of both ops in ai.onnx.ml opsets 1 and 3: all node modes
//! (`BRANCH_LEQ/LT/GTE/GT/EQ/NEQ`, `LEAF`), `nodes_missing_value_tracks_true`, weights
//! per class/target, `base_values` (also the binary one-value form), `post_transform`
//! `NONE/LOGISTIC/SOFTMAX/SOFTMAX_ZERO/PROBIT`, the regressor's `aggregate_function`
//! `SUM/AVERAGE/MIN/MAX`, `classlabels_int64s`/`classlabels_strings` (the label output
//! is int64 or string), and the double `*_as_tensor` forms. Hit rates are read and
//! ignored (inference does not use them). Any other attribute, or a malformed ensemble
//! (dangling child, cycle, weight for a missing node or output), is refused at load with
//! the op's and attribute's name. Where the spec is vague (two-class ensembles: one or
//! two base values, one-class weights, the label rule; one-target regressors apply only
//! `PROBIT`), weir follows onnxruntime rule for rule, since exporters write their models
//! for it and users compare against it.
//!
//! # Layout
//!
//! At load the ONNX node lists (parallel arrays keyed by tree id and node id) become:
//!
//! - `nodes: Vec<Node>`: every node of every tree, 16 bytes each (four to a cache line) —
//!   `key` (feature index in the low 24 bits, a 4-bit truth table above it, a leaf bit),
//!   `threshold: f32` and `children: [false, true]`. Trees are laid out depth first with
//!   the false child first, so the false child is most often the next node. A leaf is a
//!   node whose children are itself and whose threshold bits hold the leaf's index: a
//!   step from a leaf is a no-op, so rows can walk a tree in lockstep.
//! - The truth table replaces the mode: comparing `x` with the threshold gives one of
//!   four outcomes (`x < t`, `x == t`, `x > t`, `x` NaN), computed without branches, and
//!   bit `outcome` of the table says whether the row goes to the true child. It encodes
//!   the mode, the missing-value track, and the exact meaning of a double threshold
//!   (rounded down or up to f32 per mode, so every f32 input compares as it would
//!   against the double). All modes then share one branch-free step.
//! - `leaf_start`/`weights`: leaf `i`'s (output, weight) pairs, contiguous.
//!
//! Evaluation goes block by block (64 rows): for each tree, the block's rows walk it
//! eight at a time in lockstep (eight independent load chains the CPU overlaps, instead
//! of one chain of dependent loads per row), until all eight stand on leaves; then each
//! row adds its leaf's weights to its scores. One tree's nodes stay in L1 while the
//! block's rows go through it, and the block's scores (64 × outputs floats) stay in L1
//! across trees. Scratch is allocated once per call, never per row. Then each
//! row's scores get base values, aggregation and the post-transform.

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
