"""Consumed messages as plain values, and their decoding through the gate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from stream.errors import DecodeError
from stream.events.framing import UNCHECKED, Framing
from stream.events.gate import Event, dead_letter, decode
from stream.events.models import DeadLetter

TP = tuple[str, int]
"""(logical topic, partition)."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    """Logical topic name (clicks, exposures, profiles, promotions): what the gate decodes it as."""
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float
    """The message's Kafka timestamp (seconds): when it entered the log, the start of its latency."""

    @property
    def tp(self) -> TP:
        return self.topic, self.partition


@dataclass(frozen=True, slots=True)
class Decoded:
    valid: list[tuple[Record, Event]]
    dead: list[DeadLetter]
    reasons: Counter[tuple[str, str]]
    """(logical topic, reason) → dead letters, for metrics."""


def decode_records(
    records: Iterable[Record],
    kafka_names: Mapping[str, str],
    now: datetime,
    *,
    framing: Framing = UNCHECKED,
    ignore_extra: bool = False,
) -> Decoded:
    """Valid events in input order, and a dead letter (naming the real Kafka topic) for every invalid one.

    `framing` strips (with a registry: checks, after `Framing.resolve`) the Schema Registry header of
    framed messages; a dead letter keeps the message as it came. `ignore_extra`: `events.extra_fields`."""
    valid: list[tuple[Record, Event]] = []
    dead: list[DeadLetter] = []
    reasons: Counter[tuple[str, str]] = Counter()
    for record in records:
        try:
            value = framing.unframe(record.topic, record.value)
            valid.append((record, decode(record.topic, value, ignore_extra=ignore_extra)))
        except DecodeError as exc:
            source = kafka_names.get(record.topic, record.topic)
            dead.append(
                dead_letter(source, record.partition, record.offset, record.key, record.value, exc, now)
            )
            reasons[record.topic, exc.reason] += 1
    return Decoded(valid, dead, reasons)
