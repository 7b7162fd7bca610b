//! The flattened ensemble and its batched evaluation. See the module docs of
//! [`crate::trees`] for the layout.

use super::attrs::{Aggregate, Kind, Mode, PostTransform, TreeAttrs};

/// Set in the `key` of a leaf: leaves are nodes too (both children point to the leaf
/// itself, the threshold's bits hold the leaf index), so a walk can take a fixed number
/// of steps without a branch per row, and rows can walk a tree in lockstep.
const LEAF: u32 = 1 << 31;
/// Rows walked through a tree in lockstep: independent load chains the CPU overlaps.
const LANES: usize = 8;
const FEATURE_BITS: u32 = 24;
const FEATURE_MASK: u32 = (1 << FEATURE_BITS) - 1;
/// Rows evaluated together, tree by tree: scores of a block stay in L1.
pub const BLOCK: usize = 64;

/// Outcome of comparing `x` with a node's threshold: 0 `x < t`, 1 `x == t`, 2 `x > t`,
/// 3 `x` is NaN. A node's 4-bit truth table (bits 24..28 of `key`) says which outcomes
/// take the true branch; it encodes the mode, the missing-value track and the exact
/// rounding of a double threshold in one place.
const LT: u32 = 1;
const EQ: u32 = 2;
const GT: u32 = 4;
const NAN: u32 = 8;

/// One branch node: 16 bytes, four to a cache line.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct Node {
    /// Feature index (low 24 bits), truth table (bits 24..28), [`LEAF`] (bit 31).
    key: u32,
    threshold: f32,
    /// `[false child, true child]`.
    children: [u32; 2],
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weight {
    pub output: u32,
    pub value: f32,
}

/// What a row's label is: an index into the class labels, or (onnxruntime's rule for
/// a two-class ensemble that is not single-class) the literal value 1 or 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Index(usize),
    Literal(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    pub classifier: bool,
    pub n_outputs: usize,
    /// Number of input columns the trees read (max feature id + 1).
    pub n_features: usize,
    nodes: Vec<Node>,
    /// Each tree's root node.
    roots: Vec<u32>,
    /// Each tree's depth: the most steps any row takes to reach a leaf.
    depths: Vec<u32>,
    /// Leaf `i`'s weights are `weights[leaf_start[i]..leaf_start[i + 1]]`.
    leaf_start: Vec<u32>,
    weights: Vec<Weight>,
    base_values: Vec<f32>,
    post_transform: PostTransform,
    aggregate: Aggregate,
    /// onnxruntime's binary rules: two classes, all weights on one class.
    binary_case: bool,
    weights_are_all_positive: bool,
}

/// Largest f32 <= t.
fn round_down(t: f64) -> f32 {
    let f = t as f32;
    if f64::from(f) > t { f.next_down() } else { f }
}

/// Smallest f32 >= t.
fn round_up(t: f64) -> f32 {
    let f = t as f32;
    if f64::from(f) < t { f.next_up() } else { f }
}

/// The f32 threshold and truth table that decide, for every f32 `x`, exactly what
/// `x MODE t` (t in f64) || (track && x is NaN) decides.
fn truth_table(mode: Mode, t: f64, track: bool) -> (f32, u32) {
    let nan = if track { NAN } else { 0 };
    if t.is_nan() {
        // Every comparison with NaN is false (outcome 0 for any non-NaN x) except !=.
        return (f32::NAN, if mode == Mode::Neq { LT | NAN } else { nan });
    }
    match mode {
        Mode::Leq => (round_down(t), LT | EQ | nan),
        Mode::Lt => (round_up(t), LT | nan),
        Mode::Gte => (round_up(t), EQ | GT | nan),
        Mode::Gt => (round_down(t), GT | nan),
        Mode::Eq | Mode::Neq => {
            let f = t as f32;
            let exact = f64::from(f) == t;
            let eq = if exact { EQ } else { 0 };
            if mode == Mode::Eq { (f, eq | nan) } else { (f, (LT | EQ | GT | NAN) & !eq) }
        }
        Mode::Leaf => (0.0, 0),
    }
}

