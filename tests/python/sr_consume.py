"""Reads weir's scores the way a downstream team does: confluent-kafka's AvroDeserializer
resolves each message's schema id through the same Schema Registry and decodes it with the
writer schema it names.

Reads `--topic` from the beginning until `--expect` messages are seen or `--timeout`
seconds pass, then prints one JSON line:
{"messages": N, "decoded": N, "errors": [...], "event_ids": [...], "schema_ids": [...],
 "fields": [...], "sample": {...}}.
Run by tests/tests/schema_registry.rs (`weir_tests::schema_registry::run_python`).
"""

import argparse
import json
import time
import uuid

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--brokers", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--user")
    p.add_argument("--password-file")
    p.add_argument("--topic", required=True)
    p.add_argument("--expect", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()

    conf = {"url": args.registry}
    if args.user:
        conf["basic.auth.user.info"] = f"{args.user}:{open(args.password_file).read().strip()}"
    deserializer = AvroDeserializer(SchemaRegistryClient(conf), conf={"subject.name.strategy": topic_subject_name_strategy})
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": f"sr-consume-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    messages, event_ids, schema_ids, errors, sample, fields = 0, [], set(), [], None, set()
    deadline = time.time() + args.timeout
    while messages < args.expect and time.time() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            continue
        messages += 1
        value = msg.value()
        schema_ids.add(int.from_bytes(value[1:5], "big"))
        try:
            score = deserializer(value, ctx)
        except Exception as e:  # every failure is reported, not just the first
            errors.append(f"{type(e).__name__}: {e}")
            continue
        event_ids.append(score["event_id"])
        fields.update(score.keys())
        if sample is None:
            sample = {k: score[k] for k in ("event_id", "key", "model_name", "decision")}
    consumer.close()
    print(
        json.dumps(
            {
                "messages": messages,
                "decoded": len(event_ids),
                "errors": errors[:5],
                "event_ids": event_ids,
                "schema_ids": sorted(schema_ids),
                "fields": sorted(fields),
                "sample": sample,
            }
        )
    )


if __name__ == "__main__":
    main()
