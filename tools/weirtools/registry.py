"""One writer of a model registry version: `model.onnx` and its `metadata.json`.

The format is weir's `weir_schemas::model::ModelMetadata` (the learner writes it, the
scorer reads it, the monitor and the reason codes take their reference from it). Every
training script writes a version through `write_version`, so the fields, their order and
the file's layout (two-space JSON, trailing newline) are defined once, here.
"""
import datetime
import hashlib
import json
import os

import numpy as np

METADATA_FILE = "metadata.json"
ONNX_FILE = "model.onnx"


def created_at():
    """Now, UTC, to the second, ISO 8601 (`2026-01-01T00:00:00+00:00`)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def reference(X, bins=10):
    """The training rows' reference: per-feature mean and a `bins`-bin histogram between
    the feature's min and max (reason codes measure against the means, the monitor can
    take its drift reference from the histograms)."""
    ref = {"means": [float(v) for v in X.mean(axis=0)], "histograms": []}
    for j in range(X.shape[1]):
        lo, hi = np.quantile(X[:, j], [0.0, 1.0])
        counts, edges = np.histogram(X[:, j], bins=bins, range=(float(lo), float(hi) if hi > lo else float(lo) + 1.0))
        ref["histograms"].append({"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]})
    return ref


def lineage(trained_by, training_data, training_rows, seed, hyperparameters, parent_version=None):
    """Where a version comes from: the script, the command that made its data, the rows it
    was fitted on, the seed, its parent version and its hyperparameters."""
    return {
        "trained_by": trained_by,
        "training_data": training_data,
        "training_rows": int(training_rows),
        "seed": seed,
        "parent_version": parent_version,
        "hyperparameters": hyperparameters,
    }


def holdout_metrics(auc, log_loss, rows):
    return {"holdout_auc": round(float(auc), 6), "holdout_log_loss": round(float(log_loss), 6),
            "holdout_rows": int(rows)}


def metadata(name, version, kind, onnx, feature_names, lineage, metrics, reference=None,
             input_name="input", output_name="probabilities", positive_class_index=1):
    """A version's metadata for the ONNX bytes `onnx` (their sha256 included)."""
    meta = {
        "name": name,
        "version": version,
        "kind": kind,
        "created_at": created_at(),
        "onnx_file": ONNX_FILE,
        "sha256": sha256(onnx),
        "input_name": input_name,
        "feature_names": list(feature_names),
        "output_name": output_name,
        "positive_class_index": positive_class_index,
        "lineage": lineage,
        "metrics": metrics,
    }
    if reference is not None:
        meta["reference"] = reference
    return meta


def read_metadata(version_dir):
    with open(os.path.join(version_dir, METADATA_FILE)) as f:
        return json.load(f)


def write_metadata(version_dir, meta):
    with open(os.path.join(version_dir, METADATA_FILE), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def write_version(version_dir, onnx, meta):
    """Writes `model.onnx` (the bytes `onnx`) and `metadata.json` into `version_dir`,
    creating it; the metadata's checksum must be the bytes'."""
    assert meta["sha256"] == sha256(onnx), "metadata sha256 is not model.onnx's"
    os.makedirs(version_dir, exist_ok=True)
    with open(os.path.join(version_dir, meta["onnx_file"]), "wb") as f:
        f.write(onnx)
    write_metadata(version_dir, meta)
