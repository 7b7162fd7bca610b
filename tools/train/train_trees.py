#!/usr/bin/env python3
"""Tree-ensemble models from three exporters, and onnxruntime's outputs for them: the
parity fixtures of weir's own tree ops (scorer/src/trees, test scorer/tests/trees.rs).

    ~/.cache/weir/venv/bin/python tools/train/train_trees.py

All models see the same synthetic data: 8 features, 5 % of the values missing (NaN).
The scoring rows are made by a generator that weir's Rust test reproduces bit for bit
(splitmix64 of seed and index), so only the outputs are committed, not the inputs:

    row i, column j: h = splitmix64(SEED * 1_000_003 + i * 8 + j)
                     NaN if splitmix64(h) % 20 == 0,
                     column 7 (categorical): (h >> 40) % 6,
                     else ((h >> 40) / 2**24) * 8 - 4   (exact in f32)

Written, per model NAME:
- models/trees/NAME.onnx
- scorer/tests/trees/NAME.out: onnxruntime's outputs on ROWS scoring rows, each graph
  output in order, raw little-endian: float32 scores, labels as int8 (string labels as
  int8 indices into classlabels_strings); 10 000 rows for exporter models, the first
  2 000 for the hand-built ones
- scorer/tests/trees/manifest.json: per model, the exporter, the outputs' names,
  dtypes and shapes, the ops and node modes used, and the sha256 of the model file.

Double models (input type double) are scored on "threshold-hugging" rows instead:
each value, with probability 3/4, replaced by one of the model's split thresholds for
that column, or the next double below or above it (the list of thresholds per column,
at most 64, is in the manifest as IEEE bit patterns, so weir's test makes the same rows):

    row i, column j: g = splitmix64((SEED + 100) * 1_000_003 + i * 8 + j)
                     the float row's value (as a double) if g % 4 == 0 or the column
                     has no threshold, else t = thresholds[j][(g >> 8) % len] and
                     [next below t, t, next above t][(g >> 40) % 3]

Their outputs are written as float64 when the graph output is double.

Models: scikit-learn (RandomForest classifier and regressor, GradientBoosting binary
(the standard skl2onnx export: one base value, LOGISTIC) and 3-class (SOFTMAX),
HistGradientBoosting) through skl2onnx; XGBoost and LightGBM (binary, multi-class,
regression; LightGBM with a categorical feature, which becomes BRANCH_EQ nodes) through
onnxmltools; and hand-built ensembles for what no exporter writes (every node mode,
missing-value tracks, string labels, PROBIT, SOFTMAX_ZERO, MIN/MAX/AVERAGE, a one-target
regressor's leaves with no or several weights).

The newer `TreeEnsemble` op (ai.onnx.ml opset 5): none of skl2onnx 1.20, onnxmltools 1.16
writes it (skl2onnx with target_opset {'ai.onnx.ml': 5} still writes
TreeEnsembleRegressor), so the v5_* models are made here: exporter models rewritten into
it (`v3_to_v5`), a scikit-learn forest written straight from its trees in double,
hand-built ensembles (BRANCH_MEMBER sets, a one-leaf tree, shared leaves), and the two
examples of onnx's own backend tests for the op. Their expected outputs are
onnxruntime's, except the post-transform where onnxruntime 1.32 departs from the spec
(`spec_post_transform`). Double input: skl2onnx's
RandomForestClassifier with a DoubleTensorType input (float attributes, double input),
and the regressor with `*_as_tensor` double attributes.
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper, TensorProto

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from weirtools import ROOT  # noqa: E402
K = 8
ROWS = 10_000
SPEC_ROWS = 2_000
SEED = 7
MASK = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def rows(seed, n):
    """The scoring rows, as weir's test makes them (vectorised splitmix64)."""
    idx = (np.uint64(seed) * np.uint64(1_000_003) + np.arange(n * K, dtype=np.uint64)).astype(np.uint64)
    with np.errstate(over="ignore"):
        def sm(x):
            x = x + np.uint64(0x9E3779B97F4A7C15)
            z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return z ^ (z >> np.uint64(31))
        h = sm(idx)
        missing = (sm(h) % np.uint64(20)) == 0
    top = (h >> np.uint64(40)).astype(np.float64)
    x = (top / 2.0 ** 24 * 8.0 - 4.0).astype(np.float32).reshape(n, K)
    cat = (top % 6).reshape(n, K)[:, 7].astype(np.float32)
    x[:, 7] = cat
    x[missing.reshape(n, K)] = np.nan
    assert splitmix64(0) == int(sm(np.array([0], dtype=np.uint64))[0])
    return x


def hug_rows(seed, n, thresholds):
    """Double rows on and one ulp around the model's thresholds (see the module docs)."""
    out = rows(seed, n).astype(np.float64).reshape(-1)
    idx = (np.uint64(seed + 100) * np.uint64(1_000_003) + np.arange(n * K, dtype=np.uint64)).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = idx + np.uint64(0x9E3779B97F4A7C15)
        z = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        g = z ^ (z >> np.uint64(31))
    for i in range(n * K):
        th = thresholds[i % K]
        gi = int(g[i])
        if gi % 4 == 0 or not th:
            continue
        t = th[(gi >> 8) % len(th)]
        out[i] = [np.nextafter(t, -np.inf), t, np.nextafter(t, np.inf)][(gi >> 40) % 3]
    return out.reshape(n, K)


