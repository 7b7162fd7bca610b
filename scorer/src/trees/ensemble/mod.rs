//! The flattened ensemble and its batched evaluation. See the module docs of
//! [`crate::trees`] for the layout.
//!
//! One concept per file, dependencies pointing one way:
//!
//! - `real`: the number type an ensemble compares and sums in;
//! - `layout`: the flat node array, the leaves' payload and the [`Ensemble`] that holds
//!   them;
//! - `build`: the ONNX attribute arrays turned into that layout (every branch rewritten
//!   into its one-comparison ordered form);
//! - `finalize`: base values, aggregation and post-transforms, onnxruntime's rules as
//!   they read;
//! - `eval`: the hand-tuned batched kernels (blocks, lanes in lockstep, unchecked loads);
//! - `reference` (tests only): the plain evaluator that walks the ONNX arrays node by
//!   node, the oracle the kernels are checked against.

mod build;
mod eval;
mod finalize;
mod layout;
mod real;
#[cfg(test)]
pub(crate) mod reference;
#[cfg(test)]
mod tests;

pub use eval::BLOCK;
pub use finalize::{logistic, probit};
pub use layout::{Ensemble, Label, Node};
pub use real::Real;
