//! The attributes of an ONNX-ML `TreeEnsembleClassifier` / `TreeEnsembleRegressor` node
//! (ai.onnx.ml opsets 1 and 3) or `TreeEnsemble` node (ai.onnx.ml opset 5), read and
//! checked as the ONNX-ML spec defines them. A `TreeEnsemble` is rewritten into the
//! regressor's flat form, as onnxruntime does (`TreeEnsembleAttributesV5::convert_to_v3`),
//! so one layout builder serves all three ops.
//!
//! Reading is strict: an attribute weir does not know or does not implement is refused
//! with the op's and the attribute's name, never silently ignored.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto, NodeProto, TensorProto};

/// How a branch node compares a feature with its threshold (`nodes_modes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            "LEAF" => Mode::Leaf,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostTransform {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

/// The class labels of a classifier: the label output's type and values.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    Int64(Vec<i64>),
    Strings(Vec<String>),
}

impl Labels {
    pub fn len(&self) -> usize {
        match self {
            Labels::Int64(v) => v.len(),
            Labels::Strings(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Classifier(Labels),
    Regressor { n_targets: usize },
}

/// One ensemble's attributes, in the flat, parallel-array form ONNX stores them.
/// Thresholds, weights and base values are kept as f64 so the `*_as_tensor` double
/// forms lose nothing before the layout rounds them.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeAttrs {
    pub kind: Kind,
    pub nodes_treeids: Vec<i64>,
    pub nodes_nodeids: Vec<i64>,
    pub nodes_featureids: Vec<i64>,
    pub nodes_values: Vec<f64>,
    pub nodes_modes: Vec<Mode>,
    pub nodes_truenodeids: Vec<i64>,
    pub nodes_falsenodeids: Vec<i64>,
    /// Empty means "false for every node".
    pub nodes_missing_value_tracks_true: Vec<bool>,
    /// `class_*` for a classifier, `target_*` for a regressor.
    pub leaf_treeids: Vec<i64>,
    pub leaf_nodeids: Vec<i64>,
    pub leaf_ids: Vec<i64>,
    pub leaf_weights: Vec<f64>,
    pub base_values: Vec<f64>,
    pub post_transform: PostTransform,
    pub aggregate: Aggregate,
    /// Read from a `TreeEnsemble` (opset 5) node: its output has the input's type.
    pub v5: bool,
}

impl TreeAttrs {
    pub fn n_outputs(&self) -> usize {
        match &self.kind {
            Kind::Classifier(labels) => labels.len(),
            Kind::Regressor { n_targets } => *n_targets,
        }
    }

    pub fn is_classifier(&self) -> bool {
        matches!(self.kind, Kind::Classifier(_))
    }

    pub fn op_name(&self) -> &'static str {
        if self.v5 {
            return "TreeEnsemble";
        }
        match self.kind {
            Kind::Classifier(_) => "TreeEnsembleClassifier",
            Kind::Regressor { .. } => "TreeEnsembleRegressor",
        }
    }
}

const COMMON: &[&str] = &[
    "nodes_treeids",
    "nodes_nodeids",
    "nodes_featureids",
    "nodes_values",
    "nodes_values_as_tensor",
    "nodes_modes",
    "nodes_truenodeids",
    "nodes_falsenodeids",
    "nodes_missing_value_tracks_true",
    // Hit rates describe training traffic; inference does not read them.
    "nodes_hitrates",
    "nodes_hitrates_as_tensor",
    "base_values",
    "base_values_as_tensor",
    "post_transform",
];
const CLASSIFIER: &[&str] =
    &["class_treeids", "class_nodeids", "class_ids", "class_weights", "class_weights_as_tensor", "classlabels_int64s", "classlabels_strings"];
const REGRESSOR: &[&str] =
    &["target_treeids", "target_nodeids", "target_ids", "target_weights", "target_weights_as_tensor", "n_targets", "aggregate_function"];

/// Reads a node's attributes. `load_tensor` turns a `*_as_tensor` attribute's tensor
/// into f64 values (tract's tensor loader, given by the caller).
pub fn read(
    node: &NodeProto,
    load_tensor: &dyn Fn(&TensorProto) -> Result<Vec<f64>, String>,
) -> Result<TreeAttrs, String> {
    let op = node.op_type.as_str();
    if !(node.domain.is_empty() || node.domain == "ai.onnx.ml") {
        return Err(format!("{op}: domain {:?} is not ai.onnx.ml", node.domain));
    }
    let classifier = match op {
        "TreeEnsembleClassifier" => true,
        "TreeEnsembleRegressor" => false,
        "TreeEnsemble" => return read_v5(node, load_tensor),
        other => return Err(format!("{other}: not a tree ensemble op")),
    };
    let own = if classifier { CLASSIFIER } else { REGRESSOR };
    let mut unknown: Vec<&str> =
        node.attribute.iter().map(|a| a.name.as_str()).filter(|n| !COMMON.contains(n) && !own.contains(n)).collect();
    unknown.sort_unstable();
    if !unknown.is_empty() {
        return Err(format!("{op}: unsupported attribute(s) {}", unknown.join(", ")));
    }
    let a = Attrs { op, node, load_tensor };
    let kind = if classifier {
        let ints = a.ints_opt("classlabels_int64s")?;
        let strings = a.strings_opt("classlabels_strings")?;
        let labels = match (ints, strings) {
            (Some(i), None) => Labels::Int64(i),
            (None, Some(s)) => Labels::Strings(s),
            (None, None) => return Err(format!("{op}: needs classlabels_int64s or classlabels_strings")),
            (Some(_), Some(_)) => return Err(format!("{op}: has both classlabels_int64s and classlabels_strings")),
        };
        if labels.len() < 2 {
            return Err(format!("{op}: classlabels: need at least 2 classes, got {}", labels.len()));
        }
        Kind::Classifier(labels)
    } else {
        let n = a.int_opt("n_targets")?.unwrap_or(1);
        if n < 1 {
            return Err(format!("{op}: n_targets must be >= 1, got {n}"));
        }
        Kind::Regressor { n_targets: n as usize }
    };
    let prefix = if classifier { "class" } else { "target" };
    let post_transform = match a.string_opt("post_transform")?.as_deref().unwrap_or("NONE") {
        "NONE" => PostTransform::None,
        "LOGISTIC" => PostTransform::Logistic,
        "SOFTMAX" => PostTransform::Softmax,
        "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
        "PROBIT" => PostTransform::Probit,
        other => return Err(format!("{op}: post_transform {other:?} is not one of NONE, LOGISTIC, SOFTMAX, SOFTMAX_ZERO, PROBIT")),
    };
    let aggregate = match a.string_opt("aggregate_function")?.as_deref().unwrap_or("SUM") {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => return Err(format!("{op}: aggregate_function {other:?} is not one of SUM, AVERAGE, MIN, MAX")),
    };
    let modes = a.strings("nodes_modes")?;
    let nodes_modes = modes
        .iter()
        .map(|m| Mode::parse(m).ok_or_else(|| format!("{op}: nodes_modes: unknown mode {m:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let tracks = a.ints_opt("nodes_missing_value_tracks_true")?.unwrap_or_default();
    let attrs = TreeAttrs {
        kind,
        nodes_treeids: a.ints("nodes_treeids")?,
        nodes_nodeids: a.ints("nodes_nodeids")?,
        nodes_featureids: a.ints("nodes_featureids")?,
        nodes_values: a.floats_or_tensor("nodes_values")?.unwrap_or_default(),
        nodes_modes,
        nodes_truenodeids: a.ints("nodes_truenodeids")?,
        nodes_falsenodeids: a.ints("nodes_falsenodeids")?,
        nodes_missing_value_tracks_true: tracks.iter().map(|&t| t != 0).collect(),
        leaf_treeids: a.ints(&format!("{prefix}_treeids"))?,
        leaf_nodeids: a.ints(&format!("{prefix}_nodeids"))?,
        leaf_ids: a.ints(&format!("{prefix}_ids"))?,
        leaf_weights: a.floats_or_tensor(&format!("{prefix}_weights"))?.unwrap_or_default(),
        base_values: a.floats_or_tensor("base_values")?.unwrap_or_default(),
        post_transform,
        aggregate,
        v5: false,
    };
    let n = attrs.nodes_treeids.len();
    for (name, len) in [
        ("nodes_nodeids", attrs.nodes_nodeids.len()),
        ("nodes_featureids", attrs.nodes_featureids.len()),
        ("nodes_values", attrs.nodes_values.len()),
        ("nodes_modes", attrs.nodes_modes.len()),
        ("nodes_truenodeids", attrs.nodes_truenodeids.len()),
        ("nodes_falsenodeids", attrs.nodes_falsenodeids.len()),
    ] {
        if len != n {
            return Err(format!("{op}: {name} has {len} entries, nodes_treeids has {n}"));
        }
    }
    if !tracks.is_empty() && tracks.len() != n {
        return Err(format!("{op}: nodes_missing_value_tracks_true has {} entries, nodes_treeids has {n}", tracks.len()));
    }
    let l = attrs.leaf_ids.len();
    for (name, len) in [
        ("treeids", attrs.leaf_treeids.len()),
        ("nodeids", attrs.leaf_nodeids.len()),
        ("weights", attrs.leaf_weights.len()),
    ] {
        if len != l {
            return Err(format!("{op}: {prefix}_{name} has {len} entries, {prefix}_ids has {l}"));
        }
    }
    Ok(attrs)
}

const V5: &[&str] = &[
    "aggregate_function",
    "leaf_targetids",
    "leaf_weights",
    "membership_values",
    "n_targets",
    "nodes_falseleafs",
    "nodes_falsenodeids",
    "nodes_featureids",
    // Hit rates describe training traffic; inference does not read them.
    "nodes_hitrates",
    "nodes_missing_value_tracks_true",
    "nodes_modes",
    "nodes_splits",
    "nodes_trueleafs",
    "nodes_truenodeids",
    "post_transform",
    "tree_roots",
];

/// A `TreeEnsemble` (ai.onnx.ml opset 5) node, rewritten into the regressor's flat form:
/// tree `i` is the nodes reachable from `tree_roots[i]`; interior node `j` keeps id `j`,
/// leaf `l` gets id `n_nodes + l`, and a `BRANCH_MEMBER` node becomes a chain of
/// `BRANCH_EQ` nodes (one per member, each with the node's missing-value track, all
/// true branches to the node's true branch), as onnxruntime rewrites it. A one-leaf
/// tree is, as the spec writes it, a root whose two branches are the same leaf: that
/// leaf for every row (onnx's reference evaluator reads `leaf_*[root index]` instead;
/// onnxruntime reads the named leaf, and weir follows onnxruntime).
fn read_v5(node: &NodeProto, load_tensor: &dyn Fn(&TensorProto) -> Result<Vec<f64>, String>) -> Result<TreeAttrs, String> {
    let op = "TreeEnsemble";
    let mut unknown: Vec<&str> = node.attribute.iter().map(|a| a.name.as_str()).filter(|n| !V5.contains(n)).collect();
    unknown.sort_unstable();
    if !unknown.is_empty() {
        return Err(format!("{op}: unsupported attribute(s) {}", unknown.join(", ")));
    }
    let a = Attrs { op, node, load_tensor };
    let tensor = |name: &str| -> Result<Option<Vec<f64>>, String> {
        match a.typed(name, AttributeType::Tensor)? {
            None => Ok(None),
            Some(at) => {
                let t = at.t.as_ref().ok_or_else(|| format!("{op}: attribute {name} has no tensor"))?;
                load_tensor(t).map(Some).map_err(|e| format!("{op}: attribute {name}: {e}"))
            }
        }
    };
    let required = |name: &str| -> Result<Vec<f64>, String> { tensor(name)?.ok_or_else(|| format!("{op}: missing attribute {name}")) };
    let n_targets = a.int_opt("n_targets")?.ok_or_else(|| format!("{op}: missing attribute n_targets"))?;
    if n_targets < 1 {
        return Err(format!("{op}: n_targets must be >= 1, got {n_targets}"));
    }
    let post_transform = match a.int_opt("post_transform")?.unwrap_or(0) {
        0 => PostTransform::None,
        1 => PostTransform::Softmax,
        2 => PostTransform::Logistic,
        3 => PostTransform::SoftmaxZero,
        4 => PostTransform::Probit,
        other => return Err(format!("{op}: post_transform {other} is not one of 0 (NONE) .. 4 (PROBIT)")),
    };
    let aggregate = match a.int_opt("aggregate_function")?.unwrap_or(1) {
        0 => Aggregate::Average,
        1 => Aggregate::Sum,
        2 => Aggregate::Min,
        3 => Aggregate::Max,
        other => return Err(format!("{op}: aggregate_function {other} is not one of 0 (AVERAGE) .. 3 (MAX)")),
    };
    let featureids = a.ints("nodes_featureids")?;
    let truenodeids = a.ints("nodes_truenodeids")?;
    let falsenodeids = a.ints("nodes_falsenodeids")?;
    let trueleafs = a.ints("nodes_trueleafs")?;
    let falseleafs = a.ints("nodes_falseleafs")?;
    let tracks = a.ints_opt("nodes_missing_value_tracks_true")?.unwrap_or_default();
    let splits = required("nodes_splits")?;
    let modes = required("nodes_modes")?;
    let roots = a.ints("tree_roots")?;
    if roots.is_empty() {
        return Err(format!("{op}: tree_roots: no trees"));
    }
    let targetids = a.ints("leaf_targetids")?;
    let weights = required("leaf_weights")?;
    let membership = tensor("membership_values")?;
    let n = featureids.len();
    for (name, len) in [
        ("nodes_truenodeids", truenodeids.len()),
        ("nodes_falsenodeids", falsenodeids.len()),
        ("nodes_trueleafs", trueleafs.len()),
        ("nodes_falseleafs", falseleafs.len()),
        ("nodes_splits", splits.len()),
        ("nodes_modes", modes.len()),
    ] {
        if len != n {
            return Err(format!("{op}: {name} has {len} entries, nodes_featureids has {n}"));
        }
    }
    if !tracks.is_empty() && tracks.len() != n {
        return Err(format!("{op}: nodes_missing_value_tracks_true has {} entries, nodes_featureids has {n}", tracks.len()));
    }
    let n_leaves = targetids.len();
    if weights.len() != n_leaves {
        return Err(format!("{op}: leaf_weights has {} entries, leaf_targetids has {n_leaves}", weights.len()));
    }
    if let Some((l, t)) = targetids.iter().enumerate().find(|(_, t)| !(0..n_targets).contains(*t)) {
        return Err(format!("{op}: leaf_targetids: leaf {l} is for target {t}, the op has {n_targets}"));
    }
    // Mode codes 0..5 are BRANCH_LEQ .. BRANCH_NEQ, 6 is BRANCH_MEMBER.
    const MEMBER: u8 = 6;
    let modes: Vec<u8> = modes
        .iter()
        .enumerate()
        .map(|(i, &m)| {
            if (0.0..=6.0).contains(&m) && m.fract() == 0.0 {
                Ok(m as u8)
            } else {
                Err(format!("{op}: nodes_modes: node {i} has mode {m}, not one of 0 (BRANCH_LEQ) .. 6 (BRANCH_MEMBER)"))
            }
        })
        .collect::<Result<_, _>>()?;
    const BRANCH: [Mode; 6] = [Mode::Leq, Mode::Lt, Mode::Gte, Mode::Gt, Mode::Eq, Mode::Neq];
    // Each BRANCH_MEMBER node's set, in node order, NaN-terminated in membership_values.
    let n_member = modes.iter().filter(|&&m| m == MEMBER).count();
    let mut sets: HashMap<usize, Vec<f64>> = HashMap::new();
    if n_member > 0 {
        let values = membership.ok_or_else(|| format!("{op}: membership_values: needed by {n_member} BRANCH_MEMBER node(s), missing"))?;
        let n_sets = values.iter().filter(|v| v.is_nan()).count();
        if n_sets != n_member {
            return Err(format!("{op}: membership_values holds {n_sets} NaN-terminated sets for {n_member} BRANCH_MEMBER node(s)"));
        }
        let mut groups = values.split(|v| v.is_nan());
        for (i, _) in modes.iter().enumerate().filter(|(_, m)| **m == MEMBER) {
            sets.insert(i, groups.next().unwrap_or_default().to_vec());
        }
    }
    let mut out = TreeAttrs {
        kind: Kind::Regressor { n_targets: n_targets as usize },
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
        post_transform,
        aggregate,
        v5: true,
    };
    let leaf_id = |l: i64| -> Result<i64, String> {
        if (0..n_leaves as i64).contains(&l) {
            Ok(n as i64 + l)
        } else {
            Err(format!("{op}: a branch points to leaf {l}, there are {n_leaves}"))
        }
    };
    let node_index = |j: i64| -> Result<usize, String> {
        if (0..n as i64).contains(&j) {
            Ok(j as usize)
        } else {
            Err(format!("{op}: a branch points to node {j}, there are {n}"))
        }
    };
    // Ids for the extra nodes of member chains, past every node and leaf id.
    let mut next_chain_id = (n + n_leaves) as i64;
    for (tree, &root) in roots.iter().enumerate() {
        let tree = tree as i64;
        let root = usize::try_from(root).ok().filter(|&r| r < n).ok_or_else(|| format!("{op}: tree_roots: root {root} is not a node (there are {n})"))?;
        // Leaves of this tree already written (two branches may share a leaf).
        let mut leaves_done = HashSet::new();
        let mut push_leaf = |out: &mut TreeAttrs, l: i64| -> Result<i64, String> {
            let id = leaf_id(l)?;
            if leaves_done.insert(id) {
                out.nodes_treeids.push(tree);
                out.nodes_nodeids.push(id);
                out.nodes_featureids.push(0);
                out.nodes_values.push(0.0);
                out.nodes_modes.push(Mode::Leaf);
                out.nodes_truenodeids.push(0);
                out.nodes_falsenodeids.push(0);
                out.nodes_missing_value_tracks_true.push(false);
                out.leaf_treeids.push(tree);
                out.leaf_nodeids.push(id);
                out.leaf_ids.push(targetids[l as usize]);
                out.leaf_weights.push(weights[l as usize]);
            }
            Ok(id)
        };
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            // A branch's target id; leaves are written after this node, so that each
            // tree's first node is its root (the flat form's rule).
            let mut leaves_after = Vec::new();
            let mut branch = |which: &[i64], leafs: &[i64]| -> Result<i64, String> {
                if leafs[i] != 0 {
                    leaves_after.push(which[i]);
                    leaf_id(which[i])
                } else {
                    let j = node_index(which[i])?;
                    stack.push(j);
                    Ok(j as i64)
                }
            };
            let t = branch(&truenodeids, &trueleafs)?;
            let f = branch(&falsenodeids, &falseleafs)?;
            let track = tracks.get(i).is_some_and(|&v| v != 0);
            let feature = featureids[i];
            let emit = |out: &mut TreeAttrs, id: i64, mode: Mode, value: f64, false_id: i64| {
                out.nodes_treeids.push(tree);
                out.nodes_nodeids.push(id);
                out.nodes_featureids.push(feature);
                out.nodes_values.push(value);
                out.nodes_modes.push(mode);
                out.nodes_truenodeids.push(t);
                out.nodes_falsenodeids.push(false_id);
                out.nodes_missing_value_tracks_true.push(track);
            };
            if modes[i] != MEMBER {
                emit(&mut out, i as i64, BRANCH[modes[i] as usize], splits[i], f);
            } else {
                // x in {m1, .., mk}: EQ m1, else EQ m2, .. else the false branch. An empty
                // set is one EQ NaN node: false for every x, true for NaN when tracked.
                let set = sets.get(&i).map(Vec::as_slice).unwrap_or_default();
                let members: Vec<f64> = if set.is_empty() { vec![f64::NAN] } else { set.to_vec() };
                let mut id = i as i64;
                for (m, &value) in members.iter().enumerate() {
                    let next = if m + 1 == members.len() {
                        f
                    } else {
                        next_chain_id += 1;
                        next_chain_id - 1
                    };
                    emit(&mut out, id, Mode::Eq, value, next);
                    id = next;
                }
            }
            for l in leaves_after {
                push_leaf(&mut out, l)?;
            }
        }
    }
    Ok(out)
}

struct Attrs<'a> {
    op: &'a str,
    node: &'a NodeProto,
    load_tensor: &'a dyn Fn(&TensorProto) -> Result<Vec<f64>, String>,
}

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    fn typed(&self, name: &str, want: AttributeType) -> Result<Option<&AttributeProto>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(a) if a.r#type == want as i32 => Ok(Some(a)),
            Some(a) => Err(format!("{}: attribute {name} has type {}, expected {:?}", self.op, a.r#type, want)),
        }
    }

    fn ints_opt(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self.typed(name, AttributeType::Ints)?.map(|a| a.ints.clone()))
    }