def split_thresholds(onx):
    """Per column, the sorted distinct finite split thresholds of the model's ensemble
    (at most 64, evenly picked)."""
    per = [set() for _ in range(K)]
    for node in onx.graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        if node.op_type == "TreeEnsemble":
            vals = numpy_helper.to_array(a["nodes_splits"]).astype(np.float64)
            modes = numpy_helper.to_array(a["nodes_modes"])
            for f, v, m in zip(a["nodes_featureids"], vals, modes):
                if m != 6 and np.isfinite(v):
                    per[f].add(float(v))
        elif node.op_type.startswith("TreeEnsemble"):
            vals = (numpy_helper.to_array(a["nodes_values_as_tensor"]).astype(np.float64)
                    if "nodes_values_as_tensor" in a else np.array(a["nodes_values"], dtype=np.float32).astype(np.float64))
            for f, v, m in zip(a["nodes_featureids"], vals, a["nodes_modes"]):
                if m != b"LEAF" and np.isfinite(v):
                    per[f].add(float(v))
    out = []
    for s in per:
        s = sorted(s)
        step = -(-len(s) // 64) if s else 1
        out.append(s[::step])
    return out


def targets(x, rng):
    """Labels with structure trees can find: interactions, a categorical effect."""
    z = np.nan_to_num(x, nan=0.0)
    logit = 1.2 * z[:, 0] - 0.8 * z[:, 1] * (z[:, 2] > 0) + 0.5 * np.sin(2 * z[:, 3]) + 0.7 * (z[:, 7] == 3) - 0.3
    logit += np.where(np.isnan(x[:, 4]), 1.0, 0.0)  # missingness carries signal
    p = 1 / (1 + np.exp(-logit))
    y_bin = (rng.random(len(p)) < p).astype(int)
    y_multi = np.digitize(logit + rng.normal(0, 0.5, len(p)), [-0.8, 0.8])
    y_reg = logit + rng.normal(0, 0.3, len(p))
    return y_bin, y_multi, y_reg


def ops_and_modes(onx):
    ops = sorted({n.op_type for n in onx.graph.node})
    modes = set()
    for n in onx.graph.node:
        for a in n.attribute:
            if a.name == "nodes_modes" and a.type == onnx.AttributeProto.TENSOR:  # TreeEnsemble: codes
                names = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER"]
                modes.update(names[int(c)] for c in numpy_helper.to_array(a.t))
            elif a.name == "nodes_modes":
                modes.update(s.decode() for s in a.strings)
    return ops, sorted(modes)


def sklearn_models(X, yb, ym, yr):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import (GradientBoostingClassifier, HistGradientBoostingClassifier,
                                  HistGradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor)
    import skl2onnx.common.tree_ensemble as te
    Xi = np.nan_to_num(X, nan=0.0)  # the classic estimators train without NaN; scoring rows keep theirs

    # skl2onnx 1.20 passes HistGradientBoosting's `missing_go_to_left` (a numpy bool) as
    # nodes_missing_value_tracks_true, which onnx 1.2x refuses ("Expected an int, got a
    # boolean"); the same value as an int is what the converter means.
    if not getattr(te.add_node, "_weir_int_tracks", False):
        original = te.add_node

        def add_node(*args, nodes_missing_value_tracks_true=0, **kw):
            return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kw)
        add_node._weir_int_tracks = True
        te.add_node = add_node

    def conv(m):
        return convert_sklearn(m, initial_types=[("input", FloatTensorType([None, K]))],
                               options={id(m): {"zipmap": False}} if hasattr(m, "predict_proba") else None,
                               target_opset={"": 15, "ai.onnx.ml": 3})

    yield "sk_forest", "skl2onnx RandomForestClassifier(30, depth 6)", conv(
        RandomForestClassifier(n_estimators=30, max_depth=6, random_state=1, n_jobs=1).fit(Xi, yb))
    yield "sk_gbt_binary", "skl2onnx GradientBoostingClassifier binary (1 base value, LOGISTIC)", conv(
        GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=1).fit(Xi, yb))
    yield "sk_gbt_3class", "skl2onnx GradientBoostingClassifier 3 classes (SOFTMAX)", conv(
        GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=1).fit(Xi, ym))
    yield "sk_forest_reg", "skl2onnx RandomForestRegressor(20, depth 6)", conv(
        RandomForestRegressor(n_estimators=20, max_depth=6, random_state=1, n_jobs=1).fit(Xi, yr))
    for name, what, model in [
        ("sk_hgb_binary", "skl2onnx HistGradientBoostingClassifier binary (NaN-aware)",
         HistGradientBoostingClassifier(max_iter=50, max_leaf_nodes=15, random_state=1)),
        ("sk_hgb_reg", "skl2onnx HistGradientBoostingRegressor (NaN-aware)",
         HistGradientBoostingRegressor(max_iter=50, max_leaf_nodes=15, random_state=1)),
    ]:
        try:
            yield name, what, conv(model.fit(X, yb if "binary" in name else yr))
        except Exception as e:  # report, do not fake
            print(f"{name}: skl2onnx cannot convert it: {e}", file=sys.stderr)


