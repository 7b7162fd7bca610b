#!/usr/bin/env python3
"""Golden files for weir-monitor's drift statistics and detectors, computed independently.

Writes JSON under monitor/tests/golden/ (read by monitor/tests/golden.rs):

- numeric.json: seeded sample pairs (reference, current) and, per pair, the reference
  quantile edges (numpy, method="linear"), bin counts (numpy searchsorted side="right"),
  PSI (by the formula, epsilon 1e-4 for empty bins), Jensen-Shannon distance
  (scipy.spatial.distance.jensenshannon, base 2, on the bin counts), the two-sample KS
  statistic (scipy.stats.ks_2samp) and Wasserstein-1 (scipy.stats.wasserstein_distance)
  on the raw samples.
- categorical.json: reference and current category counts (with categories unseen in the
  reference), PSI over reference categories + "other", and scipy.stats.chi2_contingency
  (correction=False) on the 2 x buckets table: statistic, dof, p-value.
- detectors.json: seeded streams (abrupt, gradual, no change; 0/1 error indicators and
  values in [0, 1]) and the indices where River's ADWIN and PageHinkley flag drift, for
  default and non-default parameters.

Samples are stored as integers with a scale (value = k / scale, the same correctly
rounded division in Python and Rust) so the Rust side reads bit-identical floats.

    ~/.cache/weir/venv/bin/pip install numpy scipy river
    ~/.cache/weir/venv/bin/python tools/golden/drift_golden.py
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np
import river
import scipy
from river import drift
from scipy import stats
from scipy.spatial.distance import jensenshannon

OUT = pathlib.Path(__file__).resolve().parents[2] / "monitor" / "tests" / "golden"
PSI_EPSILON = 1e-4
BINS = 10


def quantized(x: np.ndarray, scale: int) -> tuple[list[int], np.ndarray]:
    k = np.round(np.asarray(x, dtype=np.float64) * scale).astype(np.int64)
    return k.tolist(), k / scale


def psi(p_counts: np.ndarray, q_counts: np.ndarray, eps: float = PSI_EPSILON) -> float:
    p = p_counts / p_counts.sum()
    q = q_counts / q_counts.sum()
    p = np.where(p == 0, eps, p)
    q = np.where(q == 0, eps, q)
    return float(np.sum((q - p) * np.log(q / p)))


def numeric_case(name: str, ref: np.ndarray, cur: np.ndarray, scale: int, bins: int = BINS) -> dict:
    ref_k, ref_x = quantized(ref, scale)
    cur_k, cur_x = quantized(cur, scale)
    qs = np.arange(1, bins) / bins
    edges = np.quantile(ref_x, qs, method="linear")
    edges = np.unique(edges)  # duplicate edges collapse (sorted, strictly increasing)
    ref_counts = np.bincount(np.searchsorted(edges, ref_x, side="right"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur_x, side="right"), minlength=len(edges) + 1)
    return {
        "name": name,
        "scale": scale,
        "bins": bins,
        "reference": ref_k,
        "current": cur_k,
        "edges": edges.tolist(),
        "reference_counts": ref_counts.tolist(),
        "current_counts": cur_counts.tolist(),
        "psi": psi(ref_counts.astype(float), cur_counts.astype(float)),
        "js": float(jensenshannon(ref_counts, cur_counts, base=2)),
        "ks": float(stats.ks_2samp(ref_x, cur_x).statistic),
        "w1": float(stats.wasserstein_distance(ref_x, cur_x)),
    }


def numeric_cases() -> list[dict]:
    rng = np.random.default_rng(20240611)
    cases = []
    base = rng.normal(0.0, 1.0, 400)
    cases.append(numeric_case("normal_same_distribution", base, rng.normal(0.0, 1.0, 300), 10**6))
    cases.append(numeric_case("normal_mean_shift", base, rng.normal(0.5, 1.0, 300), 10**6))
    cases.append(numeric_case("normal_scale_change", base, rng.normal(0.0, 2.0, 250), 10**6))
    amounts = rng.lognormal(3.0, 1.0, 500)
    cases.append(numeric_case("lognormal_amounts_tail", amounts, rng.lognormal(3.4, 1.2, 350), 10**4))
    cases.append(numeric_case("disjoint_supports", rng.uniform(0, 1, 200), rng.uniform(5, 6, 200), 10**6))
    cases.append(numeric_case("identical_samples", base, base.copy(), 10**6))
    # Heavy ties: small integers, duplicate quantile edges collapse
    ties_ref = rng.poisson(1.0, 400).astype(float)
    cases.append(numeric_case("poisson_ties", ties_ref, rng.poisson(1.6, 300).astype(float), 1))
    # Constant reference: one edge, two bins
    cases.append(numeric_case("constant_reference", np.full(100, 3.0), rng.integers(2, 5, 120).astype(float), 1))
    # Current window much smaller than the reference; exact hit of a quantile (n-1)q integer
    cases.append(numeric_case("small_window", rng.normal(0, 1, 501), rng.normal(0.2, 1.0, 30), 10**6))
    return cases


def categorical_case(name: str, ref: dict[str, int], cur: dict[str, int], max_categories: int) -> dict:
    # Kept: the most frequent reference categories, ties by name; the rest and all
    # categories the reference does not keep go to "other" (last bucket).
    kept = sorted((c for c in ref.items() if c[1] > 0), key=lambda kv: (-kv[1], kv[0]))[:max_categories]
    names = [k for k, _ in kept]
    ref_b = [ref[k] for k in names] + [sum(v for k, v in ref.items() if k not in names)]
    cur_b = [cur.get(k, 0) for k in names] + [sum(v for k, v in cur.items() if k not in names)]
    table = np.array([ref_b, cur_b], dtype=float)
    table = table[:, table.sum(axis=0) > 0]
    res = stats.chi2_contingency(table, correction=False)
    return {
        "name": name,
        "max_categories": max_categories,
        "reference": ref,
        "current": cur,
        "bucket_names": names,
        "reference_buckets": ref_b,
        "current_buckets": cur_b,
        "psi": psi(np.array(ref_b, float), np.array(cur_b, float)),
        "chi_square": float(res.statistic),
        "dof": int(res.dof),
        "p_value": float(res.pvalue),
    }


def categorical_cases() -> list[dict]:
    rng = np.random.default_rng(7)
    cats = ["web", "pos", "atm", "moto", "recurring"]

    def draw(p, n, names=cats):
        c = rng.multinomial(n, p)
        return {k: int(v) for k, v in zip(names, c)}

    p0 = [0.5, 0.3, 0.1, 0.07, 0.03]
    cases = [
        categorical_case("same_mix", draw(p0, 2000), draw(p0, 500), 64),
        categorical_case("shifted_mix", draw(p0, 2000), draw([0.3, 0.3, 0.2, 0.15, 0.05], 500), 64),
    ]
    cur = draw(p0, 480)
    cur["crypto"] = 20  # a category never seen in the reference
    cases.append(categorical_case("new_category", draw(p0, 2000), cur, 64))
    countries = [f"c{i:02d}" for i in range(30)]
    pz = np.array([1.0 / (i + 1) for i in range(30)])
    pz /= pz.sum()
    ref = draw(pz, 3000, countries)
    cur = draw(np.roll(pz, 3), 800, countries)
    cases.append(categorical_case("many_categories_capped", ref, cur, 8))
    cases.append(categorical_case("two_buckets_dof1", {"a": 900, "b": 100}, {"a": 160, "b": 40}, 64))
    cases.append(categorical_case("huge_shift_tiny_p", draw(p0, 5000), draw([0.02, 0.02, 0.06, 0.3, 0.6], 5000), 64))
    return cases


def detections(detector, stream) -> list[int]:
    out = []
    for i, x in enumerate(stream):
        detector.update(x)
        if detector.drift_detected:
            out.append(i)
    return out


def detector_cases() -> list[dict]:
    rng = np.random.default_rng(99)
    streams = []
    # 0/1 error indicators: value = k (scale 1)
    n = 3000
    streams.append(("bernoulli_abrupt", 1, (rng.random(n) < np.where(np.arange(n) < 1500, 0.1, 0.4)).astype(int)))
    ramp = np.clip(0.1 + 0.3 * (np.arange(n) - 1000) / 1000, 0.1, 0.4)
    streams.append(("bernoulli_gradual", 1, (rng.random(n) < ramp).astype(int)))
    streams.append(("bernoulli_no_change", 1, (rng.random(n) < 0.15).astype(int)))
    streams.append(("bernoulli_two_changes", 1, (rng.random(n) < np.select(
        [np.arange(n) < 1000, np.arange(n) < 2000], [0.05, 0.5], 0.05)).astype(int)))
    # values in [0, 1], e.g. a loss; stored as k / 10**4
    m = 2000
    mean = np.where(np.arange(m) < 1000, 0.3, 0.45)
    streams.append(("loss_abrupt", 10**4, np.round(np.clip(rng.normal(mean, 0.1), 0, 1) * 10**4).astype(int)))
    streams.append(("loss_no_change", 10**4, np.round(rng.beta(2, 5, m) * 10**4).astype(int)))

    configs = {
        "adwin_default": lambda: drift.ADWIN(),
        "adwin_clock1_delta0.01": lambda: drift.ADWIN(delta=0.01, clock=1),
        "adwin_mb3_mwl10_grace50": lambda: drift.ADWIN(max_buckets=3, min_window_length=10, grace_period=50, clock=16),
        "ph_default": lambda: drift.PageHinkley(),
        "ph_threshold10": lambda: drift.PageHinkley(threshold=10.0),
        "ph_up_t5_d0.01_a0.999": lambda: drift.PageHinkley(threshold=5.0, delta=0.01, alpha=0.999, mode="up", min_instances=50),
        "ph_down_t3": lambda: drift.PageHinkley(threshold=3.0, mode="down"),
    }
    out = []
    for name, scale, ks in streams:
        values = ks / scale
        out.append({
            "name": name,
            "scale": scale,
            "values": ks.tolist(),
            "detections": {c: detections(make(), values.tolist()) for c, make in configs.items()},
        })
    return out


def write(name: str, payload) -> None:
    path = OUT / name
    text = json.dumps(payload, separators=(",", ":"))
    path.write_text(text + "\n")
    size = path.stat().st_size
    print(f"{path.relative_to(OUT.parent.parent.parent)}: {size} bytes", file=sys.stderr)
    if size > 100_000:
        raise SystemExit(f"{path} is over 100 KB")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    versions = {"numpy": np.__version__, "scipy": scipy.__version__, "river": river.__version__}
    write("numeric.json", {"generator": "tools/golden/drift_golden.py", "versions": versions,
                           "psi_epsilon": PSI_EPSILON, "cases": numeric_cases()})
    write("categorical.json", {"generator": "tools/golden/drift_golden.py", "versions": versions,
                               "psi_epsilon": PSI_EPSILON, "cases": categorical_cases()})
    write("detectors.json", {"generator": "tools/golden/drift_golden.py", "versions": versions,
                             "cases": detector_cases()})


if __name__ == "__main__":
    main()
