#!/usr/bin/env python3
"""River's detectors on the Turing change-point series shipped inside River's wheel.

The Alan Turing Institute's change-point benchmark series (van den Burg & Williams, 2020)
ship in `river/drift/datasets` with the human annotations. For each series this script
min-max normalizes the values to [0, 1] (one column for the multivariate ones), runs
River's `ADWIN()` and `PageHinkley()` with their defaults, and `PageHinkley(threshold=1)`
(the defaults' λ = 50 is meant for unnormalized magnitudes), and writes
monitor/tests/golden/turing.json: the normalized values (as Python's shortest
round-trip floats, which serde_json reads back bit for bit), the annotations and River's
detection indices. monitor/tests/turing.rs runs weir's detectors on the same values and
requires the same indices, and prints both next to the annotations.

    ~/.cache/weir/venv/bin/python tools/golden/turing_changepoints.py
"""

from __future__ import annotations

import json
import pathlib

import river
from river import drift
from river.drift import datasets

OUT = pathlib.Path(__file__).resolve().parents[2] / "monitor" / "tests" / "golden" / "turing.json"

# The column used for the multivariate series.
COLUMN = {"RunLog": "Pace", "Occupancy": "V1", "Apple": "Close"}

DETECTORS = {
    "adwin": lambda: drift.ADWIN(),
    "page_hinkley": lambda: drift.PageHinkley(),
    "page_hinkley_t1": lambda: drift.PageHinkley(threshold=1.0),
}


def series(name: str) -> list[float]:
    ds = getattr(datasets, name)()
    out = []
    for _, y in ds:
        out.append(float(y[COLUMN[name]] if isinstance(y, dict) else y))
    return out


def detections(make, values: list[float]) -> list[int]:
    d = make()
    found = []
    for i, x in enumerate(values):
        d.update(x)
        if d.drift_detected:
            found.append(i)
    return found


def main() -> None:
    result = {"river_version": river.__version__, "datasets": []}
    for name in sorted(datasets.__all__):
        raw = series(name)
        lo, hi = min(raw), max(raw)
        values = [(x - lo) / (hi - lo) for x in raw]
        ds = getattr(datasets, name)()
        result["datasets"].append(
            {
                "name": name,
                "column": COLUMN.get(name),
                "n": len(values),
                "annotations": {k: v for k, v in sorted(ds.annotations.items())},
                "values": values,
                "river": {k: detections(make, values) for k, make in DETECTORS.items()},
            }
        )
        print(name, len(values), {k: v for k, v in result["datasets"][-1]["river"].items()})
    OUT.write_text(json.dumps(result) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
