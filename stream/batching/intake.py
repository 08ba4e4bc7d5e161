"""Fetched input records on their way to the user-events loop, in per-partition chunks.

The consumer's fetch loop `put`s each partition's records (stream/agents/adapter.py: bulk input) and the
loop `take`s batches of them. Beyond `limit` records waiting, the partitions that have records here are held
out of the next fetches (`hold`) until the loop has taken half of them: back-pressure that never blocks
the fetch loop, which table recovery shares. Between a revoke and the next assignment the intake is closed:
what arrives is dropped (it is fetched again from the committed offsets).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from faust.types import TP

Chunk = tuple[TP, list[Any], int]
"""(Kafka topic partition, its records in offset order, the consumer generation they were fetched in)."""


class Intake:
    def __init__(self, limit: int, hold: Callable[[set[TP]], None]) -> None:
        self.limit = limit
        self._hold = hold
        self._chunks: deque[Chunk] = deque()
        self._size = 0
        self._held = False
        self._arrived = asyncio.Event()
        self.open = False

    def put(self, tp: TP, records: list[Any], generation: int) -> None:
        if not self.open or not records:
            return
        self._chunks.append((tp, records, generation))
        self._size += len(records)
        self._arrived.set()
        if self._size >= self.limit and not self._held:
            self._held = True
            self._hold({tp for tp, _, _ in self._chunks})

    async def take(self, most: int, within: float) -> list[Chunk]:
        """Up to `most` records (whole chunks but the last): as soon as there are that many, or `within`
        seconds after the first arrived."""
        while not self._size:
            self._arrived.clear()
            await self._arrived.wait()
        deadline = time.monotonic() + within
        while self._size < most and (left := deadline - time.monotonic()) > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                break
        return self._pop(most)

    def _pop(self, most: int) -> list[Chunk]:
        out: list[Chunk] = []
        n = 0
        while self._chunks and n < most:
            tp, records, generation = self._chunks.popleft()
            room = most - n
            if len(records) > room:
                self._chunks.appendleft((tp, records[room:], generation))
                records = records[:room]
            out.append((tp, records, generation))
            n += len(records)
        self._size -= n
        if self._held and self._size <= self.limit // 2:
            self._held = False
            self._hold(set())
        return out

    def close(self) -> None:
        """On a revoke: drops what is waiting and everything that arrives until `reopen`."""
        self.open = False
        self._chunks.clear()
        self._size = 0
        if self._held:
            self._held = False
            self._hold(set())

    def reopen(self) -> None:
        self.open = True

    def __len__(self) -> int:
        return self._size
