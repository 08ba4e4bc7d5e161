"""Producing liftstream's input events with confluent-kafka (librdkafka), as docs/integrate.md describes.

Two settings matter and neither is librdkafka's default:
- `partitioner: murmur2_random`: liftstream, like the Java client and aiokafka, places a keyed message on
  `murmur2(key) % partitions`; librdkafka's default (`consistent_random`, CRC32) puts the same user on
  another partition, where the worker refuses it (`wrong_partition`).
- the key: user_id for clicks, exposures and profiles; promotion_id for promotions.

Values are the JSON of deploy/schemas/<topic>.schema.json, plain or, with a Schema Registry, framed by
Confluent's JSON Schema serializer (`json_schema_serializer`).

    python docs/examples/produce_events.py BOOTSTRAP [TOPIC_PREFIX]   # a promotion, an exposure, a click
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

SCHEMAS = Path(__file__).resolve().parents[2] / "deploy" / "schemas"
KEY_FIELD = {"clicks": "user_id", "exposures": "user_id", "profiles": "user_id", "promotions": "promotion_id"}


def event_producer(bootstrap: str) -> Producer:
    """A producer that places each user where the worker expects it, idempotent, acks from all replicas."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",  # Kafka's default partitioner, as the Java client's
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 10,
        }
    )


def send(
    producer: Producer,
    kind: str,
    event: dict[str, Any],
    *,
    topic: str | None = None,
    value: bytes | None = None,
) -> None:
    """Enqueues `event` of input `kind` (clicks, exposures, profiles, promotions), keyed as liftstream
    partitions it, on `topic` (default: `kind`).

    `value`: the bytes to send (e.g. `framed`); by default the event's JSON."""
    key = event[KEY_FIELD[kind]].encode()
    producer.produce(topic or kind, key=key, value=value if value is not None else json.dumps(event).encode())


def json_schema_serializer(registry_url: str, kind: str) -> JSONSerializer:
    """Confluent's serializer with liftstream's schema of input `kind`; it registers the schema under
    `<topic>-value` of the topic it serializes for (auto.register.schemas, its default)."""
    schema = (SCHEMAS / f"{kind}.schema.json").read_text(encoding="utf-8")
    return JSONSerializer(schema, SchemaRegistryClient({"url": registry_url}))


def framed(serializer: JSONSerializer, topic: str, event: dict[str, Any]) -> bytes:
    """The event in the Schema Registry wire format: byte 0, the schema id (4 bytes), the JSON."""
    raw = serializer(event, SerializationContext(topic, MessageField.VALUE))
    assert raw is not None
    return raw


def main(bootstrap: str, prefix: str = "") -> None:
    """Sends a promotion's start, an exposure and a click to the input topics (named `prefix` + kind)."""
    producer = event_producer(bootstrap)
    send(producer, "promotions", topic=prefix + "promotions", event={
        "promotion_id": "p-spring", "campaign_id": "c-spring", "action": "start", "version": 1,
        "ts": "2026-03-01T09:00:00Z", "title": "Spring sale", "description": "20% off all shoes",
        "discount_type": "percent", "discount_value": 20.0, "categories": ["shoes"], "holdout_fraction": 0.1,
    })  # fmt: skip
    send(producer, "exposures", topic=prefix + "exposures", event={
        "event_id": "x-1", "user_id": "u1", "promotion_id": "p-spring", "campaign_id": "c-spring",
        "ts": "2026-03-01T10:00:00Z", "arm": "treatment",
    })  # fmt: skip
    send(producer, "clicks", topic=prefix + "clicks", event={
        "event_id": "k-1", "user_id": "u1", "session_id": "s-1", "ts": "2026-03-01T10:10:00Z", "kind": "view",
    })  # fmt: skip
    if producer.flush(30) != 0:
        raise SystemExit("some events were not delivered within 30 s")


if __name__ == "__main__":
    main(*sys.argv[1:])
