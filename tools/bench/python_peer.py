#!/usr/bin/env python3
"""The plain Python peer of `weir bench --brokers`: what a team would write by hand in an
afternoon, as the reference weir's production path is measured against.

    python tools/bench/python_peer.py --brokers HOST:PORT --topic T --group G \
        --redis redis://HOST:PORT --key-prefix P --events N [--weir-scores-topic S]

confluent-kafka consumes the topic (a fresh group, weir's latency settings); fastavro
decodes the Confluent-framed Avro (magic 0, 4-byte schema id, body; ids from
schemas/avro/registry.json); per card, the state of weir's default windows (1m in 5 s
panes, 1h in 1 min panes) is kept in dicts; each batch's cards' feature hashes are written
to Redis in one pipeline; onnxruntime scores the batch with the shipped baseline model
(models/fraud-baseline/v1). No scores are produced back to Kafka.

The features are weir's defaults (features/src/definitions.rs): amount_log,
hour_of_day, channel_ecom, channel_atm, card_count_<w> and card_amount_sum_<w> per
window, amount_to_card_mean_1h. The windows follow features/src/windows.rs: a window as
of event time t is the L/P panes ending with floor(t / P), and the peer keeps the running
totals the way weir's engine does (add the event, subtract the panes that slide out,
oldest first, zero when a whole window is skipped or nothing is left), so that sums
carry the same rounding and the vectors can be compared exactly. An event older than its
card's newest pane is answered by summing its window's panes (weir derives it from the
totals: the last bits of a sum may differ); the peer counts those. Lateness and the
partition watermark are not modelled (the generator's events come in event-time order
per card; a late event would show as a difference).

With --weir-scores-topic, after the timed part the peer reads weir's scores of the same
events and compares each event's feature vector (as float32, weir's row type) with its
own, by event id. The last line on stdout is one JSON object (read by `weir bench`).
"""
import argparse
import io
import json
import math
import os
import resource
import sys
import time

import fastavro
import numpy as np
import onnxruntime as ort
import redis
from confluent_kafka import Consumer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from weirtools import ROOT  # noqa: E402

# weir's default windows and allowed lateness (features/src/config.rs).
WINDOWS = [("1m", 60_000, 5_000), ("1h", 3_600_000, 60_000)]
LATENESS_MS = 60_000
NAMES = [
    "amount_log",
    "hour_of_day",
    "channel_ecom",
    "channel_atm",
    "card_count_1m",
    "card_amount_sum_1m",
    "card_count_1h",
    "card_amount_sum_1h",
    "amount_to_card_mean_1h",
]
MODEL_DIR = os.path.join(ROOT, "models", "fraud-baseline", "v1")