def xgboost_models(X, yb, ym, yr):
    import xgboost as xgb
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    it = [("input", FloatTensorType([None, K]))]
    common = dict(n_estimators=50, max_depth=4, learning_rate=0.2, random_state=1, n_jobs=1, tree_method="hist")
    yield "xgb_binary", "onnxmltools XGBClassifier binary", convert_xgboost(
        xgb.XGBClassifier(**common).fit(X, yb), initial_types=it, target_opset=15)
    yield "xgb_3class", "onnxmltools XGBClassifier 3 classes", convert_xgboost(
        xgb.XGBClassifier(**common).fit(X, ym), initial_types=it, target_opset=15)
    yield "xgb_reg", "onnxmltools XGBRegressor", convert_xgboost(
        xgb.XGBRegressor(**common).fit(X, yr), initial_types=it, target_opset=15)


def lightgbm_models(X, yb, ym, yr):
    import lightgbm as lgb
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    it = [("input", FloatTensorType([None, K]))]
    common = dict(n_estimators=50, num_leaves=15, learning_rate=0.2, random_state=1, n_jobs=1, verbose=-1)
    fit = dict(categorical_feature=[7])
    yield "lgbm_binary", "onnxmltools LGBMClassifier binary (categorical feature 7)", convert_lightgbm(
        lgb.LGBMClassifier(**common).fit(X, yb, **fit), initial_types=it, target_opset=15, zipmap=False)
    yield "lgbm_3class", "onnxmltools LGBMClassifier 3 classes", convert_lightgbm(
        lgb.LGBMClassifier(**common).fit(X, ym, **fit), initial_types=it, target_opset=15, zipmap=False)
    yield "lgbm_reg", "onnxmltools LGBMRegressor", convert_lightgbm(
        lgb.LGBMRegressor(**common).fit(X, yr, **fit), initial_types=it, target_opset=15)


def random_ensemble(rng, n_trees, depth, n_out, leaf_classes):
    """Random trees with every mode and random missing tracks, in the flat ONNX form."""
    modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]
    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                         "nodes_truenodeids", "nodes_falsenodeids", "nodes_missing_value_tracks_true",
                         "l_treeids", "l_nodeids", "l_ids", "l_weights"]}
    for t in range(n_trees):
        counter = [0]

        def grow(d):
            me = counter[0]
            counter[0] += 1
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(me)
            if d == depth or (d > 1 and rng.random() < 0.2):
                a["nodes_featureids"].append(0)
                a["nodes_values"].append(0.0)
                a["nodes_modes"].append("LEAF")
                a["nodes_truenodeids"].append(0)
                a["nodes_falsenodeids"].append(0)
                a["nodes_missing_value_tracks_true"].append(0)
                for c in leaf_classes(rng):
                    a["l_treeids"].append(t)
                    a["l_nodeids"].append(me)
                    a["l_ids"].append(c)
                    a["l_weights"].append(float(np.float32(rng.normal())))
                return me
            f = int(rng.integers(0, K))
            mode = modes[int(rng.integers(0, len(modes)))]
            # EQ/NEQ on the categorical column, where equality happens.
            if mode in ("BRANCH_EQ", "BRANCH_NEQ"):
                f, thr = 7, float(rng.integers(0, 6))
            else:
                thr = float(np.float32(rng.uniform(-3, 3)))
            a["nodes_featureids"].append(f)
            a["nodes_values"].append(thr)
            a["nodes_modes"].append(mode)
            a["nodes_missing_value_tracks_true"].append(int(rng.random() < 0.5))
            slot = len(a["nodes_truenodeids"])
            a["nodes_truenodeids"].append(-1)
            a["nodes_falsenodeids"].append(-1)
            a["nodes_truenodeids"][slot] = grow(d + 1)
            a["nodes_falsenodeids"][slot] = grow(d + 1)
            return me

        grow(0)
    return a


