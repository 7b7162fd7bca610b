//! The flattened ensemble and its batched evaluation. See the module docs of
//! [`crate::trees`] for the layout.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

use super::attrs::{Aggregate, Mode, PostTransform, TreeAttrs};

/// Rows (or, below that many rows, trees) walked in lockstep: independent load chains
/// the CPU overlaps.
const LANES: usize = 8;
/// Features are < 2^24 (and a node's key is a feature or feature + n_features).
const FEATURE_LIMIT: i64 = 1 << 24;
/// Rows evaluated together, tree by tree: the block's scores stay in L1.
pub const BLOCK: usize = 64;

/// The number type an ensemble compares and sums in: `f32` for float (and integer)
/// inputs, `f64` for double inputs, as onnxruntime does (its threshold type).
pub trait Real:
    Copy
    + Default
    + PartialEq
    + PartialOrd
    + Debug
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const NAN: Self;
    const NEG_INFINITY: Self;
    const INFINITY: Self;
    const MAX: Self;
    /// Nearest value.
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    fn to_f32(self) -> f32;
    /// Largest value <= `t` (`t` not NaN).
    fn down(t: f64) -> Self;
    /// Smallest value >= `t` (`t` not NaN).
    fn up(t: f64) -> Self;
    fn is_nan(self) -> bool;
    fn next_down(self) -> Self;
    fn exp(self) -> Self;
    fn abs(self) -> Self;
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NAN: f32 = f32::NAN;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
    const INFINITY: f32 = f32::INFINITY;
    const MAX: f32 = f32::MAX;
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn down(t: f64) -> f32 {
        let f = t as f32;
        if f64::from(f) > t { f.next_down() } else { f }
    }
    fn up(t: f64) -> f32 {
        let f = t as f32;
        if f64::from(f) < t { f.next_up() } else { f }
    }
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    fn next_down(self) -> f32 {
        self.next_down()
    }
    fn exp(self) -> f32 {
        self.exp()
    }
    fn abs(self) -> f32 {
        self.abs()
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NAN: f64 = f64::NAN;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
    const INFINITY: f64 = f64::INFINITY;
    const MAX: f64 = f64::MAX;
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn down(t: f64) -> f64 {
        t
    }
    fn up(t: f64) -> f64 {
        t
    }
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    fn next_down(self) -> f64 {
        self.next_down()
    }
    fn exp(self) -> f64 {
        self.exp()
    }
    fn abs(self) -> f64 {
        self.abs()
    }
}

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
    key: u32,
    threshold: T,
    children: [u32; 2],
}

/// Where one `x <= threshold` node of a branch's ordered form sends a row: the branch's
/// true or false child, or the next node of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    True,
    False,
    Next,
}

/// One node of a branch's ordered form: `x <= threshold` goes to `le`, else to `gt`;
/// NaN (which compares false) goes to `gt`, unless `nan_le`: then the node reads the
/// row's copy where NaN is -inf, which is <= every threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cut<T> {
    threshold: T,
    le: To,
    gt: To,
    nan_le: bool,
}

/// Where the leaves' weights are.
#[derive(Debug, Clone, PartialEq)]
enum Payload<T> {
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
    nodes: Vec<Node<T>>,
    /// Each tree's root node.
    roots: Vec<u32>,
    /// Each tree's depth: the most steps any row takes to reach a leaf.
    depths: Vec<u32>,
    /// Each tree's shortest path to a leaf: steps every row takes.
    min_depths: Vec<u32>,
    /// Some node reads the row's NaN-as-minus-infinity copy.
    nan_copy: bool,
    payload: Payload<T>,
    /// For `Inline` and `Dense`: the outputs some leaf weighs, the same for every row
    /// (onnxruntime's "has a score" flags). `None`: tracked per row.
    always_seen: Option<Vec<bool>>,
    base_values: Vec<T>,
    post_transform: PostTransform,
    aggregate: Aggregate,
    /// onnxruntime's binary rules: two classes, all weights on one class.
    binary_case: bool,
    weights_are_all_positive: bool,
    /// A `TreeEnsemble`: the post-transform applies to one target too (see `finalize_regressor`).
    v5: bool,
}

