#!/usr/bin/env python3
"""End-to-end latency of `weir run` at a steady rate: each score's Kafka CreateTime minus
its input event's CreateTime, matched by event id, read back from the input and scores
topics after the run; plus weir's own share (receipt to score acknowledged) from its
/metrics summary. Run by tools/bench/steady_latency.sh, which starts the broker, Redis,
`weir run` and `weir produce --rate`.

    python steady_latency.py BROKERS INPUT_TOPIC SCORES_TOPIC METRICS_URL [--skip-first FRACTION]

Needs confluent-kafka and fastavro (tools/requirements.txt).
"""

import argparse
import io
import json
import pathlib
import urllib.request

import fastavro
from confluent_kafka import Consumer, TopicPartition

AVRO = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "avro"


def schemas():
    registry = json.loads((AVRO / "registry.json").read_text())
    return {s["id"]: fastavro.parse_schema(json.loads((AVRO / s["file"]).read_text())) for s in registry["schemas"]}


def read_all(brokers, topic, by_id):
    """Every message of `topic`: event id -> CreateTime (ms)."""
    c = Consumer({"bootstrap.servers": brokers, "group.id": f"latency-{topic}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    meta = c.list_topics(topic, timeout=10)
    parts = [TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions]
    ends = {p.partition: c.get_watermark_offsets(p, timeout=10)[1] for p in parts}
    c.assign(parts)
    done = {p: ends[p] == 0 for p in ends}
    times = {}
    while not all(done.values()):
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        if m.offset() + 1 >= ends[m.partition()]:
            done[m.partition()] = True
        v = m.value()
        if not v or v[0] != 0:
            continue
        schema = by_id.get(int.from_bytes(v[1:5], "big"))
        if schema is None:
            continue
        try:
            record = fastavro.schemaless_reader(io.BytesIO(v[5:]), schema)
        except Exception:
            continue
        if isinstance(record, dict) and "event_id" in record:
            times.setdefault(record["event_id"], m.timestamp()[1])
    c.close()
    return times


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    a = argparse.ArgumentParser()
    a.add_argument("brokers")
    a.add_argument("input")
    a.add_argument("scores")
    a.add_argument("metrics")
    a.add_argument("--skip-first", type=float, default=0.1, help="fraction of the events left out as warm-up (group join, restores)")
    args = a.parse_args()
    by_id = schemas()
    produced = read_all(args.brokers, args.input, by_id)
    scored = read_all(args.brokers, args.scores, by_id)
    order = sorted(produced, key=produced.get)
    order = order[int(args.skip_first * len(order)):]
    lat = [scored[e] - produced[e] for e in order if e in scored]
    print(f"events {len(order)} matched {len(lat)}")
    if lat:
        print("end to end (score CreateTime - input CreateTime), ms: "
              f"p50 {pct(lat, 0.5)} p90 {pct(lat, 0.9)} p99 {pct(lat, 0.99)} max {max(lat)}")
    text = urllib.request.urlopen(args.metrics, timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith("weir_event_latency_seconds{") or line.startswith("weir_batch_size{"):
            print(line)


if __name__ == "__main__":
    main()
