"""Reading what `weir produce --jsonl` writes: one JSON object per line, `type` saying
whether it is a transaction, a label or poison."""
import json


def read_produced(path):
    """The transactions in stream order, and the labels as event id -> is_fraud."""
    transactions, labels = [], {}
    with open(path) as f:
        for line in f:
            e = json.loads(line)
            if e["type"] == "transaction":
                transactions.append(e)
            elif e["type"] == "label":
                labels[e["event_id"]] = e["is_fraud"]
    return transactions, labels