/// The ordered form of a branch: one or two `x <= threshold` nodes that decide, for
/// every `x` of type `T`, NaN included, exactly what onnxruntime's
/// `x MODE t || (track && isnan(x))` decides with `t` in f64. LEQ/LT/GTE/GT are one node
/// (a threshold rounded to `T` the right way, children swapped for GTE/GT); EQ and NEQ
/// are two (`prev(t) < x <= t`); a branch no `x` can take (a threshold `T` cannot hold
/// for EQ, a NaN threshold, LT -inf) is one node on +inf, which every non-NaN `x` passes.
fn ordered_form<T: Real>(mode: Mode, t: f64, track: bool) -> Vec<Cut<T>> {
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

    /// Scores `n` rows of `x` (row-major, `cols >= n_features` columns): writes
    /// `n × n_outputs` values to `z` and, for a classifier, one label per row.
    pub fn eval(&self, x: &[T], cols: usize, z: &mut [T], labels: &mut [Label]) -> Result<(), String> {
        if cols < self.n_features {
            return Err(format!("the trees read feature {} but the input has {cols} columns", self.n_features - 1));
        }
        let n = x.len().checked_div(cols).unwrap_or(0);
        let k = self.n_outputs;
        if z.len() < n * k || (self.classifier && labels.len() < n) {
            return Err(format!("output buffers too small for {n} rows"));
        }
        let block_rows = BLOCK.min(n.max(1));
        let mut scores = vec![T::ZERO; block_rows * k];
        let mut seen = vec![false; block_rows * k];
        let nan_copy = self.nan_copy;
        let nf = self.n_features;
        // Rows with a NaN-as-minus-infinity copy after them, when some node reads it.
        let mut copy = if nan_copy { vec![T::ZERO; block_rows * 2 * nf] } else { Vec::new() };
        let mut start = 0;
        while start < n {
            let rows = (n - start).min(BLOCK);
            scores[..rows * k].fill(T::ZERO);
            if let Some(always) = &self.always_seen {
                for r in 0..rows {
                    seen[r * k..(r + 1) * k].copy_from_slice(always);
                }
            } else {
                seen[..rows * k].fill(false);
            }
            let (block, stride) = if nan_copy {
                for r in 0..rows {
                    let src = &x[(start + r) * cols..(start + r) * cols + nf];
                    let dst = &mut copy[r * 2 * nf..(r + 1) * 2 * nf];
                    dst[..nf].copy_from_slice(src);
                    for (d, &v) in dst[nf..].iter_mut().zip(src) {
                        *d = if v.is_nan() { T::NEG_INFINITY } else { v };
                    }
                }
                (&copy[..rows * 2 * nf], 2 * nf)
            } else {
                (&x[start * cols..(start + rows) * cols], cols)
            };
            self.block(block, stride, rows, &mut scores, &mut seen);
            for r in 0..rows {
                let s = &mut scores[r * k..(r + 1) * k];
                let h = &mut seen[r * k..(r + 1) * k];
                let out = &mut z[(start + r) * k..(start + r + 1) * k];
                if self.classifier {
                    labels[start + r] = self.finalize_classifier(s, h, out);
                } else {
                    self.finalize_regressor(s, h, out);
                }
            }
            start += rows;
        }
        Ok(())
    }

    /// One block's scores, tree by tree in onnxruntime's order.
    fn block(&self, block: &[T], stride: usize, rows: usize, scores: &mut [T], seen: &mut [bool]) {
        let k = self.n_outputs;
        if rows < LANES {
            // Too few rows to fill the lanes: each row walks LANES trees in lockstep
            // instead (weights still added in tree order).
            for r in 0..rows {
                let x = &block[r * stride..];
                let s = &mut scores[r * k..(r + 1) * k];
                let h = &mut seen[r * k..(r + 1) * k];
                let mut t = 0;
                while t < self.roots.len() {
                    let count = (self.roots.len() - t).min(LANES);
                    let found = self.walk_trees(t, count, x);
                    for (i, &leaf) in found[..count].iter().enumerate() {
                        self.add_leaf(t + i, leaf, s, h);
                    }
                    t += count;
                }
            }
            return;
        }
        match (&self.payload, self.aggregate) {
            (Payload::Inline { tree_output }, Aggregate::Sum | Aggregate::Average) => {
                for (t, &o) in tree_output.iter().enumerate() {
                    self.walk_rows(t, block, stride, rows, |r, leaf| {
                        // SAFETY: r < rows, o < k (checked at build), leaf is a node index.
                        unsafe { *scores.get_unchecked_mut(r * k + o as usize) += self.node(leaf).threshold }
                    });
                }
            }
            (Payload::Dense { values }, Aggregate::Sum | Aggregate::Average) => {
                for t in 0..self.roots.len() {
                    self.walk_rows(t, block, stride, rows, |r, leaf| {
                        let i = self.node(leaf).children[1] as usize;
                        let (s, v) = (&mut scores[r * k..(r + 1) * k], &values[i * k..(i + 1) * k]);
                        for (s, &v) in s.iter_mut().zip(v) {
                            *s += v;
                        }
                    });
                }
            }
            (Payload::Sparse { start, weights }, Aggregate::Sum | Aggregate::Average) => {
                for t in 0..self.roots.len() {
                    self.walk_rows(t, block, stride, rows, |r, leaf| {
                        let i = self.node(leaf).children[1] as usize;
                        for &(o, w) in &weights[start[i] as usize..start[i + 1] as usize] {
                            let at = r * k + o as usize;
                            scores[at] += w;
                            seen[at] = true;
                        }
                    });
                }
            }
            _ => {
                for t in 0..self.roots.len() {
                    self.walk_rows(t, block, stride, rows, |r, leaf| {
                        self.add_leaf(t, leaf, &mut scores[r * k..(r + 1) * k], &mut seen[r * k..(r + 1) * k]);
                    });
                }
            }
        }
    }

    #[inline(always)]
    fn node(&self, i: u32) -> &Node<T> {
        // SAFETY: node indices come from `build`, which only writes indices of pushed nodes.
        unsafe { self.nodes.get_unchecked(i as usize) }
    }

    /// Walks the rows of a block through tree `t`, `LANES` rows in lockstep, and gives
    /// each row's leaf to `leaf(row, node)`. A last group of fewer rows fills its spare
    /// lanes with its last row (walked, not reported): overlapped walks beat one
    /// dependent chain per row.
    #[inline(always)]
    fn walk_rows(&self, t: usize, block: &[T], stride: usize, rows: usize, mut leaf: impl FnMut(usize, u32)) {
        let root = self.roots[t];
        let (depth, sure) = (self.depths[t], self.min_depths[t]);
        let nodes = self.nodes.as_ptr();
        let mut r = 0;
        while r < rows {
            let x: [*const T; LANES] = std::array::from_fn(|g| block[(r + g).min(rows - 1) * stride..].as_ptr());
            let mut idx = [root; LANES];
            // Every row takes the shortest path's steps; past them, stop as soon as no
            // lane moves (all stand on leaves: a branch never steps to itself).
            for _ in 0..sure {
                for g in 0..LANES {
                    // SAFETY: the block holds `rows` rows of `stride >= n_features` (or
                    // 2 × n_features for the NaN copy) slots; keys index inside a row.
                    idx[g] = unsafe { step(nodes, idx[g], x[g]) };
                }
            }
            for _ in sure..depth {
                let mut moved = 0;
                for g in 0..LANES {
                    // SAFETY: as above.
                    let next = unsafe { step(nodes, idx[g], x[g]) };
                    moved |= next ^ idx[g];
                    idx[g] = next;
                }
                if moved == 0 {
                    break;
                }
            }
            for (g, &i) in idx.iter().enumerate().take(rows - r) {
                leaf(r + g, i);
            }
            r += LANES;
        }
    }

    /// The leaves one row `x` reaches in trees `first..first + count` (count <= LANES),
    /// walked in lockstep.
    #[inline(always)]
    fn walk_trees(&self, first: usize, count: usize, x: &[T]) -> [u32; LANES] {
        let mut idx = [self.roots[first]; LANES];
        idx[..count].copy_from_slice(&self.roots[first..first + count]);
        let depth = self.depths[first..first + count].iter().copied().max().unwrap_or(0);
        let sure = self.min_depths[first..first + count].iter().copied().min().unwrap_or(0);
        let nodes = self.nodes.as_ptr();
        let x = x.as_ptr();
        for _ in 0..sure {
            for i in idx.iter_mut() {
                // SAFETY: as in `walk_rows`.
                *i = unsafe { step(nodes, *i, x) };
            }
        }
        for _ in sure..depth {
            let mut moved = 0;
            for i in idx.iter_mut() {
                // SAFETY: as in `walk_rows`.
                let next = unsafe { step(nodes, *i, x) };
                moved |= next ^ *i;
                *i = next;
            }
            if moved == 0 {
                break;
            }
        }
        idx
    }

    /// Adds (or, for MIN/MAX, folds) the weights of tree `t`'s leaf `leaf` into one
    /// row's scores.
    #[inline(always)]
    fn add_leaf(&self, t: usize, leaf: u32, s: &mut [T], h: &mut [bool]) {
        let node = self.node(leaf);
        let mut fold = |o: usize, w: T| {
            match self.aggregate {
                Aggregate::Sum | Aggregate::Average => s[o] += w,
                Aggregate::Min => s[o] = if !h[o] || w < s[o] { w } else { s[o] },
                Aggregate::Max => s[o] = if !h[o] || w > s[o] { w } else { s[o] },
            }
            h[o] = true;
        };
        match &self.payload {
            Payload::Inline { tree_output } => fold(tree_output[t] as usize, node.threshold),
            Payload::Dense { values } => {
                let i = node.children[1] as usize;
                let k = self.n_outputs;
                for (o, &w) in values[i * k..(i + 1) * k].iter().enumerate() {
                    fold(o, w);
                }
            }
            Payload::Sparse { start, weights } => {
                let i = node.children[1] as usize;
                for &(o, w) in &weights[start[i] as usize..start[i + 1] as usize] {
                    fold(o as usize, w);
                }
            }
        }
    }

    /// onnxruntime's `TreeAggregatorClassifier::FinalizeScores`, rule for rule: the ONNX
    /// spec leaves two-class ensembles vague, and the exporters write their models for
    /// these rules.
    pub(crate) fn finalize_classifier(&self, s: &mut [T], h: &mut [bool], z: &mut [T]) -> Label {
        let base = &self.base_values;
        if s.len() > 2 {
            for (kk, &b) in base.iter().enumerate() {
                if h[kk] {
                    s[kk] += b;
                } else {
                    h[kk] = true;
                    s[kk] = b;
                }
            }
            let mut best: Option<usize> = None;
            for kk in 0..s.len() {
                if h[kk] && best.is_none_or(|b| s[kk] > s[b]) {
                    best = Some(kk);
                }
            }
            write_scores(s, self.post_transform, z, -1);
            return Label::Index(best.unwrap_or(0));
        }
        let mut size = 2;
        let mut add = -1;
        match base.len() {
            2 => {
                if h[1] {
                    // onnxruntime: base_values[0] unused, class 1 = base[1] + class 0.
                    s[1] = base[1] + s[0];
                    s[0] = -s[1];
                } else {
                    s[1] += base[1];
                    s[0] += base[0];
                }
            }
            1 => {
                s[0] += base[0];
                if !h[1] {
                    size = 1;
                }
            }
            _ => {
                add = 3;
                if !h[1] {
                    size = 1;
                }
            }
        }
        let pos = if size == 2 && h[1] {
            s[1]
        } else if h[0] {
            s[0]
        } else {
            T::ZERO
        };
        let label = if self.binary_case {
            if self.weights_are_all_positive {
                if pos > T::from_f64(0.5) {
                    add = 0;
                    Label::Index(1)
                } else {
                    add = 1;
                    Label::Index(0)
                }
            } else if pos > T::ZERO {
                add = 2;
                Label::Index(1)
            } else {
                add = 3;
                Label::Index(0)
            }
        } else {
            Label::Literal(i64::from(pos > T::ZERO))
        };
        write_scores(&mut s[..size], self.post_transform, z, add);
        label
    }

    /// onnxruntime's regressor aggregators (`FinalizeScores1` for one target, which
    /// applies only PROBIT, and `FinalizeScores` for several). A `TreeEnsemble` applies
    /// its post-transform to one target too, as the spec says (onnxruntime 1.32 does not:
    /// its issue #26596).
    pub(crate) fn finalize_regressor(&self, s: &mut [T], h: &mut [bool], z: &mut [T]) {
        let n_trees = T::from_f64(self.roots.len() as f64);
        let base = &self.base_values;
        if s.len() == 1 {
            let origin = if base.len() == 1 { base[0] } else { T::ZERO };
            let v = match self.aggregate {
                Aggregate::Sum => s[0] + origin,
                Aggregate::Average => s[0] / n_trees + origin,
                Aggregate::Min | Aggregate::Max => {
                    if h[0] {
                        s[0] + origin
                    } else {
                        origin
                    }
                }
            };
            z[0] = match self.post_transform {
                PostTransform::Probit => probit(v),
                _ if !self.v5 => v,
                PostTransform::None => v,
                PostTransform::Logistic => logistic(v),
                PostTransform::Softmax | PostTransform::SoftmaxZero => {
                    let mut one = [v];
                    if self.post_transform == PostTransform::Softmax { softmax(&mut one) } else { softmax_zero(&mut one) }
                    one[0]
                }
            };
            return;
        }
        let use_base = base.len() == s.len();
        for kk in 0..s.len() {
            let b = if use_base { base[kk] } else { T::ZERO };
            s[kk] = match self.aggregate {
                Aggregate::Sum => s[kk] + b,
                Aggregate::Average => s[kk] / n_trees + b,
                Aggregate::Min | Aggregate::Max => b + if h[kk] { s[kk] } else { T::ZERO },
            };
        }
        write_scores(s, self.post_transform, z, -1);
    }
}

