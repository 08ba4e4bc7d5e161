"""Faust table adapters: reads see staged values, writes reach store and changelog when a batch is flushed.

A batch's table updates are staged when the batch is assembled, so the next batch reads them at once,
and flushed — to the local store and the changelog — only after the batch's outputs are published (user
values), partials only after the user values. The store is therefore never ahead of what was published:
a worker that dies mid-batch leaves a state that a replay of its uncommitted input completes exactly.

Faust's tables and stores take the partition of a write (and, for RocksDB, of a read) from the event
being processed. A batch spans partitions, so writes name their partition explicitly and run with a
stand-in current event carrying it, and reads run with none (RocksDB then finds the key's partition
itself) — the one place this package touches Faust's internals.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from faust.streams import _current_event
from faust.types import TableT

V = TypeVar("V")


class _Message:
    __slots__ = ("partition",)

    def __init__(self, partition: int) -> None:
        self.partition = partition


class _PartitionEvent:
    __slots__ = ("__weakref__", "message")

    def __init__(self, partition: int) -> None:
        self.message = _Message(partition)


@contextmanager
def in_partition(partition: int | None) -> Iterator[None]:
    """Runs a table access as if processing an event of `partition` (None: outside any event)."""
    stand_in = None if partition is None else _PartitionEvent(partition)
    token = _current_event.set(None if stand_in is None else weakref.ref(stand_in))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


class TableView(Generic[V]):
    def __init__(
        self,
        table: TableT,
        decode: Callable[[Any], V],
        encode: Callable[[V], Any],
        *,
        keep_objects: bool,
        snapshots: bool = False,
    ) -> None:
        """`keep_objects`: the store holds values as Python objects (memory store) rather than JSON.
        `snapshots`: flushed values are copies of staged ones, so a flush ends staging when they are equal
        (otherwise only when the very value staged is flushed)."""
        self.table = table
        self._decode = decode
        self._encode = encode
        self._keep = keep_objects
        self._snapshots = snapshots
        self._staged: dict[str, V] = {}

    def get(self, key: str) -> V | None:
        value = self._staged.get(key)
        return self.stored(key) if value is None else value

    def stage(self, key: str, value: V) -> None:
        self._staged[key] = value

    def restage(self, key: str, old: V, new: V) -> None:
        """Stages `new` in place of `old` if `old` is what is staged (a batch's value patched later)."""
        if self._staged.get(key) is old:
            self._staged[key] = new

    def forget(self, revoked: Callable[[str, V], bool]) -> None:
        """Drops the staged values `revoked(key, value)` names: those of partitions this worker lost. A
        batch taken before the revoke may never flush them, and if the partition comes back (its new owner
        dies) the value recovered from the changelog, not this stale one, is the user's."""
        for key in [k for k, v in self._staged.items() if revoked(k, v)]:
            del self._staged[key]

    def flush(self, writes: Iterable[tuple[str, int, V]]) -> list[Any]:
        """Writes each (key, partition, value) to the store and the changelog; returns delivery futures."""
        futures = []
        data = self.table.data
        for key, partition, value in writes:
            raw = self._encode(value)
            with in_partition(partition):
                data[key] = value if self._keep else raw
            futures.append(self.table.send_changelog(partition, key, raw))
            staged = self._staged.get(key)
            if staged is value or (self._snapshots and staged == value):
                del self._staged[key]
        return futures

    def stored(self, key: str) -> V | None:
        """The value as last flushed (what the changelog holds), ignoring staged ones."""
        with in_partition(None):
            raw = self.table.data.get(key)
        if raw is None:
            return None
        # The memory store holds our objects after a write and JSON after recovering from the changelog.
        return self._decode(raw) if isinstance(raw, dict) else raw  # type: ignore[no-any-return]
