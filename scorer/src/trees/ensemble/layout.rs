//! The flattened ensemble: one array of nodes (every tree depth first), the leaves'
//! weights in the form the accumulation wants, and what the finalization needs. See the
//! module docs of [`crate::trees`] for why it is laid out this way.

use super::real::Real;
use crate::trees::attrs::{Aggregate, PostTransform};

/// One node, 16 bytes for `f32` (four to a cache line), 24 for `f64`.
///
/// A branch sends a row to `children[1]` if `x[key] <= threshold`, else to
/// `children[0]`; `key` is the feature, or the feature + `n_features` to read the row's
/// copy where NaN is -inf (see `ordered_form`). A leaf is a node a step cannot
/// leave: its key reads slot 0 and both branches that can be taken lead to itself. Its
/// `threshold` holds its one weight when leaves are stored inline (`children` =
/// `[me, me]`), else it is NaN (so the step always takes `children[0]` = itself) and
/// `children[1]` holds the leaf's index into the `Payload`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Node<T> {
    pub(super) key: u32,
    pub(super) threshold: T,
    pub(super) children: [u32; 2],
}

/// Where the leaves' weights are.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Payload<T> {
    /// Every leaf has exactly one weight, in its `threshold`, and all leaves of tree `t`
    /// are for output `tree_output[t]` (regressors, gradient boosting: one tree per
    /// class): a row adds the leaf it reached, no other load.
    Inline { tree_output: Vec<u32> },
    /// Every leaf has one weight per output, in output order: leaf `i`'s are
    /// `values[i * k..(i + 1) * k]` (multi-class random forests).
    Dense { values: Vec<T> },
    /// Anything else: leaf `i`'s (output, weight) pairs are `weights[start[i]..start[i + 1]]`.
    Sparse { start: Vec<u32>, weights: Vec<(u32, T)> },
}

/// What a row's label is: an index into the class labels, or (onnxruntime's rule for
/// a two-class ensemble that is not single-class) the literal value 1 or 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Index(usize),
    Literal(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble<T> {
    pub classifier: bool,
    pub n_outputs: usize,
    /// Number of input columns the trees read (max feature id + 1).
    pub n_features: usize,
    pub(super) nodes: Vec<Node<T>>,
    /// Each tree's root node.
    pub(super) roots: Vec<u32>,
    /// Each tree's depth: the most steps any row takes to reach a leaf.
    pub(super) depths: Vec<u32>,
    /// Each tree's shortest path to a leaf: steps every row takes.
    pub(super) min_depths: Vec<u32>,
    /// Some node reads the row's NaN-as-minus-infinity copy.
    pub(super) nan_copy: bool,
    pub(super) payload: Payload<T>,
    /// For `Inline` and `Dense`: the outputs some leaf weighs, the same for every row
    /// (onnxruntime's "has a score" flags). `None`: tracked per row.
    pub(super) always_seen: Option<Vec<bool>>,
    pub(super) base_values: Vec<T>,
    pub(super) post_transform: PostTransform,
    pub(super) aggregate: Aggregate,
    /// onnxruntime's binary rules: two classes, all weights on one class.
    pub(super) binary_case: bool,
    pub(super) weights_are_all_positive: bool,
    /// A `TreeEnsemble`: the post-transform applies to one target too (see `finalize_regressor`).
    pub(super) v5: bool,
}

impl<T: Real> Ensemble<T> {
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// The layout chosen, for logs and tests: step form and payload form.
    pub fn layout(&self) -> String {
        let step = if self.nan_copy { "ordered+nan-copy" } else { "ordered" };
        let payload = match self.payload {
            Payload::Inline { .. } => "inline",
            Payload::Dense { .. } => "dense",
            Payload::Sparse { .. } => "sparse",
        };
        let (sum_max, sum_min) = (self.depths.iter().sum::<u32>(), self.min_depths.iter().sum::<u32>());
        let trees = self.roots.len().max(1) as f32;
        format!(
            "{step}/{payload}, {} nodes, depth mean {:.1} max {} (shortest path mean {:.1})",
            self.nodes.len(),
            sum_max as f32 / trees,
            self.depths.iter().max().unwrap_or(&0),
            sum_min as f32 / trees
        )
    }
}
