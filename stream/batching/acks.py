"""Which consumed messages may be acknowledged: per partition, in offset order, once each is done.

Faust commits the highest acknowledged offset of a partition that follows a run of acknowledged
offsets, and its gap check lets a single unacknowledged message slip through (an off-by-one in
faust-streaming's `Consumer._new_offset`). Acknowledging strictly in offset order never leaves a gap,
so a message held back (an exposure waiting for its promotion) also holds back every later message of
its partition, and a crash replays them all.

Faust can deliver a message twice: on assignment it may fetch from a partition before it seeks the
partition to its committed offset, and its read-offset check lets the message at that offset through
again (and every later one). A copy is not processed again; it is acknowledged with its first delivery.
Any other message out of offset order is refused: acknowledging in order would be impossible.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

from stream.batching.records import TP

E = TypeVar("E")


class _Entry(Generic[E]):
    __slots__ = ("done", "events", "offset")

    def __init__(self, offset: int, event: E) -> None:
        self.offset = offset
        self.events = [event]
        """The message, then any copies of it delivered again."""
        self.done = False


class AckLedger(Generic[E]):
    def __init__(self) -> None:
        self._queues: dict[TP, deque[_Entry[E]]] = {}
        self._index: dict[tuple[TP, int], _Entry[E]] = {}
        self._seen: dict[TP, tuple[int, int]] = {}
        """The first and last offset tracked of each partition since it was (re)assigned."""
        self._copies: list[tuple[TP, E]] = []
        """Copies of messages released before the copy came: acknowledged at the next release."""

    def track(self, tp: TP, offset: int, event: E) -> bool:
        """Registers a consumed message; False for a copy of one tracked before, which must not be
        processed again. Apart from copies, messages of a partition must come in offset order."""
        seen = self._seen.get(tp)
        if seen is not None and offset <= seen[1]:
            if offset < seen[0]:
                # Not a copy but a message never taken: it cannot be acknowledged in order.
                raise ValueError(f"{tp} offset {offset} after offsets {seen[0]}..{seen[1]}")
            entry = self._index.get((tp, offset))
            if entry is None:
                self._copies.append((tp, event))
            else:
                entry.events.append(event)
            return False
        entry = _Entry(offset, event)
        self._queues.setdefault(tp, deque()).append(entry)
        self._index[tp, offset] = entry
        self._seen[tp] = (offset if seen is None else seen[0], offset)
        return True

    def done(self, tp: TP, offset: int) -> None:
        """Marks a message as processed with its outputs published (unknown ones are ignored)."""
        entry = self._index.get((tp, offset))
        if entry is not None:
            entry.done = True

    def release(self) -> list[E]:
        """The messages now safe to acknowledge: each partition's leading run of done messages."""
        out = [event for _, event in self._copies]
        self._copies = []
        for tp, queue in self._queues.items():
            while queue and queue[0].done:
                entry = queue.popleft()
                del self._index[tp, entry.offset]
                out += entry.events
        return out

    def forget(self, tps: Iterable[TP]) -> None:
        """Drops partitions this worker no longer owns; their messages are replayed by the next owner."""
        gone = set(tps)
        self._copies = [(tp, event) for tp, event in self._copies if tp not in gone]
        for tp in gone:
            self._seen.pop(tp, None)
            for entry in self._queues.pop(tp, ()):
                del self._index[tp, entry.offset]

    def __len__(self) -> int:
        return len(self._index)
