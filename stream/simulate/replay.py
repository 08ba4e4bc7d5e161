"""Replay a history directory into the input topics in event-time order, for backfills and demos.

With `speed` X, a message whose event time is t seconds after the first one leaves t / X seconds after the
start; without it, messages leave as fast as the broker takes them. Timestamps are never rewritten: the
bytes on the topic are exactly the lines of the history files.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from stream.errors import ConfigError
from stream.history import (
    TOPICS,
    MalformedRecord,
    iter_malformed,
    iter_raw,
    merged_by_time,
    require_history,
)
from stream.settings import Settings
from stream.simulate.kafka_out import (
    BATCH,
    Pacer,
    Progress,
    ProgressCallback,
    ensure_topics,
    producer,
    resolve_settings,
    send_batch,
    topic_names,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayStats:
    sent: int
    malformed: int
    by_topic: dict[str, int]
    elapsed_s: float


def raw_key(topic: str, raw: bytes) -> bytes:
    """The key live mode uses: the promotion for promotion events, the user for the rest."""
    doc = orjson.loads(raw)
    return str(doc["promotion_id" if topic == "promotions" else "user_id"]).encode()


def _with_malformed(
    events: Iterator[tuple[str, datetime, bytes]], total: int, bad: list[MalformedRecord]
) -> Iterator[tuple[str, datetime | None, bytes, bytes | None]]:
    """Valid events with the malformed payloads spread evenly among them (key None, no event time)."""
    every = max(total // (len(bad) + 1), 1) if bad else 0
    pending = iter(bad)
    for n, (topic, ts, raw) in enumerate(events, start=1):
        yield topic, ts, raw, raw_key(topic, raw)
        if every and n % every == 0:
            rec = next(pending, None)
            if rec is not None:
                yield rec.topic, None, rec.payload, None
    for rec in pending:
        yield rec.topic, None, rec.payload, None


async def replay_history(
    target: Settings | str,
    history: Path | str,
    *,
    speed: float | None = None,
    include_malformed: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ReplayStats:
    """Produces every event of `history` to the input topics of `target` (Settings, or `host:port`)."""
    if speed is not None and speed <= 0:
        raise ConfigError("speed must be > 0")
    base = require_history(history)
    bad = list(iter_malformed(base)) if include_malformed else []
    total = sum(sum(1 for _ in iter_raw(base, topic)) for topic in TOPICS) if bad else 0
    settings = resolve_settings(target)
    names = topic_names(settings)
    await ensure_topics(settings)
    pacer = Pacer(None)
    first: datetime | None = None
    batch: list[tuple[str, bytes | None, bytes]] = []
    sent, malformed, by_topic = 0, 0, Counter[str]()

    async def flush() -> None:
        nonlocal sent
        await send_batch(client, batch)
        sent += len(batch)
        if on_progress is not None:
            on_progress(Progress(sent, malformed, pacer.elapsed))
        batch.clear()

    async with producer(settings) as client:
        for topic, ts, raw, key in _with_malformed(merged_by_time(base), total, bad):
            if speed is not None and ts is not None:
                first = first or ts
                due = (ts - first).total_seconds() / speed
                if due > pacer.elapsed:
                    if batch:
                        await flush()
                    await pacer.sleep_until(due)
            batch.append((names[topic], key, raw))
            by_topic[topic] += 1
            malformed += key is None
            if len(batch) >= BATCH:
                await flush()
        if batch:
            await flush()
    log.info("replayed %s: %d messages (%d malformed) in %.1f s", base, sent, malformed, pacer.elapsed)
    return ReplayStats(sent, malformed, dict(by_topic), pacer.elapsed)