def handmade(rng):
    """Ensembles no exporter writes, one per rule weir must follow."""
    def make(name, op, attrs, outputs):
        node = helper.make_node(op, ["input"], [o[0] for o in outputs], domain="ai.onnx.ml", **attrs)
        graph = helper.make_graph([node], name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, K])],
                                  [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs])
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m

    def classifier(name, n_classes, post, labels, base, leaf_classes, trees=20, depth=5):
        a = random_ensemble(rng, trees, depth, n_classes, leaf_classes)
        attrs = {k: v for k, v in a.items() if k.startswith("nodes_")}
        attrs.update(class_treeids=a["l_treeids"], class_nodeids=a["l_nodeids"], class_ids=a["l_ids"],
                     class_weights=a["l_weights"], post_transform=post)
        if base is not None:
            attrs["base_values"] = base
        if isinstance(labels[0], str):
            attrs["classlabels_strings"] = labels
            lt = TensorProto.STRING
        else:
            attrs["classlabels_int64s"] = labels
            lt = TensorProto.INT64
        return make(name, "TreeEnsembleClassifier", attrs,
                    [("label", lt, [None]), ("probabilities", TensorProto.FLOAT, [None, n_classes])])

    def regressor(name, n_targets, post, agg, base, trees=20, depth=5, leaf_targets=None):
        a = random_ensemble(rng, trees, depth, n_targets, leaf_targets or
                            (lambda r: sorted(set(int(c) for c in r.integers(0, n_targets, size=2)))))
        attrs = {k: v for k, v in a.items() if k.startswith("nodes_")}
        attrs.update(target_treeids=a["l_treeids"], target_nodeids=a["l_nodeids"], target_ids=a["l_ids"],
                     target_weights=a["l_weights"], post_transform=post, aggregate_function=agg, n_targets=n_targets)
        if base is not None:
            attrs["base_values"] = base
        return make(name, "TreeEnsembleRegressor", attrs, [("variable", TensorProto.FLOAT, [None, n_targets])])

    all3 = lambda r: [0, 1, 2]  # noqa: E731
    some4 = lambda r: sorted(set(int(c) for c in r.integers(0, 4, size=2)))  # noqa: E731
    yield "spec_softmax_strings", "hand-built: all modes, missing tracks, 4 string labels, SOFTMAX", classifier(
        "spec_softmax_strings", 4, "SOFTMAX", ["a", "b", "c", "d"], [0.1, -0.2, 0.3, 0.0], some4)
    yield "spec_softmax_zero", "hand-built: all modes, SOFTMAX_ZERO, 3 classes, no base values", classifier(
        "spec_softmax_zero", 3, "SOFTMAX_ZERO", [10, 20, 30], None, some4 if False else
        (lambda r: sorted(set(int(c) for c in r.integers(0, 3, size=2)))))
    yield "spec_logistic_3", "hand-built: all modes, LOGISTIC, 3 int labels", classifier(
        "spec_logistic_3", 3, "LOGISTIC", [0, 1, 2], [0.5, -0.5, 0.0], all3)
    yield "spec_binary_mixed", "hand-built: binary, both classes weighted, 2 base values, NONE", classifier(
        "spec_binary_mixed", 2, "NONE", [0, 1], [0.25, 0.5], lambda r: [0, 1])
    yield "spec_binary_one_class", "hand-built: binary, class 0 only, no base values, LOGISTIC", classifier(
        "spec_binary_one_class", 2, "LOGISTIC", [0, 1], None, lambda r: [0])
    yield "spec_probit_reg", "hand-built regressor: 1 target, PROBIT, AVERAGE", regressor(
        "spec_probit_reg", 1, "PROBIT", "AVERAGE", [0.1])
    yield "spec_min_reg", "hand-built regressor: 3 targets, MIN, base values", regressor(
        "spec_min_reg", 3, "NONE", "MIN", [0.0, 1.0, -1.0])
    yield "spec_max_reg", "hand-built regressor: 2 targets, MAX, LOGISTIC", regressor(
        "spec_max_reg", 2, "LOGISTIC", "MAX", None)
    yield "spec_sum_reg", "hand-built regressor: 1 target, SUM, 1 base value", regressor(
        "spec_sum_reg", 1, "NONE", "SUM", [2.0])
    # onnxruntime's one-target rule: a leaf gives its first weight, or 0 if it has none.
    some_weights = lambda r: [0] * int(r.integers(0, 3))  # noqa: E731
    yield "spec_one_target_min", "hand-built regressor: 1 target, MIN, leaves with 0, 1 or 2 weights", regressor(
        "spec_one_target_min", 1, "NONE", "MIN", None, leaf_targets=some_weights)
    yield "spec_one_target_sum", "hand-built regressor: 1 target, SUM, leaves with 0, 1 or 2 weights", regressor(
        "spec_one_target_sum", 1, "NONE", "SUM", [0.5], leaf_targets=some_weights)


