#!/usr/bin/env python3
"""Write the drift monitor's reference profile (`reference.json`) next to a model.

    python3 tools/train/monitor_reference.py --weir target/debug/weir --model models/fraud-baseline/v1

The reference is what the model was trained on, so `weir run` measures drift from the
first score instead of taking a warm-up on live traffic:

1. Regenerates the model's training data with the command in its metadata
   (`lineage.training_data`: `weir produce --jsonl FILE --seed … --start-ms … --transactions …`).
2. Computes the feature vector of every transaction independently of weir's Rust code
   (the brute-force windows of tools/train/train_baseline.py), keeps the labelled ones and the
   training part (the first `lineage.training_rows`, the time-ordered split the trainer
   used).
3. Samples `--sample` of those rows (numpy, seeded, without replacement, in stream
   order): per feature the sample's values, and the model's score on the same rows from
   onnxruntime (row i of every list is one transaction, so the file can be checked by
   scoring it again). Category counts of the monitored attributes (customer_segment,
   channel, country, currency, as src/stages/score.rs attaches them to scores) are exact over
   all training rows.

Output: `weir_monitor::ReferenceProfile` as JSON — {"numeric": {feature: [..]},
"categorical": {attribute: {value: count}}, "score": [..]}.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from train_baseline import features  # noqa: E402  (same folder: the same independent feature definitions)
from weirtools import events, registry  # noqa: E402

ATTRIBUTES = ["customer_segment", "channel", "country", "currency"]
SEED = 7


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weir", default="target/debug/weir", help="path to the weir binary")
    ap.add_argument("--model", default="models/fraud-baseline/v1", help="model directory (metadata.json)")
    ap.add_argument("--sample", type=int, default=10_000, help="rows sampled for the numeric reference")
    args = ap.parse_args()

    meta = registry.read_metadata(args.model)
    lineage = meta["lineage"]
    flags = dict(re.findall(r"--(seed|start-ms|transactions) (\d+)", lineage["training_data"]))
    assert set(flags) == {"seed", "start-ms", "transactions"}, lineage["training_data"]

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "events.jsonl")
        cmd = [args.weir, "produce", "--jsonl", path] + [x for k in ("seed", "start-ms", "transactions") for x in (f"--{k}", flags[k])]
        subprocess.run(cmd, check=True)
        txs, labels = events.read_produced(path)
    X, ids = features(txs)
    keep = [i for i, eid in enumerate(ids) if eid in labels]
    cut = int(lineage["training_rows"])
    train = keep[:cut]
    print(f"{len(txs)} transactions, {len(keep)} labelled, {len(train)} training rows", file=sys.stderr)

    # The regenerated rows are the training rows: their means are the ones the trainer
    # recorded (when it did).
    recorded = meta.get("reference", {}).get("means")
    if recorded is not None:
        means = X[train].mean(axis=0)
        assert np.allclose(means, recorded, rtol=1e-9, atol=1e-12), (means, recorded)

    rng = np.random.default_rng(SEED)
    n = min(args.sample, len(train))
    rows = np.sort(rng.choice(len(train), size=n, replace=False))
    Xs = X[[train[i] for i in rows]]

    import onnxruntime as ort
    sess = ort.InferenceSession(os.path.join(args.model, meta["onnx_file"]), providers=["CPUExecutionProvider"])
    out = sess.run([meta["output_name"]], {meta["input_name"]: Xs.astype(np.float32)})[0]
    scores = out[:, int(meta["positive_class_index"])].astype(np.float64)

    names = meta["feature_names"]
    assert Xs.shape[1] == len(names)
    profile = {
        "numeric": {name: [float(v) for v in Xs[:, j]] for j, name in enumerate(names)},
        "categorical": {a: dict(sorted(Counter(txs[i][a] for i in train).items())) for a in ATTRIBUTES},
        "score": [float(s) for s in scores],
    }
    target = os.path.join(args.model, "reference.json")
    with open(target, "w") as f:
        json.dump(profile, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {target}: {n} rows, score mean {scores.mean():.5f}", file=sys.stderr)


if __name__ == "__main__":
    main()