/// One step down a tree (a leaf steps to itself).
///
/// # Safety
/// `i` is a node index of `nodes`, and `x` has a slot at every key of the ensemble.
#[inline(always)]
unsafe fn step<T: Real>(nodes: *const Node<T>, i: u32, x: *const T) -> u32 {
    // SAFETY: the caller's contract.
    unsafe {
        let node = &*nodes.add(i as usize);
        let v = *x.add(node.key as usize);
        node.children[usize::from(v <= node.threshold)]
    }
}

/// onnxruntime's `ComputeLogistic`.
pub fn logistic<T: Real>(v: T) -> T {
    let e = T::ONE / (T::ONE + (-v.abs()).exp());
    if v < T::ZERO { T::ONE - e } else { e }
}

/// onnxruntime's `ComputeProbit` (in float): sqrt(2) × its closed-form approximation
/// of erf⁻¹.
pub fn probit<T: Real>(v: T) -> T {
    let v = v.to_f32();
    let x = 2.0 * v - 1.0;
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let a = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let b = 1.0 / 0.147f32 * log;
    let c = -a + (a * a - b).sqrt();
    T::from_f64(f64::from(std::f32::consts::SQRT_2 * (sgn * c.sqrt())))
}

fn softmax<T: Real>(s: &mut [T]) {
    let max = s.iter().fold(-T::MAX, |m, &v| if v > m { v } else { m });
    let mut sum = T::ZERO;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        *v = *v / sum;
    }
}

