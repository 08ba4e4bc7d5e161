"""Which consumed messages may be acknowledged: per partition, in offset order, once each is done.

Faust commits the highest acknowledged offset of a partition that follows a run of acknowledged
offsets, and its gap check lets a single unacknowledged message slip through (an off-by-one in
faust-streaming's `Consumer._new_offset`). Acknowledging strictly in offset order never leaves a gap,
so a message held back (an exposure waiting for its promotion) also holds back every later message of
its partition, and a crash replays them all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

from stream.batching.records import TP

E = TypeVar("E")


class _Entry(Generic[E]):
    __slots__ = ("done", "event", "offset")

    def __init__(self, offset: int, event: E) -> None:
        self.offset = offset
        self.event = event
        self.done = False


class AckLedger(Generic[E]):
    def __init__(self) -> None:
        self._queues: dict[TP, deque[_Entry[E]]] = {}
        self._index: dict[tuple[TP, int], _Entry[E]] = {}

    def track(self, tp: TP, offset: int, event: E) -> None:
        """Registers a consumed message; messages of a partition must be tracked in offset order."""
        queue = self._queues.setdefault(tp, deque())
        if queue and queue[-1].offset >= offset:
            raise ValueError(f"{tp} offset {offset} tracked after {queue[-1].offset}")
        entry = _Entry(offset, event)
        queue.append(entry)
        self._index[tp, offset] = entry

    def done(self, tp: TP, offset: int) -> None:
        """Marks a message as processed with its outputs published (unknown ones are ignored)."""
        entry = self._index.get((tp, offset))
        if entry is not None:
            entry.done = True

    def release(self) -> list[E]:
        """The messages now safe to acknowledge: each partition's leading run of done messages."""
        out: list[E] = []
        for tp, queue in self._queues.items():
            while queue and queue[0].done:
                entry = queue.popleft()
                del self._index[tp, entry.offset]
                out.append(entry.event)
        return out

    def forget(self, tps: Iterable[TP]) -> None:
        """Drops partitions this worker no longer owns; their messages are replayed by the next owner."""
        for tp in tps:
            for entry in self._queues.pop(tp, ()):
                del self._index[tp, entry.offset]

    def __len__(self) -> int:
        return len(self._index)
