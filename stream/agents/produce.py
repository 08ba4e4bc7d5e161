"""Batched produce: records go to the producer as one aiokafka batch per partition, not one send each.

Faust's `send_changelog` and a plain `send` cost ≈ 10–25 µs a record (a future, a buffer entry, a coroutine
each); appending to a `BatchBuilder` costs a few. The bytes are the same: keys and values are encoded
before they get here (table changelogs with the table's own Faust codecs, stream/agents/tables.py), so
Faust's recovery and standbys read them unchanged. A keyed record goes to murmur2(key) mod partitions, the
partition the Java clients and aiokafka's default partitioner pick; one without a key round-robins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import faust

from stream.agents.adapter import raw_producer
from stream.batching.contract import partition_for

Sent = tuple[str, int, int, "asyncio.Future[Any]"]
"""(topic, partition, records in the batch, the batch's delivery: RecordMetadata of its first record)."""


class BatchSender:
    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._partitions: dict[str, int] = {}
        self._turn = 0

    async def send(self, records: Iterable[tuple[str, int | None, bytes | None, bytes | None]]) -> list[Sent]:
        """Hands (topic, partition or None, key, value) records to the producer; the batches' deliveries."""
        records = list(records)
        producer = raw_producer(self._app)
        for topic in {t for t, p, _, _ in records if p is None and t not in self._partitions}:
            self._partitions[topic] = len(await producer.partitions_for(topic))
        by_tp: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
        for topic, partition, key, value in records:
            if partition is None:
                partition = self._partition(topic, key)
            by_tp.setdefault((topic, partition), []).append((key, value))
        batches: list[tuple[str, int, int, Any]] = []
        for (topic, partition), pairs in by_tp.items():
            batch, n = producer.create_batch(), 0
            for key, value in pairs:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    batches.append((topic, partition, n, batch))
                    batch, n = producer.create_batch(), 0
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        size = len(value or b"")
                        raise ValueError(f"a record of {size} bytes does not fit a batch of {topic}")
                n += 1
            batches.append((topic, partition, n, batch))
        # Handed over together: a batch waits for the one before it of its partition to be sent, and the
        # partitions need not wait for each other.
        futures = await asyncio.gather(*(producer.send_batch(b, t, partition=p) for t, p, _, b in batches))
        return [(t, p, n, f) for (t, p, n, _), f in zip(batches, futures, strict=True)]

    def _partition(self, topic: str, key: bytes | None) -> int:
        count = self._partitions[topic]
        if key is None:
            self._turn += 1
            return self._turn % count
        return _keyed(key, count)


@lru_cache(maxsize=1 << 16)
def _keyed(key: bytes, partitions: int) -> int:
    # Cached: outputs are keyed by user, and murmur2 is pure Python (~3 µs a key).
    return partition_for(key, partitions)
