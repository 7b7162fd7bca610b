#!/usr/bin/env python3
"""Train the interactions model (weir's second example schema) and write the golden of
its end-to-end test.

    python3 tools/train/train_interactions.py --weir target/debug/weir

1. Runs `weir produce --kind interactions --jsonl` (seeded, fixed start time) for
   training data: recommendation-style interactions (schemas/avro/interaction.avsc) and
   their delayed labels (`is_fraud` = this interaction led to a purchase).
2. Computes weir's feature vector for every interaction *independently of weir's Rust
   code*, from the documented semantics of the feature definitions in
   weir.interactions.toml, by brute force over each entity's history (no panes, no
   rings): a window of length L and pane P as of event time t holds the events u with
   floor(u/P) in [floor(t/P) - L/P + 1, floor(t/P)], the current event included.
3. Joins interactions to the labels that arrived; unlabelled ones are dropped.
4. Fits a logistic regression on standardized features, folds the scaling into the
   coefficients (tract has no ONNX-ML Scaler), exports it with skl2onnx (no ZipMap),
   checks onnxruntime against scikit-learn, and writes models/interactions/v1/
   (model.onnx, metadata.json with the training reference, reference.json for the
   monitor: the format of models/fraud-baseline/v1 and tools/train/monitor_reference.py).
5. The golden of tests/tests/interactions.rs: for a fixed seed and a small stream, every
   event's feature vector (Python, float64) and its score (onnxruntime on those features
   as float32), in tests/golden/interactions/.

Feature semantics (weir-features implements exactly these):
  count: events in the window. mean(f): sum of non-missing values / their number, 0 if
  none. max(f): max of non-missing, 0 if none. distinct(f): distinct values among the
  window's events (exact: the golden stream keeps every entity under 256 events a day).
  seconds_since_last: (t - newest earlier applied event time of the entity) / 1000, -1
  for its first event. hour_of_day = floor(t/3600000) mod 24; day_of_week =
  (floor(t/86400000) + 3) mod 7 (0 = Monday); price_log = ln(1 + max(price, 0)); one_hot:
  1 when equal; value: dwell_ms or 0; ratio_to_mean: price / the user's 24h mean price
  (this event included), 1 when that mean is <= 0. An event more than 60 s behind its
  entity's newest, or behind its partition's newest - 60 s, is late (not applied); the
  generator emits in event-time order, so none is (checked).
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict, deque

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from weirtools import registry  # noqa: E402  (the registry version writer)
from weirtools.events import read_produced  # noqa: E402  (reading `weir produce --jsonl`)

LATENESS_MS = 60_000
WINDOWS = {"10m": (600_000, 30_000), "1h": (3_600_000, 60_000), "24h": (86_400_000, 1_800_000)}
USER_WINDOWS = ["10m", "1h", "24h"]
ITEM_WINDOWS = ["1h", "24h"]
LONGEST_MS = max(length for length, _ in WINDOWS.values())
USER_AGGS = ["count", "dwell_ms_mean", "item_id_distinct", "item_category_distinct", "item_price_mean", "item_price_max"]
ITEM_AGGS = ["count", "user_id_distinct", "dwell_ms_mean"]
FEATURES = (
    ["hour_of_day", "day_of_week", "price_log", "action_click", "action_add_to_cart", "device_ios", "device_android",
     "dwell_ms"]
    + [f"user_{a}_{w}" for w in USER_WINDOWS for a in USER_AGGS]
    + ["user_seconds_since_last"]
    + [f"item_{a}_{w}" for w in ITEM_WINDOWS for a in ITEM_AGGS]
    + ["price_to_user_mean_24h"]
)
# The attributes `[input] attributes` puts on each score (what the monitor groups by).
ATTRIBUTES = {"segment": ("user", "segment"), "device": ("device",), "country": ("user", "country")}

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a Thursday
TRAIN = {"seed": 11, "events": 150_000}
GOLDEN = {"seed": 2026, "events": 3_000, "event_rate": 0.4}
DISTINCT_EXACT_LIMIT = 256
REFERENCE_SAMPLE = 2_000


def produce(weir, path, seed, events, event_rate=None):
    cmd = [weir, "produce", "--kind", "interactions", "--jsonl", path, "--seed", str(seed),
           "--start-ms", str(START_MS), "--events", str(events)]
    if event_rate is not None:
        cmd += ["--event-rate", str(event_rate)]
    subprocess.run(cmd, check=True)
    interactions, labels = read_produced(path, kind="interaction")
    return " ".join(["weir", "produce"] + cmd[2:5] + ["FILE"] + cmd[6:]), interactions, labels


def in_window(u, t, window):
    length, pane = WINDOWS[window]
    last = t // pane
    return last - length // pane + 1 <= u // pane <= last


def mean_of(values):
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else 0.0


def max_of(values):
    present = [v for v in values if v is not None]
    return float(max(present)) if present else 0.0


def features(events):
    """Feature rows in stream order. Each entity's history holds the events applied to it
    that can still lie in a window (the last 24 h); every aggregate is recomputed from it."""
    users = defaultdict(deque)  # user id -> [(t, dwell, item id, category, price)]
    items = defaultdict(deque)  # item id -> [(t, user id, dwell)]
    newest = {}  # ("user"|"item", id) -> newest applied event time
    partition_max = None  # the test's input topic has one partition
    rows, entity_counts = [], Counter()
    for e in events:
        t = e["event_time"]
        user, item = e["user"]["id"], e["item"]["id"]
        price, dwell = e["item"]["price"], e["dwell_ms"]
        # Late events would not be applied; the generator never makes any.
        for key in (("user", user), ("item", item)):
            assert key not in newest or t >= newest[key] - LATENESS_MS, ("late", e["event_id"])
        assert partition_max is None or t >= partition_max - LATENESS_MS, ("late", e["event_id"])
        partition_max = t if partition_max is None else max(partition_max, t)
        previous = newest.get(("user", user))
        for key in (("user", user), ("item", item)):
            newest[key] = max(newest.get(key, t), t)
        uh, ih = users[user], items[item]
        uh.append((t, dwell, item, e["item"]["category"], price))
        ih.append((t, user, dwell))
        for h in (uh, ih):
            while h and h[0][0] < t - LONGEST_MS:
                h.popleft()
        # Events per entity over the whole stream: at least its events in any day.
        entity_counts[("user", user)] += 1
        entity_counts[("item", item)] += 1

        row = [
            float((t // 3_600_000) % 24),
            float((t // 86_400_000 + 3) % 7),
            math.log1p(max(price, 0.0)),
            1.0 if e["action"] == "click" else 0.0,
            1.0 if e["action"] == "add_to_cart" else 0.0,
            1.0 if e["device"] == "ios" else 0.0,
            1.0 if e["device"] == "android" else 0.0,
            float(dwell) if dwell is not None else 0.0,
        ]
        for w in USER_WINDOWS:
            inside = [x for x in uh if in_window(x[0], t, w)]
            row += [
                float(len(inside)),
                mean_of([x[1] for x in inside]),
                float(len({x[2] for x in inside})),
                float(len({x[3] for x in inside})),
                mean_of([x[4] for x in inside]),
                max_of([x[4] for x in inside]),
            ]
        row.append((t - previous) / 1000.0 if previous is not None else -1.0)
        for w in ITEM_WINDOWS:
            inside = [x for x in ih if in_window(x[0], t, w)]
            row += [float(len(inside)), float(len({x[1] for x in inside})), mean_of([x[2] for x in inside])]
        user_mean_24h = row[FEATURES.index("user_item_price_mean_24h")]
        row.append(price / user_mean_24h if user_mean_24h > 0 else 1.0)
        assert len(row) == len(FEATURES)
        rows.append(row)
    return np.array(rows, dtype=np.float64), max(entity_counts.values())


def fit(X, y, seed):
    """Logistic regression on standardized features, the scaling folded into the coefficients."""
    mu, sigma = X.mean(axis=0), X.std(axis=0)
    sigma[sigma == 0] = 1.0
    clf = LogisticRegression(C=1.0, max_iter=5000, random_state=seed)
    clf.fit((X - mu) / sigma, y)
    raw = LogisticRegression()
    raw.classes_ = clf.classes_
    raw.coef_ = clf.coef_ / sigma
    raw.intercept_ = clf.intercept_ - (clf.coef_ / sigma) @ mu
    raw.n_features_in_ = X.shape[1]
    assert np.allclose(raw.predict_proba(X)[:, 1], clf.predict_proba((X - mu) / sigma)[:, 1], atol=1e-9)
    return raw


def attribute(e, path):
    for p in path:
        e = e[p]
    return e


def ort_scores(data, X):
    import onnxruntime as ort
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(["probabilities"], {"input": X.astype(np.float32)})[0][:, 1]


def fmt(v):
    """Short text for a float64 that reads back within 1e-12 relative."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else "%.13g" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weir", default="target/debug/weir", help="path to the weir binary")
    ap.add_argument("--out", default="models/interactions/v1")
    ap.add_argument("--golden", default="tests/golden/interactions")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_cmd, events, labels = produce(args.weir, os.path.join(tmp, "train.jsonl"), TRAIN["seed"], TRAIN["events"])
        golden_cmd, golden_events, _ = produce(args.weir, os.path.join(tmp, "golden.jsonl"), GOLDEN["seed"],
                                               GOLDEN["events"], GOLDEN["event_rate"])
    X_all, _ = features(events)
    keep = [i for i, e in enumerate(events) if e["event_id"] in labels]
    X = X_all[keep]
    y = np.array([1 if labels[events[i]["event_id"]] else 0 for i in keep])
    print(f"{len(events)} interactions, {len(keep)} labelled, purchase rate {y.mean():.4f}", file=sys.stderr)

    # Time-ordered split: train on the first 80 %, evaluate on the rest.
    cut = int(len(y) * 0.8)
    model = fit(X[:cut], y[:cut], TRAIN["seed"])
    p_test = model.predict_proba(X[cut:])[:, 1]
    auc = roc_auc_score(y[cut:], p_test)
    ll = log_loss(y[cut:], p_test)
    print(f"held-out AUC {auc:.4f}, log loss {ll:.4f} on {len(y) - cut} rows", file=sys.stderr)
    for name, c in sorted(zip(FEATURES, model.coef_[0] * X[:cut].std(axis=0)), key=lambda p: -abs(p[1]))[:8]:
        print(f"  {name:32s} {c:+.3f} (per standard deviation)", file=sys.stderr)
    assert auc > 0.7, auc

    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    onx = convert_sklearn(model, initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
                          options={id(model): {"zipmap": False}})
    data = onx.SerializeToString()
    ops = {n.op_type for n in onx.graph.node}
    assert ops <= {"LinearClassifier", "Normalizer", "Cast", "Identity"}, ops
    err = float(np.max(np.abs(ort_scores(data, X[cut:]) - p_test)))
    print(f"onnxruntime vs scikit-learn max abs diff {err:.2e}", file=sys.stderr)
    assert err < 1e-4, err

    meta = registry.metadata(
        "interactions", "v1", "logistic_regression", data, FEATURES,
        registry.lineage("tools/train/train_interactions.py", data_cmd, cut, TRAIN["seed"],
                         {"C": 1.0, "solver": "lbfgs", "standardized_then_folded": True}),
        registry.holdout_metrics(auc, ll, len(y) - cut),
        reference=registry.reference(X[:cut]))
    registry.write_version(args.out, data, meta)

    # The monitor's reference (weir_monitor::ReferenceProfile): a seeded sample of the
    # training rows in stream order, the model's scores on them, and exact category counts.
    rng = np.random.default_rng(TRAIN["seed"])
    rows = np.sort(rng.choice(cut, size=min(REFERENCE_SAMPLE, cut), replace=False))
    train_events = [events[keep[i]] for i in range(cut)]
    profile = {
        "numeric": {name: [float(v) for v in X[rows, j]] for j, name in enumerate(FEATURES)},
        "categorical": {a: dict(sorted(Counter(attribute(e, path) for e in train_events).items()))
                        for a, path in ATTRIBUTES.items()},
        "score": [float(s) for s in ort_scores(data, X[rows])],
    }
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(profile, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}", file=sys.stderr)

    # The golden: every event of a small stream, its features and its score.
    Xg, busiest = features(golden_events)
    assert busiest <= DISTINCT_EXACT_LIMIT, f"an entity has {busiest} events: weir's distinct counts would be approximate"
    scores = ort_scores(data, Xg)
    os.makedirs(args.golden, exist_ok=True)
    with open(os.path.join(args.golden, "scores.csv"), "w") as f:
        f.write(",".join(["event_id", "score"] + FEATURES) + "\n")
        for e, s, row in zip(golden_events, scores, Xg):
            f.write(",".join([e["event_id"], repr(float(s))] + [fmt(v) for v in row]) + "\n")
    golden_meta = {
        "doc": "Expected output of tests/tests/interactions.rs, written by tools/train/train_interactions.py: "
               "scores.csv holds, for every interaction of the stream below in stream order, the feature vector "
               "(computed in Python from the documented semantics) and the score of the model (onnxruntime on "
               "those features as float32).",
        "generator": {"seed": GOLDEN["seed"], "start_ms": START_MS, "events": GOLDEN["events"],
                      "event_rate": GOLDEN["event_rate"]},
        "command": golden_cmd,
        "model": {"name": meta["name"], "version": meta["version"], "sha256": meta["sha256"]},
        "feature_names": FEATURES,
        "busiest_entity_events": busiest,
    }
    with open(os.path.join(args.golden, "meta.json"), "w") as f:
        json.dump(golden_meta, f, indent=2)
        f.write("\n")
    size = os.path.getsize(os.path.join(args.golden, "scores.csv"))
    print(f"wrote {args.golden}: {len(golden_events)} events, {size} bytes, score mean {scores.mean():.4f}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
