"""Kafka messages of a simulated world: keys, values, arrival order with late and out-of-order events, and
malformed payloads mixed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stream.history import TOPICS
from stream.simulate.config import MS, SimConfig
from stream.simulate.malformed import corrupt


@dataclass(frozen=True)
class Message:
    topic: str  # logical topic: clicks, promotions, exposures or profiles
    key: bytes
    value: bytes
    ts_ms: int  # event time, ms since the Unix epoch
    valid: bool = True


def message_key(topic: str, event: object) -> bytes:
    """Partitioning key: the promotion for promotion events, the user for everything else."""
    key = event.promotion_id if topic == "promotions" else event.user_id  # type: ignore[attr-defined]
    return str(key).encode()


def to_messages(topic: str, events: Sequence[object]) -> list[Message]:
    return [
        Message(topic, message_key(topic, e), e.model_dump_json().encode(), _epoch_ms(e))  # type: ignore[attr-defined]
        for e in events
    ]


def _epoch_ms(event: object) -> int:
    return int(event.ts.timestamp() * 1000)  # type: ignore[attr-defined]


def arrival_order(rng: np.random.Generator, config: SimConfig, messages: Sequence[Message]) -> list[Message]:
    """Messages in the order a producer would send them: mostly by event time, a few jittered or late.

    Timestamps stay untouched; only the position in the stream moves (by at most five minutes of event time,
    within the stream's allowed lateness).
    """
    n = len(messages)
    ts = np.array([m.ts_ms for m in messages], dtype=np.int64)
    rank = np.array([TOPICS.index(m.topic) for m in messages], dtype=np.int64)
    draw = rng.random(n)
    jitter = rng.integers(0, 5 * MS, size=n, endpoint=True)
    late = rng.integers(30 * MS, 300 * MS, size=n, endpoint=True)
    delay = np.where(draw < config.late_fraction, late, 0)
    jittered = (draw >= config.late_fraction) & (draw < config.late_fraction + config.out_of_order_fraction)
    delay = np.where(jittered, jitter, delay)
    order = np.lexsort((np.arange(n), rank, ts + delay))
    return [messages[i] for i in order.tolist()]


def with_malformed(rng: np.random.Generator, rate: float, messages: Sequence[Message]) -> list[Message]:
    """Inserts a corrupted copy after a message with the chance that makes `rate` the malformed share."""
    if rate <= 0:
        return list(messages)
    follow = rng.random(len(messages)) < rate / (1.0 - rate)
    out: list[Message] = []
    for m, bad in zip(messages, follow.tolist(), strict=True):
        out.append(m)
        if bad:
            out.append(Message(m.topic, m.key, corrupt(rng, m.topic, m.value), m.ts_ms, valid=False))
    return out
