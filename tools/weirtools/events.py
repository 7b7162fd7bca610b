"""Reading what `weir produce --jsonl` writes: one JSON object per line, `type` saying
whether it is an event (`transaction` or `interaction`), a label or poison."""
import json


def read_produced(path, kind="transaction"):
    """The events of `kind` in stream order, and the labels as event id -> is_fraud.
    Poison lines are skipped; any other type is an error (the file is not what the
    caller asked `weir produce` for)."""
    produced, labels = [], {}
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            if e["type"] == kind:
                produced.append(e)
            elif e["type"] == "label":
                labels[e["event_id"]] = e["is_fraud"]
            elif e["type"] != "poison":
                raise ValueError(f"unexpected message type {e['type']} in {path}")
    return produced, labels
