#!/usr/bin/env python3
"""Golden results for weir-online-learner, computed independently of its Rust code.

    cargo run -p weir-online-learner --example export_fixture -- online-learner/tests/golden
    python3 tools/golden/learner_golden.py online-learner/tests/golden

1. eval.json: seeded samples (scores, labels, with ties and edge values) and the
   metrics scikit-learn / numpy give for them: roc_auc_score, log_loss, precision and
   recall at 0.5 (zero_division -> null), accuracy at 0.5, and the expected calibration error over 10
   equal-width bins (numpy, from its definition).
2. linear_expected.json: onnxruntime's probabilities for the rows of linear_rows.json run
   through linear.onnx (the learner's export, written by the example above).
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score, roc_auc_score


def ece(p, y, bins):
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(p) * abs(p[m].mean() - y[m].mean())
    return float(total)


def metrics(p, y):
    flagged = (p >= 0.5).astype(int)
    out = {
        "auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "precision": float(precision_score(y, flagged, zero_division=np.nan)) if flagged.sum() else None,
        "recall": float(recall_score(y, flagged, zero_division=np.nan)) if y.sum() else None,
        "calibration_error": ece(p, y, 10),
        "accuracy": float(accuracy_score(y, flagged)),
    }
    return out


def samples():
    rng = np.random.default_rng(5)
    cases = []
    for n, rate in [(50, 0.3), (400, 0.05), (2000, 0.02), (1000, 0.5)]:
        y = (rng.random(n) < rate).astype(int)
        p = np.clip(rng.beta(1 + 3 * y, 4 - 2 * y), 0, 1)
        # Ties and edge values: rounding makes many equal scores; exact 0 and 1 occur.
        if n == 400:
            p = np.round(p, 2)
        if n == 50:
            p[0], p[1] = 0.0, 1.0
        cases.append((p, y))
    return cases


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "online-learner/tests/golden"
    cases = [{"scores": p.tolist(), "labels": [bool(v) for v in y], "expected": metrics(p, y)} for p, y in samples()]
    with open(os.path.join(out_dir, "eval.json"), "w") as f:
        json.dump({"generated_by": "tools/golden/learner_golden.py", "cases": cases}, f)
        f.write("\n")

    rows = np.array(json.load(open(os.path.join(out_dir, "linear_rows.json")))["rows"], dtype=np.float32)
    sess = ort.InferenceSession(os.path.join(out_dir, "linear.onnx"), providers=["CPUExecutionProvider"])
    probs = sess.run(["probabilities"], {"input": rows})[0]
    with open(os.path.join(out_dir, "linear_expected.json"), "w") as f:
        json.dump({"generated_by": f"tools/golden/learner_golden.py with onnxruntime {ort.__version__}",
                   "probabilities": probs[:, 1].astype(float).tolist()}, f)
        f.write("\n")
    print(f"{len(cases)} metric cases, {len(rows)} onnxruntime rows", file=sys.stderr)


if __name__ == "__main__":
    main()
