"""Registering the topics' JSON Schemas with a Confluent Schema Registry (`liftstream schemas register`).

Each schema goes under its Kafka topic's value subject (`schema_registry.subject_template`, `<topic>-value`
by default) with schemaType JSON: the same text as `deploy/schemas/`. Registering an unchanged schema again
returns its id and adds no version, so the command can run on every deploy. The worker publishes its
outputs as plain JSON (no wire-format header): the registered output schemas are for consumers to find,
validate against and check compatibility with.
"""

from __future__ import annotations

from pydantic import ValidationError

from stream.agents.topics import topic_names
from stream.errors import ConfigError
from stream.events.models import INPUT_EVENTS, OUTPUT_EVENTS
from stream.events.schema_registry import SchemaRegistryClient
from stream.events.schemas import topic_schema
from stream.settings import SchemaRegistry, Settings


def register_topic_schemas(settings: Settings, url: str, *, inputs: bool = False) -> list[tuple[str, int]]:
    """Registers the output topics' schemas (and the inputs' with `inputs`); returns (subject, id) pairs."""
    try:
        r = SchemaRegistry.model_validate({**dict(settings.schema_registry), "url": url})
    except ValidationError as exc:
        raise ConfigError(f"invalid Schema Registry URL {url!r}: {exc.errors()[0]['msg']}") from exc
    assert r.url is not None
    client = SchemaRegistryClient(r.url, timeout_s=r.timeout_s, username=r.username, password=r.password)
    names = topic_names(settings)
    topics = [*OUTPUT_EVENTS, *(INPUT_EVENTS if inputs else ())]
    registered = []
    for topic in topics:
        subject = r.subject(names[topic])
        registered.append((subject, client.register(subject, topic_schema(topic))))
    return registered
