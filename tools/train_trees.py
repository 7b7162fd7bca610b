#!/usr/bin/env python3
"""Tree-ensemble models from three exporters, and onnxruntime's outputs for them: the
parity fixtures of weir's own tree ops (scorer/src/trees, test scorer/tests/trees.rs).

    ~/.cache/weir/venv/bin/python tools/train_trees.py

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

Models: scikit-learn (RandomForest classifier and regressor, GradientBoosting binary
(the standard skl2onnx export: one base value, LOGISTIC) and 3-class (SOFTMAX),
HistGradientBoosting) through skl2onnx; XGBoost and LightGBM (binary, multi-class,
regression; LightGBM with a categorical feature, which becomes BRANCH_EQ nodes) through
onnxmltools; and hand-built ensembles for what no exporter writes (every node mode,
missing-value tracks, string labels, PROBIT, SOFTMAX_ZERO, MIN/MAX/AVERAGE).
"""
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, TensorProto

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
            if a.name == "nodes_modes":
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

    def regressor(name, n_targets, post, agg, base, trees=20, depth=5):
        a = random_ensemble(rng, trees, depth, n_targets,
                            lambda r: sorted(set(int(c) for c in r.integers(0, n_targets, size=2))))
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


def main():
    rng = np.random.default_rng(SEED)
    X_train = rows(SEED + 1, 4000)
    yb, ym, yr = targets(X_train, rng)
    X = rows(SEED, ROWS)
    out_dir = os.path.join(ROOT, "scorer", "tests", "trees")
    model_dir = os.path.join(ROOT, "models", "trees")
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(model_dir, exist_ok=True)
    manifest = {"doc": f"Made by tools/train_trees.py with onnxruntime {ort.__version__}; do not edit.",
                "rows": ROWS, "features": K, "seed": SEED, "models": []}
    gens = [sklearn_models(X_train, yb, ym, yr), xgboost_models(X_train, yb, ym, yr),
            lightgbm_models(X_train, yb, ym, yr), handmade(np.random.default_rng(SEED + 2))]
    for gen in gens:
        for name, what, onx in gen:
            data = onx.SerializeToString()
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
            # Hand-built models (extra rules, not exporters) get the first SPEC_ROWS rows.
            n = SPEC_ROWS if name.startswith("spec_") else ROWS
            outs = sess.run(None, {sess.get_inputs()[0].name: X[:n]})
            meta = []
            blob = b""
            for o, v in zip(sess.get_outputs(), outs):
                v = np.asarray(v)
                if v.dtype == np.float32 or v.dtype == np.float64:
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
                                       "modes": modes})
            print(f"{name}: {what}: ops {ops}, modes {modes}, {len(data)} bytes", file=sys.stderr)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