    fn ints(&self, name: &str) -> Result<Vec<i64>, String> {
        self.ints_opt(name)?.ok_or_else(|| format!("{}: missing attribute {name}", self.op))
    }

    fn int_opt(&self, name: &str) -> Result<Option<i64>, String> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i))
    }

    fn string_opt(&self, name: &str) -> Result<Option<String>, String> {
        self.typed(name, AttributeType::String)?
            .map(|a| String::from_utf8(a.s.clone()).map_err(|_| format!("{}: attribute {name} is not UTF-8", self.op)))
            .transpose()
    }

    fn strings_opt(&self, name: &str) -> Result<Option<Vec<String>>, String> {
        self.typed(name, AttributeType::Strings)?
            .map(|a| {
                a.strings
                    .iter()
                    .map(|s| String::from_utf8(s.clone()).map_err(|_| format!("{}: attribute {name} is not UTF-8", self.op)))
                    .collect()
            })
            .transpose()
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, String> {
        self.strings_opt(name)?.ok_or_else(|| format!("{}: missing attribute {name}", self.op))
    }

    /// `name` (floats) or `name_as_tensor` (a double or float tensor), not both.
    fn floats_or_tensor(&self, name: &str) -> Result<Option<Vec<f64>>, String> {
        let floats = self.typed(name, AttributeType::Floats)?.map(|a| a.floats.iter().map(|&f| f64::from(f)).collect());
        let tensor_name = format!("{name}_as_tensor");
        let tensor = match self.typed(&tensor_name, AttributeType::Tensor)? {
            Some(a) => {
                let t = a.t.as_ref().ok_or_else(|| format!("{}: attribute {tensor_name} has no tensor", self.op))?;
                Some((self.load_tensor)(t).map_err(|e| format!("{}: attribute {tensor_name}: {e}", self.op))?)
            }
            None => None,
        };
        match (floats, tensor) {
            (Some(_), Some(_)) => Err(format!("{}: has both {name} and {tensor_name}", self.op)),
            (f, t) => Ok(f.or(t)),
        }
    }
}
