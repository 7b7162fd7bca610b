"""Produces payment events the way a team using Confluent's tooling does: confluent-kafka's
SchemaRegistryClient + AvroSerializer, which registers the producer's own schema under the
topic's subject (TopicNameStrategy, `<topic>-value`) and frames each message with its id.

The schema is the producer's, not weir's: a `com.acme.Payment` record with every field weir
reads, plus `loyalty_tier`, which weir does not use. `--version 2` adds an optional
`promo_code` (a BACKWARD-compatible second version).

Prints one JSON line: {"produced": N, "schema_id": ID, "subject": S}.
Run by tests/tests/schema_registry.rs (`weir_tests::schema_registry::run_python`).
"""

import argparse
import json
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

FIELDS_V1 = [
    {"name": "event_id", "type": "string"},
    {"name": "card_id", "type": "string"},
    {"name": "amount", "type": "double"},
    {"name": "currency", "type": "string"},
    {"name": "country", "type": "string"},
    {"name": "channel", "type": "string"},
    {"name": "customer_segment", "type": "string"},
    {"name": "loyalty_tier", "type": "string", "doc": "Not read by weir."},
    {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
]
PROMO = {"name": "promo_code", "type": ["null", "string"], "default": None}


def schema(version):
    fields = FIELDS_V1 + ([PROMO] if version == 2 else [])
    return json.dumps({"type": "record", "name": "Payment", "namespace": "com.acme", "fields": fields})


def registry_conf(args):
    conf = {"url": args.registry}
    if args.user:
        conf["basic.auth.user.info"] = f"{args.user}:{open(args.password_file).read().strip()}"
    return conf


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--brokers", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--user")
    p.add_argument("--password-file")
    p.add_argument("--topic", required=True)
    p.add_argument("--version", type=int, choices=[1, 2], default=1)
    p.add_argument("--first", type=int, default=0, help="number of the first event (ids py-N)")
    p.add_argument("--count", type=int, required=True)
    args = p.parse_args()

    client = SchemaRegistryClient(registry_conf(args))
    serializer = AvroSerializer(
        client,
        schema(args.version),
        conf={"auto.register.schemas": True, "subject.name.strategy": topic_subject_name_strategy},
    )
    producer = Producer({"bootstrap.servers": args.brokers, "linger.ms": 5})
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    now = int(time.time() * 1000)
    channels, segments = ["pos", "ecom", "atm"], ["retail", "premium", "business"]
    failures = []
    for n in range(args.first, args.first + args.count):
        event = {
            "event_id": f"py-{n:06d}",
            "card_id": f"card-{n % 37:03d}",
            "amount": round(5.0 + (n * 7.31) % 900.0, 2),
            "currency": "EUR",
            "country": "FR",
            "channel": channels[n % 3],
            "customer_segment": segments[n % 3],
            "loyalty_tier": "gold" if n % 5 == 0 else "none",
            "event_time": now - 60_000 + n,
        }
        if args.version == 2:
            event["promo_code"] = f"P{n}" if n % 2 else None
        producer.produce(
            args.topic,
            key=event["card_id"].encode(),
            value=serializer(event, ctx),
            on_delivery=lambda err, _msg: failures.append(str(err)) if err else None,
        )
        producer.poll(0)
    left = producer.flush(30)
    if left or failures:
        sys.exit(f"{left} undelivered, failures: {failures[:3]}")
    subject = f"{args.topic}-value"
    latest = client.get_latest_version(subject)
    print(json.dumps({"produced": args.count, "schema_id": latest.schema_id, "subject": subject}))


if __name__ == "__main__":
    main()
