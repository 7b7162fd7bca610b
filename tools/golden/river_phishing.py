#!/usr/bin/env python3
"""Extract River's Phishing dataset (shipped inside River's PyPI wheel) to a small CSV,
and measure River's own online logistic regression on the same rows, in the same order.

    python3 tools/golden/river_phishing.py tests/data

Writes:
- phishing.csv: the 1250 rows as River yields them (9 features, then is_phishing 0/1);
- phishing_river.json: River's prequential (test-then-train) accuracy, log loss and
  ROC AUC for `StandardScaler | LogisticRegression` (River defaults: SGD, lr 0.01) and
  for plain `LogisticRegression`, and River's learn_one rate in this run.
"""
import csv
import json
import os
import sys
import time

import river
from river import datasets, linear_model, metrics, preprocessing


def prequential(model, rows):
    acc, ll, auc = metrics.Accuracy(), metrics.LogLoss(), metrics.ROCAUC(n_thresholds=1000)
    for x, y in rows:
        p = model.predict_proba_one(x).get(True, 0.0)
        acc.update(y, p >= 0.5)
        ll.update(y, p)
        auc.update(y, p)
        model.learn_one(x, y)
    return {"accuracy": acc.get(), "log_loss": ll.get(), "roc_auc_approx": auc.get()}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data"
    rows = [(x, bool(y)) for x, y in datasets.Phishing()]
    names = list(rows[0][0].keys())
    with open(os.path.join(out, "phishing.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names + ["is_phishing"])
        for x, y in rows:
            w.writerow([x[n] for n in names] + [int(y)])
    scaled = prequential(preprocessing.StandardScaler() | linear_model.LogisticRegression(), rows)
    plain = prequential(linear_model.LogisticRegression(), rows)
    # learn_one rate: the scaled pipeline over the rows, repeated, timed.
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    reps = 20
    start = time.perf_counter()
    for _ in range(reps):
        for x, y in rows:
            model.learn_one(x, y)
    elapsed = time.perf_counter() - start
    result = {
        "generated_by": f"tools/golden/river_phishing.py with river {river.__version__}",
        "rows": len(rows),
        "features": names,
        "river_scaled_logistic_regression": scaled,
        "river_logistic_regression": plain,
        "river_learn_one_per_second": len(rows) * reps / elapsed,
    }
    with open(os.path.join(out, "phishing_river.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(json.dumps(result, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