def plain(schema):
    """The schema without logical types: fastavro would turn every timestamp-millis into a
    datetime (slow, and weir reads the long)."""
    if isinstance(schema, dict):
        return {k: plain(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [plain(v) for v in schema]
    return schema


def schemas_by_id(subjects):
    """Schema id -> parsed writer schema, for the registry entries of `subjects`."""
    base = os.path.join(ROOT, "schemas", "avro")
    with open(os.path.join(base, "registry.json")) as f:
        registry = json.load(f)
    out = {}
    for entry in registry["schemas"]:
        if entry["subject"] in subjects:
            with open(os.path.join(base, entry["file"])) as f:
                out[entry["id"]] = fastavro.parse_schema(plain(json.load(f)))
    return out


def decode(payload, schemas):
    if len(payload) < 5 or payload[0] != 0:
        raise ValueError("not Confluent-framed")
    schema = schemas[int.from_bytes(payload[1:5], "big")]
    return fastavro.schemaless_reader(io.BytesIO(payload[5:]), schema, None)


class Window:
    """One window of one card: panes [index, count, n, sum] oldest first, and the running
    totals as of the newest pane `cur` (weir's `Window`, for one numeric field)."""

    __slots__ = ("cur", "count", "n", "sum", "panes")

    def __init__(self):
        self.cur = None
        self.count = 0.0
        self.n = 0.0
        self.sum = 0.0
        self.panes = []


def observe(w, t, x, length, pane_ms):
    """Applies the event (time t, amount x) and answers (count, sum, n) as of t; the
    fourth value says whether it was answered from the panes (out of order)."""
    panes = length // pane_ms
    slots = panes + -(-LATENESS_MS // pane_ms) + 1
    p = t // pane_ms
    if w.cur is None or p > w.cur:
        if w.cur is None or p - w.cur >= panes:
            w.count = w.n = w.sum = 0.0
        else:
            lo, hi = w.cur - panes + 1, p - panes
            out = False
            for q in w.panes:
                if q[0] > hi:
                    break
                if q[0] >= lo:
                    w.count -= q[1]
                    w.n -= q[2]
                    w.sum -= q[3]
                    out = True
            if out:
                if w.count == 0.0:
                    w.n = w.sum = 0.0
                elif w.n == 0.0:
                    w.sum = 0.0
        w.cur = p
        first_kept = p - slots + 1
        drop = 0
        while drop < len(w.panes) and w.panes[drop][0] < first_kept:
            drop += 1
        if drop:
            del w.panes[:drop]
        pane = [p, 0.0, 0.0, 0.0]
        w.panes.append(pane)
    else:
        pane = None
        for i, q in enumerate(w.panes):
            if q[0] == p:
                pane = q
                break
            if q[0] > p:
                pane = [p, 0.0, 0.0, 0.0]
                w.panes.insert(i, pane)
                break
        if pane is None:
            pane = [p, 0.0, 0.0, 0.0]
            w.panes.append(pane)
    pane[1] += 1.0
    pane[2] += 1.0
    pane[3] += x
    if p > w.cur - panes:
        w.count += 1.0
        w.n += 1.0
        w.sum += x
    if p == w.cur:
        return w.count, w.sum, w.n, False
    c = n = s = 0.0
    for q in w.panes:
        if p - panes < q[0] <= p:
            c += q[1]
            n += q[2]
            s += q[3]
    return c, s, n, True


def features(tx, cards):
    """The event's vector (NAMES order, as Python floats) and whether any of its windows
    was answered out of order."""
    t = tx["event_time"]
    x = tx["amount"]
    state = cards.get(tx["card_id"])
    if state is None:
        state = cards[tx["card_id"]] = [Window() for _ in WINDOWS]
    values = []
    ooo = False
    for w, (_, length, pane_ms) in zip(state, WINDOWS):
        c, s, n, o = observe(w, t, x, length, pane_ms)
        values.append((c, s, n))
        ooo |= o
    mean = values[-1][1] / values[-1][2] if values[-1][2] > 0.0 else 0.0
    channel = tx["channel"]
    return [
        math.log1p(max(x, 0.0)),
        float((t // 3_600_000) % 24),
        1.0 if channel == "ecom" else 0.0,
        1.0 if channel == "atm" else 0.0,
        values[0][0],
        values[0][1],
        values[1][0],
        values[1][1],
        x / mean if mean > 0.0 else 1.0,
    ], ooo


def consumer(brokers, group):
    # weir's consumer settings that matter here (ingest/src/config.rs consumer_config).
    return Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 5,
            "isolation.level": "read_committed",
        }
    )


def percentile(weighted, q):
    """`weighted`: [(latency_us, events)]; the q-quantile over events."""
    if not weighted:
        return None
    weighted.sort()
    total = sum(n for _, n in weighted)
    rank = q * total
    seen = 0
    for value, n in weighted:
        seen += n
        if seen >= rank:
            return int(value)
    return int(weighted[-1][0])


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def count_only(args):
    """The Python ceiling: confluent-kafka consuming the topic and counting, nothing else."""
    c = consumer(args.brokers, args.group)
    c.subscribe([args.topic])
    events = 0
    first = last = None
    cpu = cpu_seconds()
    deadline = time.monotonic() + args.timeout_secs
    timed_out = False
    while events < args.events:
        if time.monotonic() > deadline:
            timed_out = True
            break
        messages = c.consume(num_messages=args.batch, timeout=0.1)
        if messages:
            last = time.perf_counter()
            if first is None:
                first = last
            events += len(messages)
    cpu = cpu_seconds() - cpu
    c.close()
    seconds = (last - first) if first is not None else 0.0
    check = {"compared": 0, "differences": 0, "missing_in_weir": 0, "missing_in_peer": 0, "by_feature": {}, "out_of_order": 0}
    return {"events": events, "seconds": seconds, "cpu_seconds": cpu, "p50_us": None, "p99_us": None, "timed_out": timed_out, "check": check}


def run(args):
    if args.count_only:
        return count_only(args)
    schemas = schemas_by_id({"transaction"})
    with open(os.path.join(MODEL_DIR, "metadata.json")) as f:
        meta = json.load(f)
    assert meta["feature_names"] == NAMES, meta["feature_names"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(os.path.join(MODEL_DIR, meta["onnx_file"]), options, providers=["CPUExecutionProvider"])
    input_name, output_name = meta["input_name"], meta["output_name"]
    store = redis.Redis.from_url(args.redis)
    c = consumer(args.brokers, args.group)
    c.subscribe([args.topic])

    cards = {}
    batches = []  # (event ids, float32 rows) per batch, for the check after the timed part
    latencies = []
    events = ooo = 0
    first = last = None
    cpu = cpu_seconds()
    deadline = time.monotonic() + args.timeout_secs
    timed_out = False
    while events < args.events:
        if time.monotonic() > deadline:
            timed_out = True
            break
        messages = c.consume(num_messages=args.batch, timeout=0.1)
        if not messages:
            continue
        received = time.perf_counter()
        if first is None:
            first = received
        ids, rows, touched = [], [], {}
        for m in messages:
            if m.error():
                raise RuntimeError(m.error())
            tx = decode(m.value(), schemas)
            vector, o = features(tx, cards)
            ooo += o
            ids.append(tx["event_id"])
            rows.append(vector)
            touched[tx["card_id"]] = vector
        matrix = np.asarray(rows, dtype=np.float32)
        probabilities = session.run([output_name], {input_name: matrix})[0][:, meta.get("positive_class_index", 1)]
        pipe = store.pipeline(transaction=False)
        for card, vector in touched.items():
            pipe.hset(f"{args.key_prefix}:{{card:{card}}}", mapping=dict(zip(NAMES, vector)))
        pipe.execute()
        last = time.perf_counter()
        latencies.append(((last - received) * 1e6, len(messages)))
        batches.append((ids, matrix, probabilities))
        events += len(messages)
    cpu = cpu_seconds() - cpu
    c.close()
    seconds = (last - first) if first is not None else 0.0
    print(f"python peer: {events} events in {seconds:.2f} s ({events / max(seconds, 1e-9):.0f}/s), {cpu:.2f} CPU-s", file=sys.stderr)
    check = {"compared": 0, "differences": 0, "missing_in_weir": 0, "missing_in_peer": 0, "by_feature": {n: 0 for n in NAMES}, "out_of_order": ooo}
    if args.weir_scores_topic:
        check.update(compare(args, batches))
    return {
        "events": events,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "p50_us": percentile(latencies, 0.5),
        "p99_us": percentile(latencies, 0.99),
        "timed_out": timed_out,
        "check": check,
    }


def compare(args, batches):
    """weir's vectors (its scores topic) against the peer's, by event id, as float32."""
    ours = {}
    for ids, matrix, _ in batches:
        for event_id, row in zip(ids, matrix.tolist()):
            ours[event_id] = row
    schemas = schemas_by_id({"score"})
    c = consumer(args.brokers, args.group + "-check")
    c.subscribe([args.weir_scores_topic])
    theirs = {}
    deadline = time.monotonic() + 120
    idle_since = time.monotonic()
    while len(theirs) < len(ours) and time.monotonic() < deadline and time.monotonic() - idle_since < 15:
        messages = c.consume(num_messages=2000, timeout=0.2)
        if messages:
            idle_since = time.monotonic()
        for m in messages:
            if m.error():
                raise RuntimeError(m.error())
            score = decode(m.value(), schemas)
            values = {f["name"]: f["value"] for f in score["features"]}
            theirs[score["event_id"]] = [values.get(n) for n in NAMES]
    c.close()
    by_feature = {n: 0 for n in NAMES}
    differences = compared = 0
    examples = []
    for event_id, row in ours.items():
        weir = theirs.get(event_id)
        if weir is None:
            continue
        compared += 1
        # weir's features are float32 values carried as doubles: exact in both.
        diff = [n for n, a, b in zip(NAMES, row, weir) if b is None or a != b]
        if diff:
            differences += 1
            for n in diff:
                by_feature[n] += 1
            if len(examples) < 5:
                examples.append({"event_id": event_id, "peer": row, "weir": weir})
    for e in examples:
        print(f"difference: {json.dumps(e)}", file=sys.stderr)
    return {
        "compared": compared,
        "differences": differences,
        "missing_in_weir": len(ours) - compared,
        "missing_in_peer": len(set(theirs) - set(ours)),
        "by_feature": by_feature,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--redis", required=True)
    ap.add_argument("--key-prefix", default="weir-python-peer")
    ap.add_argument("--events", type=int, required=True, help="stop after this many events")
    ap.add_argument("--batch", type=int, default=2000, help="most events per batch (weir's default max_events)")
    ap.add_argument("--weir-scores-topic", help="weir's scores of the same events, to compare vectors with")
    ap.add_argument("--timeout-secs", type=float, default=600)
    ap.add_argument("--count-only", action="store_true", help="only consume and count (the Python client's ceiling)")
    print(json.dumps(run(ap.parse_args())))


if __name__ == "__main__":
    main()