def make_v5(name, v5, n_targets, dtype=np.float32, opset=21):
    """A graph of one TreeEnsemble (ai.onnx.ml opset 5) node over input [None, K]."""
    tp = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    attrs = dict(v5)
    for key in ("nodes_splits", "leaf_weights", "membership_values"):
        if key in attrs:
            attrs[key] = numpy_helper.from_array(np.asarray(attrs[key], dtype=dtype), key)
    attrs["nodes_modes"] = numpy_helper.from_array(np.asarray(attrs["nodes_modes"], dtype=np.uint8), "nodes_modes")
    node = helper.make_node("TreeEnsemble", ["input"], ["variable"], domain="ai.onnx.ml", n_targets=n_targets, **attrs)
    graph = helper.make_graph([node], name, [helper.make_tensor_value_info("input", tp, [None, K])],
                              [helper.make_tensor_value_info("variable", tp, [None, n_targets])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", 5)])
    m.ir_version = 10
    onnx.checker.check_model(m)
    return m


class V5Builder:
    """Accumulates TreeEnsemble node and leaf arrays."""

    MODES = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4, "BRANCH_NEQ": 5}

    def __init__(self):
        self.a = {k: [] for k in ["nodes_featureids", "nodes_splits", "nodes_modes", "nodes_truenodeids",
                                  "nodes_falsenodeids", "nodes_trueleafs", "nodes_falseleafs",
                                  "nodes_missing_value_tracks_true", "tree_roots", "leaf_targetids", "leaf_weights"]}

    def leaf(self, target, weight):
        self.a["leaf_targetids"].append(int(target))
        self.a["leaf_weights"].append(float(weight))
        return ("leaf", len(self.a["leaf_weights"]) - 1)

    def node(self, feature, split, mode, track=0):
        i = len(self.a["nodes_featureids"])
        self.a["nodes_featureids"].append(int(feature))
        self.a["nodes_splits"].append(float(split))
        self.a["nodes_modes"].append(mode if isinstance(mode, int) else self.MODES[mode])
        self.a["nodes_missing_value_tracks_true"].append(int(track))
        for k in ["nodes_truenodeids", "nodes_falsenodeids", "nodes_trueleafs", "nodes_falseleafs"]:
            self.a[k].append(-1)
        return ("node", i)

    def link(self, node, true, false):
        i = node[1]
        self.a["nodes_truenodeids"][i], self.a["nodes_trueleafs"][i] = true[1], int(true[0] == "leaf")
        self.a["nodes_falsenodeids"][i], self.a["nodes_falseleafs"][i] = false[1], int(false[0] == "leaf")

    def constant_tree(self, target, weight):
        """A tree that gives `weight` to `target` for every row: a split on feature 0 with
        two leaves of the same weight (a root whose two branches are one leaf is read
        differently by the runtimes, see v5_handmade)."""
        n = self.node(0, 0.0, "BRANCH_LEQ")
        self.link(n, self.leaf(target, weight), self.leaf(target, weight))
        self.a["tree_roots"].append(n[1])


def v3_to_v5(onx, dtype=np.float32):
    """The TreeEnsemble form of a model whose ensemble is a TreeEnsembleRegressor or
    TreeEnsembleClassifier: a tree whose leaves weigh several targets becomes one copy
    per target, base values become constant trees at the end (SUM only). The parity test
    compares weir with onnxruntime on the rewritten model, so it need not score exactly
    as the original."""
    node = [n for n in onx.graph.node if n.op_type.startswith("TreeEnsemble")][0]
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    clf = node.op_type == "TreeEnsembleClassifier"
    p = "class" if clf else "target"
    n_targets = len(a.get("classlabels_int64s") or a.get("classlabels_strings")) if clf else a.get("n_targets", 1)
    agg = "SUM" if clf else a.get("aggregate_function", b"SUM").decode()
    post = a.get("post_transform", b"NONE").decode()
    n = len(a["nodes_treeids"])
    tracks = a.get("nodes_missing_value_tracks_true") or [0] * n
    by_id = {(t, i): j for j, (t, i) in enumerate(zip(a["nodes_treeids"], a["nodes_nodeids"]))}
    weights = {}
    for t, i, c, w in zip(a[p + "_treeids"], a[p + "_nodeids"], a[p + "_ids"], a[p + "_weights"]):
        weights.setdefault((t, i), []).append((c, w))
    b = V5Builder()
    trees = []
    for t in a["nodes_treeids"]:
        if t not in trees:
            trees.append(t)
    for t in trees:
        root = next(j for j in range(n) if a["nodes_treeids"][j] == t)
        targets = sorted({c for j in range(n) if a["nodes_treeids"][j] == t for c, _ in weights.get((t, a["nodes_nodeids"][j]), [])})
        if agg == "AVERAGE":
            assert len(targets) == 1, "AVERAGE with several targets per tree would change the tree count"
        for c in targets:
            def emit(j):
                if a["nodes_modes"][j] == b"LEAF":
                    return b.leaf(c, sum(w for cc, w in weights.get((t, a["nodes_nodeids"][j]), []) if cc == c))
                me = b.node(a["nodes_featureids"][j], a["nodes_values"][j], a["nodes_modes"][j].decode(), tracks[j])
                tr = emit(by_id[(t, a["nodes_truenodeids"][j])])
                fa = emit(by_id[(t, a["nodes_falsenodeids"][j])])
                b.link(me, tr, fa)
                return me
            r = emit(root)
            if r[0] == "leaf":  # a one-leaf tree: a split with two equal leaves
                b.constant_tree(c, b.a["leaf_weights"][r[1]])
            else:
                b.a["tree_roots"].append(r[1])
    base = list(a.get("base_values", []))
    if agg == "SUM":
        if len(base) == 1 and n_targets > 1:
            base = []
        for c, v in enumerate(base):
            if v != 0:
                b.constant_tree(c, v)
    agg_code = {"AVERAGE": 0, "SUM": 1, "MIN": 2, "MAX": 3}[agg]
    post_code = {"NONE": 0, "SOFTMAX": 1, "LOGISTIC": 2, "SOFTMAX_ZERO": 3, "PROBIT": 4}[post]
    return make_v5("v5", dict(b.a, aggregate_function=agg_code, post_transform=post_code), n_targets, dtype)


def sklearn_forest_v5(forest, dtype):
    """A scikit-learn RandomForestRegressor written straight from its trees as a
    TreeEnsemble: double thresholds and leaf values, AVERAGE."""
    b = V5Builder()
    for est in forest.estimators_:
        tr = est.tree_

        def emit(i):
            if tr.children_left[i] == -1:
                return b.leaf(0, tr.value[i][0][0])
            me = b.node(tr.feature[i], tr.threshold[i], "BRANCH_LEQ")
            b.link(me, emit(tr.children_left[i]), emit(tr.children_right[i]))
            return me
        b.a["tree_roots"].append(emit(0)[1])
    return make_v5("forest", dict(b.a, aggregate_function=0), 1, dtype)


def sklearn_forest_v3_double(forest):
    """The same forest as a TreeEnsembleRegressor with the double `*_as_tensor`
    attributes (ai.onnx.ml opset 3) and a double input; the output is float."""
    a = {k: [] for k in ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_truenodeids",
                         "nodes_falsenodeids", "target_treeids", "target_nodeids", "target_ids"]}
    values, weights = [], []
    for t, est in enumerate(forest.estimators_):
        tr = est.tree_
        for i in range(tr.node_count):
            a["nodes_treeids"].append(t)
            a["nodes_nodeids"].append(i)
            leaf = tr.children_left[i] == -1
            a["nodes_featureids"].append(0 if leaf else int(tr.feature[i]))
            a["nodes_modes"].append("LEAF" if leaf else "BRANCH_LEQ")
            a["nodes_truenodeids"].append(0 if leaf else int(tr.children_left[i]))
            a["nodes_falsenodeids"].append(0 if leaf else int(tr.children_right[i]))
            values.append(0.0 if leaf else float(tr.threshold[i]))
            if leaf:
                a["target_treeids"].append(t)
                a["target_nodeids"].append(i)
                a["target_ids"].append(0)
                weights.append(float(tr.value[i][0][0]))
    node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"], domain="ai.onnx.ml", n_targets=1,
                            aggregate_function="AVERAGE",
                            nodes_values_as_tensor=numpy_helper.from_array(np.array(values), "v"),
                            target_weights_as_tensor=numpy_helper.from_array(np.array(weights), "w"), **a)
    graph = helper.make_graph([node], "forest64", [helper.make_tensor_value_info("input", TensorProto.DOUBLE, [None, K])],
                              [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def v5_handmade(rng):
    """TreeEnsemble ensembles no exporter writes: every mode including BRANCH_MEMBER
    (small integer sets, sets with members above 30 and non-integers, which onnxruntime
    handles apart, and the member 0), missing tracks, leaves shared by two branches, and
    a one-leaf tree written as the spec says (a root whose two branches are the same
    leaf). onnx's reference evaluator disagrees with onnxruntime on the last two (it
    ends a member set at a 0 member, and reads a one-leaf tree's leaf at the root's
    index, not the leaf its branches name); the spec and onnxruntime agree, weir follows
    them."""
    def ensemble(n_trees, depth, n_targets):
        b = V5Builder()
        members = []

        def grow(d):
            if d == depth or (d > 1 and rng.random() < 0.2):
                return b.leaf(rng.integers(0, n_targets), float(np.float32(rng.normal())))
            mode = int(rng.integers(0, 7))
            if mode == 6:
                f = 7
                size = int(rng.integers(1, 4))
                s = sorted(set(float(v) for v in rng.integers(0, 6, size=size)))
                if rng.random() < 0.3:
                    s.append([40.0, 2.5, 1e6][int(rng.integers(0, 3))])
                members.extend(s + [np.nan])
                split = 0.0
            elif mode in (4, 5):
                f, split = 7, float(rng.integers(0, 6))
            else:
                f, split = int(rng.integers(0, K)), float(np.float32(rng.uniform(-3, 3)))
            me = b.node(f, split, mode, int(rng.random() < 0.5))
            if rng.random() < 0.1:  # both branches on one leaf
                lf = grow(depth)
                b.link(me, lf, lf)
            else:
                b.link(me, grow(d + 1), grow(d + 1))
            return me
        # First, the one-leaf tree: root node 0 whose branches both name leaf 1 (weight
        # -2), and a leaf 0 no branch names (onnx's reference evaluator reads it).
        r = b.node(0, 0.0, "BRANCH_LEQ")
        b.leaf(0, 0.75)
        lf = b.leaf(n_targets - 1, -2.0)
        b.link(r, lf, lf)
        b.a["tree_roots"].append(r[1])
        for _ in range(n_trees):
            b.a["tree_roots"].append(grow(0)[1])
        return b, members

    b, members = ensemble(20, 5, 3)
    yield "v5_spec_member", "hand-built TreeEnsemble: all modes incl. BRANCH_MEMBER, 3 targets, SUM, SOFTMAX_ZERO", make_v5(
        "member", dict(b.a, membership_values=members, aggregate_function=1, post_transform=3), 3)
    b, members = ensemble(12, 4, 1)
    kw = dict(aggregate_function=0, post_transform=2)
    if members:
        kw["membership_values"] = members
    yield "v5_spec_average", "hand-built TreeEnsemble: 1 target, AVERAGE, LOGISTIC (the spec applies it to one target)", make_v5(
        "average", dict(b.a, **kw), 1)
    b, members = ensemble(10, 4, 2)
    kw = dict(aggregate_function=3, post_transform=0)
    if members:
        kw["membership_values"] = members
    yield "v5_spec_max", "hand-built TreeEnsemble: 2 targets, MAX", make_v5("max", dict(b.a, **kw), 2)


def onnx_backend_examples():
    """The two examples of onnx's backend tests for TreeEnsemble (onnx/backend/test/case/
    node/ai_onnx_ml/tree_ensemble.py), checked against onnx's expected outputs here."""
    single = make_v5("single", dict(
        aggregate_function=1, post_transform=0, tree_roots=[0], nodes_modes=[0, 0, 0], nodes_featureids=[0, 0, 0],
        nodes_splits=[3.14, 1.2, 4.2], nodes_truenodeids=[1, 0, 1], nodes_trueleafs=[0, 1, 1],
        nodes_falsenodeids=[2, 2, 3], nodes_falseleafs=[0, 1, 1], leaf_targetids=[0, 1, 0, 1],
        leaf_weights=[5.23, 12.12, -12.23, 7.21]), 2, np.float64)
    x = np.zeros((3, K))
    x[:, :2] = np.array([1.2, 3.4, -0.12, 1.66, 4.14, 1.77]).reshape(3, 2)
    want = np.array([[5.23, 0], [5.23, 0], [0, 12.12]])
    member = make_v5("member", dict(
        aggregate_function=1, post_transform=0, membership_values=[1.2, 3.7, 8, 9, np.nan, 12, 7, np.nan],
        tree_roots=[0], nodes_modes=[0, 6, 6], nodes_featureids=[0, 0, 0], nodes_splits=[11, 232344.0, np.nan],
        nodes_trueleafs=[0, 1, 1], nodes_truenodeids=[1, 0, 1], nodes_falseleafs=[1, 0, 1],
        nodes_falsenodeids=[2, 2, 3], leaf_targetids=[0, 1, 2, 3], leaf_weights=[1, 10, 1000, 100]), 4)
    xm = np.zeros((6, K), dtype=np.float32)
    xm[:, 0] = [1.2, 3.4, -0.12, np.nan, 12, 7]
    want_m = np.array([[1, 0, 0, 0], [0, 0, 0, 100], [0, 0, 0, 100], [0, 0, 1000, 0], [0, 0, 1000, 0], [0, 10, 0, 0]])
    for m, xx, w in [(single, x, want), (member, xm, want_m)]:
        got = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": xx})[0]
        assert np.allclose(got, w), (got, w)
    yield "v5_onnx_single_tree", "onnx backend test tree_ensemble_single_tree (double)", single, {"input_type": "f64"}
    yield "v5_onnx_set_membership", "onnx backend test tree_ensemble_set_membership (float)", member


def spec_post_transform(onx, sess, x):
    """onnxruntime's output for a TreeEnsemble model, with the post-transform applied as
    the spec defines it. onnxruntime 1.32 reads post_transform 1 as LOGISTIC and 2 as
    SOFTMAX (the spec: 1 SOFTMAX, 2 LOGISTIC), and applies only PROBIT to one target
    (its issue #26596); weir follows the spec. So for codes 1 and 2, and for any code
    but PROBIT on one target, the expected output is onnxruntime's raw scores
    (post_transform NONE) transformed here."""
    node = onx.graph.node[0]
    if node.op_type != "TreeEnsemble":
        return sess.run(None, {sess.get_inputs()[0].name: x})
    a = {t.name: helper.get_attribute_value(t) for t in node.attribute}
    post, n_targets = a.get("post_transform", 0), a["n_targets"]
    if post in (0, 4) or (post == 3 and n_targets > 1):
        return sess.run(None, {"input": x})
    raw_model = onnx.ModelProto()
    raw_model.CopyFrom(onx)
    for t in raw_model.graph.node[0].attribute:
        if t.name == "post_transform":
            t.i = 0
    raw = ort.InferenceSession(raw_model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if post == 2:
            out = 1 / (1 + np.exp(-raw))
        elif post == 1:
            e = np.exp(raw - raw.max(axis=1, keepdims=True))
            out = e / e.sum(axis=1, keepdims=True)
        else:  # SOFTMAX_ZERO, one target: zero scores keep zero weight
            nz = np.abs(raw) > 1e-7
            e = np.where(nz, np.exp(raw - raw.max(axis=1, keepdims=True)), raw * np.exp(-raw.max(axis=1, keepdims=True)))
            out = e / np.where(nz, e, 0).sum(axis=1, keepdims=True)
    return [out.astype(raw.dtype)]


def v5_models(X, yb, ym, yr, exported):
    """TreeEnsemble (opset 5) forms of exporter models, and double forests."""
    from sklearn.ensemble import RandomForestRegressor
    yield "v5_sk_forest_reg", "sk_forest_reg rewritten as TreeEnsemble (AVERAGE)", v3_to_v5(exported["sk_forest_reg"])
    yield "v5_sk_forest", "sk_forest (2 classes, dense leaves) rewritten as TreeEnsemble, a tree per target", v3_to_v5(exported["sk_forest"])
    yield "v5_sk_gbt_3class", "sk_gbt_3class rewritten as TreeEnsemble (SOFTMAX, base values as trees)", v3_to_v5(exported["sk_gbt_3class"])
    yield "v5_sk_hgb_reg", "sk_hgb_reg rewritten as TreeEnsemble (missing tracks)", v3_to_v5(exported["sk_hgb_reg"])
    yield "v5_xgb_reg", "xgb_reg rewritten as TreeEnsemble (BRANCH_LT, tracks, base value as a tree)", v3_to_v5(exported["xgb_reg"])
    yield "v5_lgbm_3class", "lgbm_3class rewritten as TreeEnsemble (BRANCH_EQ, SOFTMAX)", v3_to_v5(exported["lgbm_3class"])
    f64 = {"input_type": "f64"}
    yield "v5_xgb_reg_f64", "xgb_reg rewritten as TreeEnsemble in double", v3_to_v5(exported["xgb_reg"], np.float64), f64
    Xi = np.nan_to_num(X, nan=0.0)
    forest = RandomForestRegressor(n_estimators=20, max_depth=6, random_state=1, n_jobs=1).fit(Xi.astype(np.float64), yr)
    yield "v5_sk_forest_reg_f64", "scikit-learn RandomForestRegressor(20, depth 6) as TreeEnsemble in double (its own thresholds)", \
        sklearn_forest_v5(forest, np.float64), f64
    yield "sk_forest_reg_f64", "the same forest as TreeEnsembleRegressor, *_as_tensor doubles, double input", \
        sklearn_forest_v3_double(forest), f64


def double_input_models(X, yb):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType
    from sklearn.ensemble import RandomForestClassifier
    Xi = np.nan_to_num(X, nan=0.0)
    m = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=1, n_jobs=1).fit(Xi, yb)
    yield "sk_forest_f64in", "skl2onnx RandomForestClassifier(30, depth 6), DoubleTensorType input", convert_sklearn(
        m, initial_types=[("input", DoubleTensorType([None, K]))], options={id(m): {"zipmap": False}},
        target_opset={"": 15, "ai.onnx.ml": 3}), {"input_type": "f64"}


def main():
    rng = np.random.default_rng(SEED)
    X_train = rows(SEED + 1, 4000)
    yb, ym, yr = targets(X_train, rng)
    X = rows(SEED, ROWS)
    out_dir = os.path.join(ROOT, "scorer", "tests", "trees")
    model_dir = os.path.join(ROOT, "models", "trees")
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(model_dir, exist_ok=True)
    manifest = {"doc": f"Made by tools/train/train_trees.py with onnxruntime {ort.__version__}; do not edit.",
                "rows": ROWS, "features": K, "seed": SEED, "models": []}
    exported = {}

    def later(f):  # generators that need the exporter models made before them
        yield from f()
    gens = [sklearn_models(X_train, yb, ym, yr), xgboost_models(X_train, yb, ym, yr),
            lightgbm_models(X_train, yb, ym, yr), handmade(np.random.default_rng(SEED + 2)),
            double_input_models(X_train, yb),
            later(lambda: v5_models(X_train, yb, ym, yr, exported)),
            v5_handmade(np.random.default_rng(SEED + 3)), onnx_backend_examples()]
    for gen in gens:
        for name, what, onx, *extra in gen:
            extra = extra[0] if extra else {}
            exported[name] = onx
            onx.graph.name = name  # skl2onnx names graphs with a random uuid
            data = onx.SerializeToString()
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
            # Hand-built models (extra rules, not exporters) get the first SPEC_ROWS rows.
            n = SPEC_ROWS if "spec_" in name or "_onnx_" in name else ROWS
            if extra.get("input_type") == "f64":
                hug = split_thresholds(onx)
                # As bit patterns: JSON readers need not round decimal doubles exactly.
                extra["hug_bits"] = [[int(np.float64(t).view(np.uint64)) for t in col] for col in hug]
                x = hug_rows(SEED, n, hug)
            else:
                x = X[:n]
            outs = spec_post_transform(onx, sess, x)
            meta = []
            blob = b""
            for o, v in zip(sess.get_outputs(), outs):
                v = np.asarray(v)
                if v.dtype == np.float64:
                    v = v.astype("<f8")
                    dt = "f64"
                elif v.dtype == np.float32:
                    v = v.astype("<f4")
                    dt = "f32"
                elif v.dtype.kind in "iu":
                    # Labels: small integers; one byte each keeps the files small.
                    assert v.min() >= -128 and v.max() <= 127, (name, v.min(), v.max())
                    v = v.astype("i1")
                    dt = "i8"
                else:  # string labels: written as indices into the label list
                    labels = [a for a in onx.graph.node[0].attribute if a.name == "classlabels_strings"][0]
                    names = [s.decode() for s in labels.strings]
                    v = np.array([names.index(s) for s in v], dtype="i1")
                    dt = "string_index"
                entry = {"name": o.name, "dtype": dt, "shape": list(v.shape)}
                if dt == "string_index":
                    entry["classlabels"] = names
                meta.append(entry)
                blob += v.tobytes()
            with open(os.path.join(model_dir, f"{name}.onnx"), "wb") as f:
                f.write(data)
            with open(os.path.join(out_dir, f"{name}.out"), "wb") as f:
                f.write(blob)
            ops, modes = ops_and_modes(onx)
            manifest["models"].append({"name": name, "rows": n, "exporter": what, "sha256": hashlib.sha256(data).hexdigest(),
                                       "input": sess.get_inputs()[0].name, "outputs": meta, "ops": ops,
                                       "modes": modes, **extra})
            print(f"{name}: {what}: ops {ops}, modes {modes}, {len(data)} bytes", file=sys.stderr)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
