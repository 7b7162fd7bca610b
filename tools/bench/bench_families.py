#!/usr/bin/env python3
"""tract vs onnxruntime per model family at batch 1, 16 and 64, in one run, as ratios.

    ~/.cache/weir/venv/bin/python tools/bench/bench_families.py [--min-ms 500]
    ~/.cache/weir/venv/bin/python tools/bench/bench_families.py --trees [--min-ms 300] [--only NAME]

With --trees: weir's own tree-ensemble ops inside tract (example `bench_trees`, release
build) against onnxruntime on every model of models/trees (tools/train/train_trees.py), on
the same seeded rows (5 % NaN; as doubles for the double-input models), batch 1, 16 and
64, one thread each, in one run.

Runs weir-scorer's `bench_families` example (release build; tract, through weir's LoadedModel: fixed
plan per batch size, one thread) and then onnxruntime (from PyPI, one intra-op thread,
called from Python, so its figures include the Python call overhead) on the same rows
(scorer/tests/golden_<family>.json) and the same model files (models/families/), and
prints µs per row for both and tract/onnxruntime. Timing on a shared machine: compare the
ratios, not the absolute figures.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from weirtools import ROOT  # noqa: E402


def time_ort(sess, x, min_ms):
    name = sess.get_inputs()[0].name
    for _ in range(10):
        sess.run(None, {name: x})
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_ms / 1000 or calls < 5:
        sess.run(None, {name: x})
        calls += 1
    return (time.perf_counter() - start) * 1e6 / calls


def trees(args):
    ort.set_default_logger_severity(3)  # LightGBM's label shape note on every call
    from train.train_trees import rows
    cmd = ["cargo", "run", "--release", "--quiet", "-p", "weir-scorer", "--example", "bench_trees", "--",
           "--min-ms", str(args.min_ms)] + (["--only", args.only] if args.only else [])
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    weir = {(r["model"], r["batch"]): r for r in map(json.loads, out.strip().splitlines())}
    with open(os.path.join(ROOT, "scorer", "tests", "trees", "manifest.json")) as f:
        manifest = json.load(f)
    x = rows(manifest["seed"], 64)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    print(f"{'model':<22} {'batch':>5} {'weir us/row':>12} {'ort us/row':>11} {'weir/ort':>9}")
    for m in manifest["models"]:
        if args.only and m["name"] != args.only:
            continue
        sess = ort.InferenceSession(os.path.join(ROOT, "models", "trees", m["name"] + ".onnx"), opts,
                                    providers=["CPUExecutionProvider"])
        xm = x.astype(np.float64) if m.get("input_type") == "f64" else x  # double models: the same rows
        for batch in (1, 16, 64):
            ort_row = time_ort(sess, xm[:batch], args.min_ms) / batch
            w_row = weir[(m["name"], batch)]["us_per_row"]
            print(f"{m['name']:<22} {batch:>5} {w_row:>12.3f} {ort_row:>11.3f} {w_row / ort_row:>9.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--min-ms", type=int, default=500)
    ap.add_argument("--trees", action="store_true", help="weir's tree ops vs onnxruntime on models/trees")
    ap.add_argument("--only", help="with --trees: one model")
    args = ap.parse_args()
    if args.trees:
        return trees(args)
    out = subprocess.run(["cargo", "run", "--release", "--quiet", "-p", "weir-scorer", "--example", "bench_families", "--",
                          "--min-ms", str(args.min_ms)], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    tract = {(r["family"], r["batch"]): r for r in map(json.loads, out.strip().splitlines())}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    print(f"{'family':<10} {'batch':>5} {'tract us/row':>13} {'ort us/row':>11} {'tract/ort':>10}")
    for family in ["logistic", "mlp", "gbt", "forest"]:
        with open(os.path.join(ROOT, "scorer", "tests", f"golden_{family}.json")) as f:
            rows = np.array(json.load(f)["rows"], dtype=np.float32)
        sess = ort.InferenceSession(os.path.join(ROOT, "models", "families", family, "model.onnx"), opts,
                                    providers=["CPUExecutionProvider"])
        for batch in (1, 16, 64):
            x = rows[:batch]
            for _ in range(3):
                sess.run(["probabilities"], {"input": x})
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < args.min_ms / 1000 or calls < 5:
                sess.run(["probabilities"], {"input": x})
                calls += 1
            ort_row = (time.perf_counter() - start) * 1e6 / calls / batch
            t_row = tract[(family, batch)]["us_per_row"]
            print(f"{family:<10} {batch:>5} {t_row:>13.3f} {ort_row:>11.3f} {t_row / ort_row:>10.2f}")


if __name__ == "__main__":
    main()