impl Ensemble {
    pub fn build(a: &TreeAttrs) -> Result<Ensemble, String> {
        let op = a.op_name();
        let n_outputs = a.n_outputs();
        let n = a.nodes_treeids.len();
        if n == 0 {
            return Err(format!("{op}: nodes_treeids: no nodes"));
        }
        let mut index = std::collections::HashMap::with_capacity(n);
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
            if !(0..i64::from(FEATURE_MASK)).contains(&f) {
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
        let mut leaf_weights: std::collections::HashMap<usize, Vec<Weight>> = Default::default();
        let mut classes = std::collections::BTreeSet::new();
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
                leaf_weights.entry(node).or_default().push(Weight { output: out as u32, value: a.leaf_weights[j] as f32 });
            }
        }
        // Trees in the order of their first node, as onnxruntime sums them.
        let mut roots_attr = Vec::new();
        let mut seen_tree = std::collections::HashSet::new();
        for i in 0..n {
            if seen_tree.insert(a.nodes_treeids[i]) {
                roots_attr.push(i);
            }
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(n);
        let mut leaf_start = vec![0u32];
        let mut weights = Vec::new();
        let mut slot = vec![u32::MAX; n];
        let mut is_leaf: Vec<bool> = Vec::with_capacity(n);
        let mut roots = Vec::with_capacity(roots_attr.len());
        for &root in &roots_attr {
            // Depth first, false child first: the false child is usually the next node.
            // A node already placed is not placed again, so a cycle cannot make this loop
            // forever; cycles are found below.
            let mut stack = vec![root];
            let mut placed = Vec::new();
            while let Some(i) = stack.pop() {
                if slot[i] != u32::MAX {
                    continue;
                }
                if a.nodes_modes[i] == Mode::Leaf {
                    let leaf = (leaf_start.len() - 1) as u32;
                    weights.extend(leaf_weights.remove(&i).unwrap_or_default());
                    leaf_start.push(weights.len() as u32);
                    let me = nodes.len() as u32;
                    nodes.push(Node { key: LEAF, threshold: f32::from_bits(leaf), children: [me, me] });
                    is_leaf.push(true);
                    slot[i] = me;
                } else {
                    slot[i] = nodes.len() as u32;
                    let track = a.nodes_missing_value_tracks_true.get(i).copied().unwrap_or(false);
                    let (threshold, table) = truth_table(a.nodes_modes[i], a.nodes_values[i], track);
                    nodes.push(Node { key: a.nodes_featureids[i] as u32 | (table << FEATURE_BITS), threshold, children: [0, 0] });
                    is_leaf.push(false);
                    placed.push(i);
                    stack.push(child(i, &a.nodes_truenodeids, "nodes_truenodeids")?);
                    stack.push(child(i, &a.nodes_falsenodeids, "nodes_falsenodeids")?);
                }
            }
            for i in placed {
                let f = slot[child(i, &a.nodes_falsenodeids, "nodes_falsenodeids")?];
                let t = slot[child(i, &a.nodes_truenodeids, "nodes_truenodeids")?];
                nodes[slot[i] as usize].children = [f, t];
            }
            roots.push(slot[root]);
        }
        // A cycle would make evaluation loop forever: refuse it. Every path from a root
        // has at most `nodes.len()` branch nodes if there is none.
        if nodes.len() >= FEATURE_MASK as usize {
            return Err(format!("{op}: too many nodes ({})", nodes.len()));
        }
        let mut depth: Vec<u32> = is_leaf.iter().map(|&l| if l { 0 } else { u32::MAX }).collect();
        for &r in &roots {
            if is_leaf[r as usize] {
                continue;
            }
            // Iterative DFS with an on-path marker.
            let mut on_path = vec![false; nodes.len()];
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
                    for c in nodes[iu].children {
                        if !is_leaf[c as usize] {
                            stack.push((c, 0));
                        }
                    }
                } else {
                    on_path[iu] = false;
                    let [f, t] = nodes[iu].children;
                    depth[iu] = 1 + depth[f as usize].max(depth[t as usize]);
                }
            }
        }
        let base_values: Vec<f32> = a.base_values.iter().map(|&b| b as f32).collect();
        let ok_base = base_values.is_empty() || base_values.len() == n_outputs || base_values.len() == 1 && (!a.is_classifier() || n_outputs == 2);
        if !ok_base {
            return Err(format!("{op}: base_values has {} values for {n_outputs} outputs", base_values.len()));
        }
        Ok(Ensemble {
            classifier: a.is_classifier(),
            n_outputs,
            n_features,
            nodes,
            depths: roots.iter().map(|&r| depth[r as usize]).collect(),
            roots,
            leaf_start,
            weights,
            base_values,
            post_transform: a.post_transform,
            aggregate: if a.is_classifier() { Aggregate::Sum } else { a.aggregate },
            binary_case: a.is_classifier() && n_outputs == 2 && classes.len() == 1,
            weights_are_all_positive,
        })
    }

    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// One step down from `node` for row `x` (a leaf steps to itself).
    #[inline(always)]
    fn step(&self, node: &Node, x: &[f32]) -> u32 {
        // SAFETY: features are < n_features <= x.len() (checked by `eval`); a leaf reads
        // feature 0, and a tree with a leaf below a branch reads at least one feature.
        let v = unsafe { *x.get_unchecked((node.key & FEATURE_MASK) as usize) };
        let t = node.threshold;
        let outcome = (u32::from(v == t) | (u32::from(v > t) << 1)) + 3 * u32::from(v.is_nan());
        let go = (node.key >> (FEATURE_BITS + outcome)) & 1;
        node.children[go as usize]
    }

    #[inline(always)]
    fn node(&self, i: u32) -> &Node {
        // SAFETY: node indices come from `build`, which only writes indices of pushed nodes.
        unsafe { self.nodes.get_unchecked(i as usize) }
    }

    /// The leaf each row of `block` reaches in tree `t`, into `leaves`. Rows go
    /// `LANES` at a time in lockstep, until all of them stand on leaves.
    fn walk(&self, t: usize, block: &[f32], cols: usize, rows: usize, leaves: &mut [u32]) {
        let root = self.roots[t];
        let depth = self.depths[t];
        let mut r = 0;
        while r + LANES <= rows {
            let mut idx = [root; LANES];
            let row = |g: usize| &block[(r + g) * cols..(r + g + 1) * cols];
            for _ in 0..depth {
                let mut all_leaves = LEAF;
                for (g, i) in idx.iter_mut().enumerate() {
                    let node = self.node(*i);
                    all_leaves &= node.key;
                    *i = self.step(node, row(g));
                }
                if all_leaves != 0 {
                    break;
                }
            }
            for g in 0..LANES {
                leaves[r + g] = self.node(idx[g]).threshold.to_bits();
            }
            r += LANES;
        }
        for (rr, leaf) in leaves.iter_mut().enumerate().take(rows).skip(r) {
            let x = &block[rr * cols..(rr + 1) * cols];
            let mut node = self.node(root);
            while node.key & LEAF == 0 {
                node = self.node(self.step(node, x));
            }
            *leaf = node.threshold.to_bits();
        }
    }

    /// Adds (or, for MIN/MAX, folds) a leaf's weights into one row's scores.
    #[inline(always)]
    fn add_leaf(&self, leaf: usize, s: &mut [f32], h: &mut [bool]) {
        let (from, to) = (self.leaf_start[leaf] as usize, self.leaf_start[leaf + 1] as usize);
        for w in &self.weights[from..to] {
            let o = w.output as usize;
            match self.aggregate {
                Aggregate::Sum | Aggregate::Average => s[o] += w.value,
                Aggregate::Min => s[o] = if !h[o] || w.value < s[o] { w.value } else { s[o] },
                Aggregate::Max => s[o] = if !h[o] || w.value > s[o] { w.value } else { s[o] },
            }
            h[o] = true;
        }
    }

    /// The leaves one row `x` reaches in trees `first..first + count` (count <= LANES),
    /// walked in lockstep.
    fn walk_trees(&self, first: usize, count: usize, x: &[f32]) -> [u32; LANES] {
        let mut idx = [self.roots[first]; LANES];
        idx[..count].copy_from_slice(&self.roots[first..first + count]);
        let depth = self.depths[first..first + count].iter().copied().max().unwrap_or(0);
        for _ in 0..depth {
            let mut all_leaves = LEAF;
            for i in idx.iter_mut() {
                let node = self.node(*i);
                all_leaves &= node.key;
                *i = self.step(node, x);
            }
            if all_leaves != 0 {
                break;
            }
        }
        idx.map(|i| self.node(i).threshold.to_bits())
    }

    /// Scores `n` rows of `x` (row-major, `cols >= n_features` columns): writes
    /// `n × n_outputs` values to `z` and, for a classifier, one label per row.
    pub fn eval(&self, x: &[f32], cols: usize, z: &mut [f32], labels: &mut [Label]) -> Result<(), String> {
        if cols < self.n_features {
            return Err(format!("the trees read feature {} but the input has {cols} columns", self.n_features - 1));
        }
        let n = x.len().checked_div(cols).unwrap_or(0);
        let k = self.n_outputs;
        assert!(z.len() >= n * k && (!self.classifier || labels.len() >= n));
        let mut scores = vec![0f32; BLOCK.min(n.max(1)) * k];
        let mut seen = vec![false; scores.len()];
        let mut leaves = [0u32; BLOCK];
        let mut start = 0;
        while start < n {
            let rows = (n - start).min(BLOCK);
            scores[..rows * k].fill(0.0);
            seen[..rows * k].fill(false);
            let block = &x[start * cols..(start + rows) * cols];
            if rows < LANES {
                // Too few rows to fill the lanes: each row walks LANES trees in lockstep
                // instead (weights still added in tree order).
                for r in 0..rows {
                    let x = &block[r * cols..(r + 1) * cols];
                    let s = &mut scores[r * k..(r + 1) * k];
                    let h = &mut seen[r * k..(r + 1) * k];
                    let mut t = 0;
                    while t < self.roots.len() {
                        let count = (self.roots.len() - t).min(LANES);
                        let found = self.walk_trees(t, count, x);
                        for &leaf in &found[..count] {
                            self.add_leaf(leaf as usize, s, h);
                        }
                        t += count;
                    }
                }
            } else {
                for t in 0..self.roots.len() {
                    self.walk(t, block, cols, rows, &mut leaves);
                    for (r, &leaf) in leaves.iter().enumerate().take(rows) {
                        self.add_leaf(leaf as usize, &mut scores[r * k..(r + 1) * k], &mut seen[r * k..(r + 1) * k]);
                    }
                }
            }
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

    /// onnxruntime's `TreeAggregatorClassifier::FinalizeScores`, rule for rule: the ONNX
    /// spec leaves two-class ensembles vague, and the exporters write their models for
    /// these rules.
    pub(crate) fn finalize_classifier(&self, s: &mut [f32], h: &mut [bool], z: &mut [f32]) -> Label {
        let base = &self.base_values;
        if s.len() > 2 {
            for (kk, b) in base.iter().enumerate() {
                if h[kk] {
                    s[kk] += b;
                } else {
                    h[kk] = true;
                    s[kk] = *b;
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
        let pos = if size == 2 && h[1] { s[1] } else if h[0] { s[0] } else { 0.0 };
        let label = if self.binary_case {
            if self.weights_are_all_positive {
                if pos > 0.5 {
                    add = 0;
                    Label::Index(1)
                } else {
                    add = 1;
                    Label::Index(0)
                }
            } else if pos > 0.0 {
                add = 2;
                Label::Index(1)
            } else {
                add = 3;
                Label::Index(0)
            }
        } else {
            Label::Literal(i64::from(pos > 0.0))
        };
        write_scores(&mut s[..size], self.post_transform, z, add);
        label
    }

    /// onnxruntime's regressor aggregators (`FinalizeScores1` for one target, which
    /// applies only PROBIT, and `FinalizeScores` for several).
    pub(crate) fn finalize_regressor(&self, s: &mut [f32], h: &mut [bool], z: &mut [f32]) {
        let n_trees = self.roots.len() as f32;
        let base = &self.base_values;
        if s.len() == 1 {
            let origin = if base.len() == 1 { base[0] } else { 0.0 };
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
            z[0] = if self.post_transform == PostTransform::Probit { probit(v) } else { v };
            return;
        }
        let use_base = base.len() == s.len();
        for kk in 0..s.len() {
            let b = if use_base { base[kk] } else { 0.0 };
            s[kk] = match self.aggregate {
                Aggregate::Sum => s[kk] + b,
                Aggregate::Average => s[kk] / n_trees + b,
                Aggregate::Min | Aggregate::Max => b + if h[kk] { s[kk] } else { 0.0 },
            };
        }
        write_scores(s, self.post_transform, z, -1);
    }
}

impl TreeAttrs {
    pub fn is_classifier(&self) -> bool {
        matches!(self.kind, Kind::Classifier(_))
    }
}

/// onnxruntime's `ComputeLogistic` (float).
pub fn logistic(v: f32) -> f32 {
    let e = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 { 1.0 - e } else { e }
}

/// onnxruntime's `ComputeProbit`: sqrt(2) × its closed-form approximation of erf⁻¹.
pub fn probit(v: f32) -> f32 {
    let x = 2.0 * v - 1.0;
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let a = 2.0 / (std::f32::consts::PI * 0.147) + 0.5 * log;
    let b = 1.0 / 0.147f32 * log;
    let c = -a + (a * a - b).sqrt();
    std::f32::consts::SQRT_2 * (sgn * c.sqrt())
}

fn softmax(s: &mut [f32]) {
    let max = s.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    let mut sum = 0.0;
    for v in s.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
}

/// Softmax that leaves (near-)zero scores at zero weight.
fn softmax_zero(s: &mut [f32]) {
    let max = s.iter().fold(-f32::MAX, |m, &v| if v > m { v } else { m });
    let exp_neg_max = (-max).exp();
    let mut sum = 0.0;
    for v in s.iter_mut() {
        if *v > 0.000_000_1 || *v < -0.000_000_1 {
            *v = (*v - max).exp();
            sum += *v;
        } else {
            *v *= exp_neg_max;
        }
    }
    for v in s.iter_mut() {
        *v /= sum;
    }
}

/// onnxruntime's `write_scores`: the post-transform, and the second column of a
/// one-score binary ensemble (`add` says how it is made).
fn write_scores(s: &mut [f32], post: PostTransform, z: &mut [f32], add: i32) {
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
            z[1] = 0.0;
        }
        return;
    }
    match add {
        0 | 1 => {
            z[0] = 1.0 - v;
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
                z[1] = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_thresholds_round_so_every_f32_compares_as_in_f64() {
        let t = 0.1f64; // not an f32
        let below = (t as f32).next_down();
        let above = (t as f32).next_up();
        for x in [below, t as f32, above, (t as f32).next_down().next_down(), above.next_up()] {
            let xd = f64::from(x);
            for (mode, expect) in [
                (Mode::Leq, xd <= t),
                (Mode::Lt, xd < t),
                (Mode::Gte, xd >= t),
                (Mode::Gt, xd > t),
                (Mode::Eq, xd == t),
                (Mode::Neq, xd != t),
            ] {
                let (thr, table) = truth_table(mode, t, false);
                let outcome = (u32::from(x == thr) | (u32::from(x > thr) << 1)) + 3 * u32::from(x.is_nan());
                assert_eq!((table >> outcome) & 1 == 1, expect, "{mode:?} {x} vs {t}");
            }
        }
        // NaN input: only NEQ and the missing track take the true branch.
        for mode in [Mode::Leq, Mode::Lt, Mode::Gte, Mode::Gt, Mode::Eq, Mode::Neq] {
            let (_, t_no) = truth_table(mode, 1.0, false);
            let (_, t_yes) = truth_table(mode, 1.0, true);
            assert_eq!(t_no & NAN != 0, mode == Mode::Neq, "{mode:?}");
            assert!(t_yes & NAN != 0, "{mode:?}");
        }
    }

    #[test]
    fn logistic_and_probit() {
        assert!((logistic(0.0) - 0.5).abs() < 1e-7);
        assert!((logistic(2.0) + logistic(-2.0) - 1.0).abs() < 1e-7);
        // onnxruntime's probit approximation: within 2e-3 of the true quantile.
        assert!(probit(0.5).abs() < 1e-6);
        assert!((probit(0.975) - 1.959_964).abs() < 2e-3, "{}", probit(0.975));
    }
}