/// Softmax that leaves (near-)zero scores at zero weight.
fn softmax_zero<T: Real>(s: &mut [T]) {
    let max = s.iter().fold(-T::MAX, |m, &v| if v > m { v } else { m });
    let exp_neg_max = (-max).exp();
    let eps = T::from_f64(0.000_000_1);
    let mut sum = T::ZERO;
    for v in s.iter_mut() {
        if *v > eps || *v < -eps {
            *v = (*v - max).exp();
            sum += *v;
        } else {
            *v = *v * exp_neg_max;
        }
    }
    for v in s.iter_mut() {
        *v = *v / sum;
    }
}

/// onnxruntime's `write_scores`: the post-transform, and the second column of a
/// one-score binary ensemble (`add` says how it is made).
fn write_scores<T: Real>(s: &mut [T], post: PostTransform, z: &mut [T], add: i32) {
    if s.len() >= 2 {
        match post {
            PostTransform::Probit => s.iter_mut().for_each(|v| *v = probit(*v)),
            PostTransform::Logistic => s.iter_mut().for_each(|v| *v = logistic(*v)),
            PostTransform::Softmax => softmax(s),
            PostTransform::SoftmaxZero => softmax_zero(s),
            PostTransform::None => {}
        }
        z[..s.len()].copy_from_slice(s);
        return;
    }
    let v = s[0];
    if post == PostTransform::Probit {
        z[0] = probit(v);
        if z.len() > 1 {
            z[1] = T::ZERO;
        }
        return;
    }
    match add {
        0 | 1 => {
            z[0] = T::ONE - v;
            z[1] = v;
        }
        2 | 3 if post == PostTransform::Logistic => {
            z[0] = logistic(-v);
            z[1] = logistic(v);
        }
        2 | 3 => {
            z[0] = -v;
            z[1] = v;
        }
        _ => {
            z[0] = v;
            if z.len() > 1 {
                z[1] = T::ZERO;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a branch's ordered form for one `x`: true if it reaches the true child.
    fn decide<T: Real>(form: &[Cut<T>], x: T) -> bool {
        let mut i = 0;
        loop {
            let s = &form[i];
            let v = if x.is_nan() && s.nan_le { T::NEG_INFINITY } else { x };
            match if v <= s.threshold { s.le } else { s.gt } {
                To::True => return true,
                To::False => return false,
                To::Next => i += 1,
            }
        }
    }

    /// onnxruntime's rule, `x MODE t || (track && isnan(x))`, in f64.
    fn rule(mode: Mode, x: f64, t: f64, track: bool) -> bool {
        let cmp = match mode {
            Mode::Leq => x <= t,
            Mode::Lt => x < t,
            Mode::Gte => x >= t,
            Mode::Gt => x > t,
            Mode::Eq => x == t,
            Mode::Neq => x != t,
            Mode::Leaf => unreachable!(),
        };
        cmp || (track && x.is_nan())
    }

    const MODES: [Mode; 6] = [Mode::Leq, Mode::Lt, Mode::Gte, Mode::Gt, Mode::Eq, Mode::Neq];

    #[test]
    fn ordered_forms_decide_every_f32_as_the_rule_does_in_f64() {
        for t in [0.1f64, 1.0, -2.5, 0.0, 1e40, -1e40, f64::from(f32::MAX), f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            let near = |f: f32| [f.next_down().next_down(), f.next_down(), f, f.next_up(), f.next_up().next_up()];
            let mut xs: Vec<f32> = if t.is_nan() { vec![] } else { near(t as f32).to_vec() };
            xs.extend([f32::MAX, -f32::MAX, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1.0, f32::NAN]);
            for x in xs {
                for mode in MODES {
                    for track in [false, true] {
                        let form = ordered_form::<f32>(mode, t, track);
                        assert!(!form.is_empty() && form.len() <= 2);
                        let want = rule(mode, f64::from(x), t, track);
                        assert_eq!(decide(&form, x), want, "{mode:?} track {track}: {x} vs {t}");
                    }
                }
            }
        }
    }

    #[test]
    fn ordered_forms_decide_every_f64_as_the_rule_does() {
        for t in [0.1f64, 1.0, -2.5, 0.0, 1e300, f64::MAX, f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            let near = |f: f64| [f.next_down().next_down(), f.next_down(), f, f.next_up(), f.next_up().next_up()];
            let mut xs: Vec<f64> = if t.is_nan() { vec![] } else { near(t).to_vec() };
            xs.extend([f64::MAX, -f64::MAX, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, f64::NAN]);
            for x in xs {
                for mode in MODES {
                    for track in [false, true] {
                        let form = ordered_form::<f64>(mode, t, track);
                        assert_eq!(decide(&form, x), rule(mode, x, t, track), "{mode:?} track {track}: {x} vs {t}");
                    }
                }
            }
        }
    }

    #[test]
    fn logistic_and_probit() {
        assert!((logistic(0.0f32) - 0.5).abs() < 1e-7);
        assert!((logistic(2.0f32) + logistic(-2.0f32) - 1.0).abs() < 1e-7);
        // onnxruntime's probit approximation: within 2e-3 of the true quantile.
        assert!(probit(0.5f32).abs() < 1e-6);
        assert!((probit(0.975f32) - 1.959_964).abs() < 2e-3, "{}", probit(0.975f32));
    }
}
