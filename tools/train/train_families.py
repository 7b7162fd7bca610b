#!/usr/bin/env python3
"""Train one model of each family weir serves, export each to ONNX in a form tract loads,
and write onnxruntime's scores for fixed inputs as golden files.

    ~/.cache/weir/venv/bin/python tools/train/train_families.py --weir target/debug/weir

Families (all on weir's 9 baseline features, same data and split as
tools/train/train_baseline.py, whose feature computation — independent of weir's Rust code —
is reused):

- `logistic`: logistic regression on standardized features, the scaling folded into the
  coefficients (one `LinearClassifier` node; tract does not register `Scaler`).
- `mlp`: scikit-learn MLPClassifier (32, 16), relu, the scaling folded into the first
  layer's weights (MatMul/Add/Relu/Sigmoid in ONNX).
- `gbt`: scikit-learn GradientBoostingClassifier, exported as skl2onnx writes it: a
  binary `TreeEnsembleClassifier` with one base value and `LOGISTIC`. tract 0.23.9's own
  op refuses that form (`base_values: length 1 (or undefined), got 2`); weir registers
  its own tree-ensemble ops (scorer/src/trees), which follow onnxruntime's binary rules.
- `forest`: scikit-learn RandomForestClassifier (`TreeEnsembleClassifier`, averaged).

Each model is checked three ways before it is written: onnxruntime's probabilities
against scikit-learn's on the held-out rows (to 1e-4), and only ops tract registers are
used (no ZipMap: `zipmap=False`). Written:

- models/families/<family>/{model.onnx, metadata.json}   a registry version (v1)
- scorer/tests/golden_<family>.json   rows (the 20 synthetic rows of golden_baseline.py
  plus 44 held-out rows) and onnxruntime's positive-class probabilities for them; weir's
  `scorer` unit test `families_match_onnxruntime` compares tract's scores to 1e-5.

metadata.json carries `reference` (per-feature mean and a 10-bin histogram of the
training rows): reason codes measure contributions against the means, the monitor takes
its drift reference from the histograms.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
from onnx import helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.neural_network import MLPClassifier

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import train_baseline as tb  # noqa: E402  (same folder)
from golden import golden_baseline  # noqa: E402  (the 20 synthetic rows)
from weirtools import ROOT, events, registry  # noqa: E402
# The op names weir's tract loader registers: tract-onnx 0.23.9's `op_register` (read from
# its source) plus weir's own tree-ensemble ops (scorer/src/trees).
TRACT_OPS = {
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "ArrayFeatureExtractor", "Asin", "Asinh",
    "Atan", "Atanh", "Attention", "AveragePool", "BatchNormalization", "BiasGelu", "BitShift", "BitwiseAnd",
    "BitwiseNot", "BitwiseOr", "BitwiseXor", "BlackmanWindow", "Cast", "CastLike", "CategoryMapper", "Ceil",
    "Celu", "Clip", "Compress", "Concat", "Constant", "ConstantLike", "ConstantOfShape", "Conv",
    "ConvInteger", "ConvTranspose", "Cos", "Cosh", "CumSum", "DFT", "DepthToSpace", "DequantizeLinear",
    "Div", "Dropout", "DynamicQuantizeLinear", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike",
    "FastGelu", "Flatten", "Floor", "GRU", "Gather", "GatherBlockQuantized", "GatherElements", "GatherND",
    "Gelu", "Gemm", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual",
    "GridSample", "GroupNormalization", "GroupQueryAttention", "HammingWindow", "HannWindow", "HardSigmoid",
    "HardSwish", "Hardmax", "Identity", "If", "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LSTM",
    "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "LinearClassifier", "LinearRegressor", "Log",
    "LogSoftmax", "LpNormalization", "MatMul", "MatMulInteger", "MatMulNBits", "Max", "MaxPool", "Mean",
    "MeanVarianceNormalization", "MelWeightMatrix", "Min", "Mish", "Mod", "Mul", "MultiHeadAttention",
    "Multinomial", "Neg", "NonMaxSuppression", "NonZero", "Normalizer", "Not", "OneHot", "Or", "PRelu",
    "Pad", "ParametricSoftplus", "Pow", "QLinearConv", "QLinearMatMul", "QuantizeLinear", "QuickGelu",
    "RMSNormalization", "RNN", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
    "Range", "Reciprocal", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
    "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize", "RotaryEmbedding", "Round",
    "Rsqrt", "STFT", "ScaledTanh", "Scan", "Scatter", "ScatterElements", "ScatterND", "Selu", "Shape",
    "Shrink", "Sigmoid", "Sign", "SimplifiedLayerNormalization", "Sin", "Sinh", "Size",
    "SkipLayerNormalization", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt",
    "Squeeze", "Sub", "Sum", "Swish", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose",
    "TreeEnsembleClassifier", "TreeEnsembleRegressor", "Trilu", "Unsqueeze", "Where", "Xor",
}


def export(model, n_features):
    onx = convert_sklearn(model, initial_types=[("input", FloatTensorType([None, n_features]))],
                          options={id(model): {"zipmap": False}}, target_opset={"": 15, "ai.onnx.ml": 3})
    return onx


def check_ops(onx, family):
    ops = {n.op_type for n in onx.graph.node}
    bad = ops - TRACT_OPS
    assert not bad, f"{family}: ops tract does not load: {bad}"
    return sorted(ops)


def ort_probs(data, X):
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(["probabilities"], {"input": X.astype(np.float32)})[0][:, 1]


def fixtures(baseline_dir, X, y):
    """Broken versions for the refusal tests, each a copy of the baseline's metadata with
    its own sha256: `nan` (a small graph whose every score is NaN: 0/0; a NaN
    coefficient in a LinearClassifier is not enough, tract's sigmoid clamps it),
    `zipmap` (a logistic regression exported with ZipMap) and `scaler` (a scikit-learn
    StandardScaler + LogisticRegression pipeline: an ONNX-ML Scaler node)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    base_meta = registry.read_metadata(baseline_dir)
    base = onnx.load(os.path.join(baseline_dir, "model.onnx"))
    # NaN for every row: p = (s - s) / (s - s) with s = x · 1, probabilities = [1 - p, p].
    k = X.shape[1]
    nan = helper.make_model(
        helper.make_graph(
            [helper.make_node("MatMul", ["input", "ones"], ["s"]),
             helper.make_node("Sub", ["s", "s"], ["z"]),
             helper.make_node("Div", ["z", "z"], ["p"]),
             helper.make_node("Sub", ["one", "p"], ["q"]),
             helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1)],
            "nan",
            [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [None, k])],
            [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, 2])],
            [onnx.numpy_helper.from_array(np.ones((k, 1), dtype=np.float32), "ones"),
             onnx.numpy_helper.from_array(np.ones((1, 1), dtype=np.float32), "one")]),
        opset_imports=[helper.make_opsetid("", 15)])
    nan.ir_version = 8
    lr = LogisticRegression(max_iter=500).fit(X[:5000], y[:5000])
    zipmap = convert_sklearn(lr, initial_types=[("input", FloatTensorType([None, X.shape[1]]))])
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X[:5000], y[:5000])
    scaler = export(pipe, X.shape[1])
    for name, model in [("nan", nan), ("zipmap", zipmap), ("scaler", scaler)]:
        data = model.SerializeToString()
        out = os.path.join(ROOT, "models", "fixtures", name)
        meta = dict(base_meta, version=name, sha256=registry.sha256(data),
                    lineage=dict(base_meta["lineage"], trained_by="tools/train/train_families.py (test fixture)"))
        if name == "zipmap":
            meta["output_name"] = "output_probability"
        registry.write_version(out, data, meta)
        print(f"wrote fixture {out}: ops {sorted({n.op_type for n in model.graph.node})}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weir", default="target/debug/weir", help="path to the weir binary")
    ap.add_argument("--families", default="logistic,mlp,gbt,forest")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.jsonl")
        data_cmd = tb.produce(args.weir, path)
        txs, labels = events.read_produced(path)
    X, ids = tb.features(txs)
    keep = [i for i, eid in enumerate(ids) if eid in labels]
    X = X[keep]
    y = np.array([1 if labels[ids[i]] else 0 for i in keep])
    cut = int(len(y) * 0.8)
    mu, sigma = X[:cut].mean(axis=0), X[:cut].std(axis=0)
    sigma[sigma == 0] = 1.0
    k = X.shape[1]
    # The baseline (tools/train/train_baseline.py, same data and split) gets the same reference.
    baseline_dir = os.path.join(ROOT, "models", "fraud-baseline", "v1")
    base_meta = registry.read_metadata(baseline_dir)
    base_meta["reference"] = registry.reference(X[:cut])
    registry.write_metadata(baseline_dir, base_meta)
    fixtures(baseline_dir, X, y)
    golden_rows = np.vstack([np.array([golden_baseline.row(i) for i in range(golden_baseline.ROWS)]),
                             X[cut:cut + 44]]).astype(np.float32)

    for family in args.families.split(","):
        if family == "logistic":
            # Stronger regularization than the baseline (C = 1): a different linear model.
            C = 0.01
            clf = LogisticRegression(C=C, max_iter=2000, random_state=tb.SEED).fit((X[:cut] - mu) / sigma, y[:cut])
            model = LogisticRegression()
            model.classes_ = clf.classes_
            model.coef_ = clf.coef_ / sigma
            model.intercept_ = clf.intercept_ - (clf.coef_ / sigma) @ mu
            model.n_features_in_ = k
            hyper = {"C": C, "solver": "lbfgs", "standardized_then_folded": True}
            kind = "logistic_regression"
        elif family == "mlp":
            model = MLPClassifier(hidden_layer_sizes=(32, 16), activation="relu", alpha=1e-3, max_iter=300,
                                  early_stopping=True, random_state=tb.SEED).fit((X[:cut] - mu) / sigma, y[:cut])
            # Fold the standardization into the first layer: ((x-mu)/sigma) W + b = x (W/sigma) + (b - (mu/sigma) W).
            W = model.coefs_[0]
            model.intercepts_[0] = model.intercepts_[0] - (mu / sigma) @ W
            model.coefs_[0] = W / sigma[:, None]
            hyper = {"hidden_layer_sizes": [32, 16], "activation": "relu", "alpha": 1e-3, "early_stopping": True,
                     "standardized_then_folded": True}
            kind = "mlp"
        elif family == "gbt":
            model = GradientBoostingClassifier(n_estimators=60, max_depth=3, learning_rate=0.1,
                                               random_state=tb.SEED).fit(X[:cut], y[:cut])
            hyper = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.1, "export": "skl2onnx binary form"}
            kind = "gradient_boosting"
        elif family == "forest":
            model = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=tb.SEED,
                                           n_jobs=1).fit(X[:cut], y[:cut])
            hyper = {"n_estimators": 30, "max_depth": 6}
            kind = "random_forest"
        else:
            raise SystemExit(f"unknown family {family}")

        onx = export(model, k)
        onnx.checker.check_model(onx)
        ops = check_ops(onx, family)
        data = onx.SerializeToString()
        p_test = model.predict_proba(X[cut:])[:, 1]
        p_ort = ort_probs(data, X[cut:])
        err = float(np.max(np.abs(p_ort - p_test)))
        auc = roc_auc_score(y[cut:], p_ort)
        ll = log_loss(y[cut:], np.clip(p_ort, 1e-7, 1 - 1e-7))
        print(f"{family}: ops {ops}, held-out AUC {auc:.4f}, log loss {ll:.4f}, "
              f"onnxruntime vs scikit-learn {err:.2e}", file=sys.stderr)
        assert err < 1e-4, err

        out = os.path.join(ROOT, "models", "families", family)
        meta = registry.metadata(
            "fraud", f"{family}-v1", kind, data, tb.FEATURES,
            registry.lineage("tools/train/train_families.py", data_cmd, cut, tb.SEED, hyper),
            registry.holdout_metrics(auc, ll, len(y) - cut),
            reference=registry.reference(X[:cut]))
        registry.write_version(out, data, meta)
        golden = {
            "doc": f"Made by tools/train/train_families.py with onnxruntime {ort.__version__}; do not edit.",
            "model_sha256": meta["sha256"],
            "rows": [[float(v) for v in r] for r in golden_rows],
            "expected": [float(p) for p in ort_probs(data, golden_rows)],
        }
        with open(os.path.join(ROOT, "scorer", "tests", f"golden_{family}.json"), "w") as f:
            json.dump(golden, f, indent=1)
            f.write("\n")
        print(f"wrote {out} and scorer/tests/golden_{family}.json", file=sys.stderr)


if __name__ == "__main__":
    main()
