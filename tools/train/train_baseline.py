#!/usr/bin/env python3
"""Train weir's baseline fraud model and export it to ONNX with its metadata.

    python3 tools/train/train_baseline.py --weir target/debug/weir --out models/fraud-baseline/v1

1. Runs `weir produce --jsonl` (seeded, fixed start time) for training data.
2. Computes weir's feature vector for every transaction *independently of weir's Rust
   code*, from the definitions in features/src/definitions.rs and features/src/windows/
   (sliding windows of panes in event time, per card).
3. Joins transactions to the labels that arrived (by event id); unlabelled ones are
   dropped, as they would be in production.
4. Fits a logistic regression on standardized features, then folds the scaling into the
   coefficients so the exported graph is a single LinearClassifier (tract does not
   register the ONNX-ML Scaler op), exports it with skl2onnx (no ZipMap), checks
   onnxruntime's scores against scikit-learn's, and writes metadata.json.
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, log_loss

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from weirtools import events, registry  # noqa: E402  (reading `weir produce --jsonl`; the registry version writer)

WINDOWS = [("1m", 60_000, 5_000), ("1h", 3_600_000, 60_000)]  # name, length ms, pane ms
LATENESS_MS = 60_000
FEATURES = (
    ["amount_log", "hour_of_day", "channel_ecom", "channel_atm"]
    + [f"card_{k}_{w[0]}" for w in WINDOWS for k in ("count", "amount_sum")]
    + ["amount_to_card_mean_1h"]
)
SEED = 7
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TRANSACTIONS = 60_000


def produce(weir, path):
    cmd = [weir, "produce", "--jsonl", path, "--seed", str(SEED), "--start-ms", str(START_MS),
           "--transactions", str(TRANSACTIONS)]
    subprocess.run(cmd, check=True)
    return " ".join(["weir", "produce", "--jsonl", "FILE"] + cmd[4:])


def features(events):
    """Feature rows in stream order, computed by brute force over each card's history."""
    history = defaultdict(list)  # card -> [(t, amount)] applied so far
    max_t = {}
    rows, ids = [], []
    for e in events:
        card, t, amount = e["card_id"], e["event_time"], e["amount"]
        if card in max_t and t < max_t[card] - LATENESS_MS:
            applied = False  # late: not applied (never happens in generated data)
        else:
            history[card].append((t, amount))
            max_t[card] = max(max_t.get(card, t), t)
            applied = True
        assert applied
        row = [math.log1p(max(amount, 0.0)), (t // 3_600_000) % 24,
               1.0 if e["channel"] == "ecom" else 0.0, 1.0 if e["channel"] == "atm" else 0.0]
        for _, length, pane in WINDOWS:
            last = t // pane
            first = last - length // pane + 1
            inside = [a for (u, a) in history[card] if first <= u // pane <= last]
            row += [float(len(inside)), float(sum(inside))]
        count, total = row[-2], row[-1]  # the 1h window is the last and the longest
        mean = total / count if count > 0 else 0.0
        row.append(amount / mean if mean > 0 else 1.0)
        rows.append(row)
        ids.append(e["event_id"])
    return np.array(rows, dtype=np.float64), ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weir", default="target/debug/weir", help="path to the weir binary")
    ap.add_argument("--out", default="models/fraud-baseline/v1")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.jsonl")
        data_cmd = produce(args.weir, path)
        txs, labels = events.read_produced(path)
    X, ids = features(txs)
    keep = [i for i, eid in enumerate(ids) if eid in labels]
    X = X[keep]
    y = np.array([1 if labels[ids[i]] else 0 for i in keep])
    print(f"{len(txs)} transactions, {len(keep)} labelled, fraud rate {y.mean():.4f}", file=sys.stderr)

    # Time-ordered split: train on the first 80 %, evaluate on the rest.
    cut = int(len(y) * 0.8)
    mu, sigma = X[:cut].mean(axis=0), X[:cut].std(axis=0)
    sigma[sigma == 0] = 1.0
    C = 1.0
    clf = LogisticRegression(C=C, max_iter=2000, random_state=SEED)
    clf.fit((X[:cut] - mu) / sigma, y[:cut])

    # Fold the standardization into the linear model: w·(x-mu)/sigma + b = (w/sigma)·x + (b - w·mu/sigma).
    raw = LogisticRegression()
    raw.classes_ = clf.classes_
    raw.coef_ = clf.coef_ / sigma
    raw.intercept_ = clf.intercept_ - (clf.coef_ / sigma) @ mu
    raw.n_features_in_ = X.shape[1]
    p_test = raw.predict_proba(X[cut:])[:, 1]
    assert np.allclose(p_test, clf.predict_proba((X[cut:] - mu) / sigma)[:, 1], atol=1e-9)
    auc = roc_auc_score(y[cut:], p_test)
    ll = log_loss(y[cut:], p_test)
    print(f"held-out AUC {auc:.4f}, log loss {ll:.4f}", file=sys.stderr)

    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    import onnxruntime as ort

    onx = convert_sklearn(raw, initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
                          options={id(raw): {"zipmap": False}})
    # Stable bytes: no producer version noise beyond what skl2onnx sets.
    data = onx.SerializeToString()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    probs = sess.run(None, {"input": X[cut:].astype(np.float32)})[out_names.index("probabilities")][:, 1]
    err = float(np.max(np.abs(probs - p_test)))
    print(f"onnxruntime vs scikit-learn max abs diff {err:.2e}", file=sys.stderr)
    assert err < 1e-4, err

    meta = registry.metadata(
        "fraud-baseline", "v1", "logistic_regression", data, FEATURES,
        registry.lineage("tools/train/train_baseline.py", data_cmd, cut, SEED,
                         {"C": C, "solver": "lbfgs", "standardized_then_folded": True}),
        registry.holdout_metrics(auc, ll, len(y) - cut))
    registry.write_version(args.out, data, meta)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
