"""The Confluent Schema Registry wire format of input messages: a 5-byte header in front of the JSON.

Producers on Confluent's serializers (Java `KafkaJsonSchemaSerializer`, confluent-kafka's
`JSONSerializer`) write magic byte 0, the schema id as 4 bytes big-endian, then the JSON. JSON text never
starts with a 0 byte, so the first byte tells a framed message from a plain one, and both are accepted on
the same topic.

Without `schema_registry.url` the header is stripped unchecked. With it, the id must be registered under
the topic's subject (`schema_registry.subject_template`: `<topic>-value`, Confluent's TopicNameStrategy,
by default), or the message is dead-lettered `unknown_schema_id`. `resolve` asks the registry before a
batch is decoded, off the event loop, and only when the batch carries an id the subject's cache neither
knows nor refused within `REFUSAL_TTL_S` (an id may be registered under the subject later): one lookup of
the subject per such batch, never one per message. While the registry cannot answer, `resolve` backs off
and asks again: the batch waits and nothing is dead-lettered for an outage, as with Triton
(stream/batching/scoring.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from stream.errors import DecodeError, ServiceError
from stream.events.models import INPUT_EVENTS
from stream.events.schema_registry import SchemaRegistryClient
from stream.settings import Settings

log = logging.getLogger(__name__)

MAGIC = 0
HEADER_BYTES = 5
MALFORMED_FRAME = "malformed_frame"
UNKNOWN_SCHEMA_ID = "unknown_schema_id"
REFUSAL_TTL_S = 60.0
MAX_REFUSED = 4096
"""Refused ids remembered per subject; past it the oldest are forgotten (and looked up again if seen)."""
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 10.0


class SubjectIds(Protocol):
    """What `resolve` needs of a registry (stream/events/schema_registry.py: SchemaRegistryClient)."""

    def versions(self, subject: str) -> list[int]: ...

    def schema_id(self, subject: str, version: int) -> int: ...


def split(raw: bytes) -> tuple[int | None, bytes]:
    """(schema id, JSON) of a framed message, (None, raw) of a plain one; raises `DecodeError`."""
    if not raw or raw[0] != MAGIC:
        return None, raw
    if len(raw) < HEADER_BYTES:
        raise DecodeError(MALFORMED_FRAME, f"{len(raw)} bytes, less than the 5-byte Schema Registry header")
    return int.from_bytes(raw[1:HEADER_BYTES], "big"), raw[HEADER_BYTES:]


@dataclass
class _Subject:
    name: str
    ids: dict[int, int] = field(default_factory=dict)
    """Version → schema id of every version seen registered (a version's id never changes)."""
    refused: dict[int, float] = field(default_factory=dict)
    """Schema id → when a lookup found it not registered under the subject."""
    known: frozenset[int] = frozenset()
    """The ids of `ids`."""
    looked_up: bool = False


class Framing:
    """Strips the wire-format header of input messages and, with a registry, checks its schema id.

    `subjects`: logical input topic → its value subject (only used with a `registry`)."""

    def __init__(
        self,
        subjects: Mapping[str, str],
        registry: SubjectIds | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._subjects = {topic: _Subject(name) for topic, name in subjects.items()}
        self._registry = registry
        self._clock = clock

    def unframe(self, topic: str, raw: bytes | None) -> bytes | None:
        """The JSON of message `raw` of logical `topic`; raises `DecodeError` for a bad header or id.

        With a registry, `resolve` must have seen the message first."""
        if not raw or raw[0] != MAGIC:
            return raw
        schema_id, payload = split(raw)
        subject = self._subjects.get(topic)
        if self._registry is None or subject is None:  # no registry to ask, or no input topic (the gate says)
            return payload
        if not subject.looked_up:
            raise RuntimeError(f"the schema ids of {topic} were not resolved before decoding")
        if schema_id not in subject.known:
            raise DecodeError(
                UNKNOWN_SCHEMA_ID,
                f"schema id {schema_id} is not registered under subject {subject.name!r}",
            )
        return payload

    async def resolve(self, messages: Iterable[tuple[str, bytes | None]]) -> None:
        """Looks up, once per subject, the schema ids of (logical topic, raw) `messages` not yet decided."""
        if self._registry is None:
            return
        now = self._clock()
        undecided: dict[str, set[int]] = {}
        for topic, raw in messages:
            subject = self._subjects.get(topic)
            if subject is not None and raw and raw[0] == MAGIC and len(raw) >= HEADER_BYTES:
                schema_id = int.from_bytes(raw[1:HEADER_BYTES], "big")
                if self._undecided(subject, schema_id, now):
                    undecided.setdefault(topic, set()).add(schema_id)
        for topic, ids in undecided.items():
            await self._look_up(self._subjects[topic], ids)

    def _undecided(self, subject: _Subject, schema_id: int, now: float) -> bool:
        if schema_id in subject.known:
            return False
        refused = subject.refused.get(schema_id)
        return refused is None or now - refused >= REFUSAL_TTL_S

    async def _look_up(self, subject: _Subject, seen: set[int]) -> None:
        """Refreshes `subject`'s ids; those of `seen` still not among them are refused from now on."""
        assert self._registry is not None
        attempt = 0
        while True:
            try:
                ids = await asyncio.to_thread(_registered, self._registry, subject.name, subject.ids)
                break
            except ServiceError as exc:
                # Triton's rule (stream/scoring/triton.py: backoff_delay), without importing its client here.
                ceiling = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** min(attempt, 30))
                delay = ceiling * (0.5 + 0.5 * random.random())
                log.warning("schema ids of subject %s: %s; asking again in %.1fs", subject.name, exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
        now, known = self._clock(), set(ids.values())
        refused = {i: t for i, t in subject.refused.items() if i not in known}
        refused.update((i, now) for i in seen - known)
        subject.ids, subject.known, subject.looked_up = ids, frozenset(known), True
        subject.refused = _newest(refused, MAX_REFUSED)
        log.info("subject %s: %d schema ids registered, %d refused", subject.name, len(known), len(refused))


UNCHECKED = Framing({})
"""Strips the header and checks nothing: no registry."""


def framing_for(settings: Settings, kafka_names: Mapping[str, str]) -> Framing:
    """The framing of the input topics; `kafka_names`: logical topic → Kafka topic name."""
    r = settings.schema_registry
    subjects = {topic: r.subject(kafka_names.get(topic, topic)) for topic in INPUT_EVENTS}
    if r.url is None:
        return Framing(subjects)
    client = SchemaRegistryClient(r.url, timeout_s=r.timeout_s, username=r.username, password=r.password)
    return Framing(subjects, client)


def _registered(registry: SubjectIds, subject: str, known: Mapping[int, int]) -> dict[int, int]:
    """Version → id of every version now registered under `subject`, reading only the versions not `known`."""
    return {v: known[v] if v in known else registry.schema_id(subject, v) for v in registry.versions(subject)}


def _newest(stamps: dict[int, float], n: int) -> dict[int, float]:
    if len(stamps) <= n:
        return stamps
    return dict(sorted(stamps.items(), key=lambda kv: kv[1])[-n:])
