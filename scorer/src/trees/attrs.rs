//! The attributes of an ONNX-ML `TreeEnsembleClassifier` / `TreeEnsembleRegressor` node,
//! read and checked as the ONNX-ML spec defines them (ai.onnx.ml opsets 1 and 3).
//!
//! Reading is strict: an attribute weir does not know or does not implement is refused
//! with the op's and the attribute's name, never silently ignored.

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
}

impl TreeAttrs {
    pub fn n_outputs(&self) -> usize {
        match &self.kind {
            Kind::Classifier(labels) => labels.len(),
            Kind::Regressor { n_targets } => *n_targets,
        }
    }

    pub fn op_name(&self) -> &'static str {
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
    let classifier = match op {
        "TreeEnsembleClassifier" => true,
        "TreeEnsembleRegressor" => false,
        other => return Err(format!("{other}: not a tree ensemble op")),
    };
    if !(node.domain.is_empty() || node.domain == "ai.onnx.ml") {
        return Err(format!("{op}: domain {:?} is not ai.onnx.ml", node.domain));
    }
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
