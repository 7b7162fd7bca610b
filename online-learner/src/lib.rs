//! # weir-online-learner
//!
//! Keeps weir's models learning from labels that arrive late. It will own (see the online
//! learning issue):
//!
//! - the delayed-label join: each `Label` (from the labels topic) joined to the feature
//!   vector that was actually scored for that event — the `features` field of the `Score`
//!   on the scores topic, which makes the join point-in-time correct by construction —
//!   with a bounded wait and bounded memory;
//! - incremental learners from linfa (`linfa-ftrl` first) with running feature scaling;
//! - prequential (test-then-train) evaluation of champion and challenger;
//! - promotion: export of a better challenger to ONNX and registration in the model
//!   registry (`weir_schemas::model`), with lineage, for the scorer to hot-swap.
//!
//! Nothing here yet: the walking skeleton produces what the learner will consume (labels
//! on their own topic, scores carrying their feature vectors).

/// The subjects the learner will read, named here so the dependency on `schemas` is real.
pub const INPUT_SUBJECTS: [&str; 2] = [weir_schemas::wire::subjects::LABEL, weir_schemas::wire::subjects::SCORE];
