"""Which input offsets may be committed: per partition, up to the first offset not yet settled.

A batch's records are settled when its outputs, then its user values, then its partials are delivered
(stream/batching/checkpoint.py); a held exposure (waiting for its promotion) settles later, with the batch
that releases it. The committable offset of a partition is the lowest offset that is taken and not settled
(the lowest of the oldest open batch and the held records), or the offset after the last one taken. So a
crash replays every record whose effects may not all be in Kafka, and nothing before it.

Offsets are tracked per (logical topic, partition), in the order the consumer hands them out. An offset
at or below one taken before in the same assignment is a copy and is left out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from stream.batching.records import TP


class Commits:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forgets everything: on a revoke (every partition of an eager rebalance)."""
        self._taken: dict[TP, int] = {}
        """The highest offset taken of each partition since it was assigned."""
        self._open: deque[tuple[int, dict[TP, int]]] = deque()
        """Batches taken and not settled, oldest first: (batch id, partition → its lowest offset)."""
        self._held: dict[TP, set[int]] = {}
        self._committed: dict[TP, int] = {}
        self._next_id = 0

    def take(self, records: Iterable[tuple[TP, int]]) -> tuple[int, list[bool]]:
        """Registers a batch's records; its id, and per record whether it is new (False: a copy)."""
        lowest: dict[TP, int] = {}
        fresh = []
        taken = self._taken
        for tp, offset in records:
            new = offset > taken.get(tp, -1)
            fresh.append(new)
            if new:
                taken[tp] = offset
                if tp not in lowest:
                    lowest[tp] = offset
        batch = self._next_id
        self._next_id += 1
        self._open.append((batch, lowest))
        return batch, fresh

    def hold(self, tp: TP, offset: int) -> None:
        """Keeps `offset` uncommitted beyond its batch's settling, until `release`."""
        self._held.setdefault(tp, set()).add(offset)

    def release(self, tp: TP, offset: int) -> None:
        held = self._held.get(tp)
        if held is not None:
            held.discard(offset)
            if not held:
                del self._held[tp]

    def settle(self, batch: int) -> None:
        """Marks the oldest open batch, which must be `batch`, settled (batches settle in take order)."""
        if not self._open or self._open[0][0] != batch:
            raise ValueError(f"batch {batch} settled out of order")
        self._open.popleft()

    def due(self) -> dict[TP, int]:
        """Per partition, the next offset to read that is committable and beyond the last commit."""
        first: dict[TP, int] = {}
        for _, lowest in self._open:
            for tp, offset in lowest.items():
                first.setdefault(tp, offset)
        out = {}
        for tp, last in self._taken.items():
            candidates = [last + 1]
            if tp in first:
                candidates.append(first[tp])
            if tp in self._held:
                candidates.append(min(self._held[tp]))
            offset = min(candidates)
            if offset > self._committed.get(tp, -1):
                out[tp] = offset
        return out

    def committed(self, offsets: Mapping[TP, int]) -> None:
        self._committed.update(offsets)

    def __len__(self) -> int:
        return len(self._open)
