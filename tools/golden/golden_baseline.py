#!/usr/bin/env python3
"""Golden scores of the baseline model from onnxruntime, for weir-scorer's unit tests.

    ~/.cache/weir/venv/bin/python tools/golden/golden_baseline.py

Writes scorer/tests/golden_baseline.json: 20 deterministic feature rows (no RNG, so the
file does not depend on numpy's generators), the probabilities of the positive class that
onnxruntime gives for them, and the sha256 of the model they were computed with. The
unit test `model::tests::matches_onnxruntime_golden_scores` compares tract's scores to
these. Rerun after retraining the baseline.
"""
import json
import math
import os
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from weirtools import ROOT, registry  # noqa: E402
MODEL_DIR = os.path.join(ROOT, "models", "fraud-baseline", "v1")
OUT = os.path.join(ROOT, "scorer", "tests", "golden_baseline.json")
ROWS = 20


def row(i):
    """Row i: every feature in a plausible range, plus a few extremes."""
    if i == 0:
        return [0.0] * 9
    if i == 1:
        return [1.0] * 9
    amount = round(math.exp(1.0 + 0.37 * i) - 1.0, 2)  # 1.5 .. ~3000
    hour = (7 * i) % 24
    channel = i % 3  # 0 pos, 1 ecom, 2 atm
    count_1m = 1 + (i * 5) % 13
    sum_1m = round(count_1m * amount * (0.5 + (i % 4) * 0.25), 2)
    count_1h = count_1m + (i * 11) % 40
    sum_1h = round(sum_1m + (count_1h - count_1m) * 20.0 * (1 + i % 5), 2)
    mean_1h = sum_1h / count_1h
    return [
        math.log1p(amount),
        float(hour),
        1.0 if channel == 1 else 0.0,
        1.0 if channel == 2 else 0.0,
        float(count_1m),
        sum_1m,
        float(count_1h),
        sum_1h,
        amount / mean_1h if mean_1h > 0 else 1.0,
    ]


def main():
    meta = registry.read_metadata(MODEL_DIR)
    with open(os.path.join(MODEL_DIR, meta["onnx_file"]), "rb") as f:
        onnx_bytes = f.read()
    sha = registry.sha256(onnx_bytes)
    assert sha == meta["sha256"], "metadata.json sha256 does not match model.onnx"
    # float32 exactly as tract will see it; float() of a float32 is exact in JSON.
    rows = np.array([row(i) for i in range(ROWS)], dtype=np.float32)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = session.run([meta["output_name"]], {meta["input_name"]: rows})
    probs = outputs[0][:, meta["positive_class_index"]]
    golden = {
        "doc": "Made by tools/golden/golden_baseline.py with onnxruntime " + ort.__version__ + "; do not edit.",
        "model_sha256": sha,
        "feature_names": meta["feature_names"],
        "rows": [[float(v) for v in r] for r in rows],
        "expected": [float(p) for p in probs],
    }
    with open(OUT, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {ROWS} rows, scores {min(golden['expected']):.4f} .. {max(golden['expected']):.4f}")


if __name__ == "__main__":
    main()
