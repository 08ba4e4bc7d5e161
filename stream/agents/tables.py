"""Faust table adapters: reads see staged values, writes reach store and changelog when a batch is flushed.

A batch's table updates are staged when the batch is assembled, so the next batch reads them at once,
and flushed — to the local store and the changelog — only after the batch's outputs are published (user
values), partials only after the user values. The store is therefore never ahead of what was published:
a worker that dies mid-batch leaves a state that a replay of its uncommitted input completes exactly.

Faust's tables and stores take the partition of a write (and, for RocksDB, of a read) from the event
being processed. A batch spans partitions, so writes name their partition explicitly and run with a
stand-in current event carrying it, and reads run with none (RocksDB then finds the key's partition
itself (stream/agents/adapter.py: `in_partition`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Generic, Protocol, TypeVar, cast

from faust.types import TP, TableT
from faust.utils import json as faust_json
from mode.utils.compat import want_bytes

from stream.agents.adapter import in_partition

V = TypeVar("V")


class Sender(Protocol):
    async def send(
        self, records: Iterable[tuple[str, int | None, bytes | None, bytes | None]]
    ) -> list[tuple[str, int, int, asyncio.Future[Any]]]: ...


class TableView(Generic[V]):
    def __init__(
        self,
        table: TableT,
        decode: Callable[[Any], V],
        encode: Callable[[V], Any],
        sender: Sender,
        *,
        keep_objects: bool,
        snapshots: bool = False,
    ) -> None:
        """`keep_objects`: the store holds values as Python objects (memory store) rather than JSON.
        `snapshots`: flushed values are copies of staged ones, so a flush ends staging when they are equal
        (otherwise only when the very value staged is flushed)."""
        self.table = table
        self._sender = sender
        self._dumps = _codecs(table)
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

    async def flush(self, writes: Iterable[tuple[str, int, V]]) -> list[Any]:
        """Writes each (key, partition, value) to the store and the changelog (one batch per partition,
        stream/agents/produce.py); returns the batches' delivery futures."""
        data = self.table.data
        name = self.table.changelog_topic.get_topic_name()
        dump_key, dump_value = self._dumps
        records = []
        for key, partition, value in writes:
            raw = self._encode(value)
            with in_partition(partition):
                data[key] = value if self._keep else raw
            records.append((name, partition, dump_key(key), dump_value(raw)))
            staged = self._staged.get(key)
            if staged is value or (self._snapshots and staged == value):
                del self._staged[key]
        sent = await self._sender.send(records)
        for topic, partition, n, future in sent:
            future.add_done_callback(partial(_persisted, data, TP(topic, partition), n))
        return [future for *_, future in sent]

    def stored(self, key: str) -> V | None:
        """The value as last flushed (what the changelog holds), ignoring staged ones."""
        with in_partition(None):
            raw = self.table.data.get(key)
        if raw is None:
            return None
        # The memory store holds our objects after a write and JSON after recovering from the changelog.
        return self._decode(raw) if isinstance(raw, dict) else raw  # type: ignore[no-any-return]


def _persisted(store: Any, tp: TP, records: int, future: asyncio.Future[Any]) -> None:
    """Records the changelog offset the store holds up to, as Faust's `Table._on_changelog_sent` does (a
    RocksDB store reads only the changelog beyond it when it reopens)."""
    if not future.cancelled() and future.exception() is None:
        store.set_persisted_offset(tp, future.result().offset + records - 1)


def _codecs(table: TableT) -> tuple[Callable[[Any], bytes | None], Callable[[Any], bytes | None]]:
    """Key and value to changelog bytes exactly as Faust's codecs write them (its recovery and standbys
    read them as their own). Faust's `json` codec is `faust.utils.json.dumps`; called directly it skips
    the schema and codec lookups, a third of the cost of a write."""
    t = cast(Any, table)
    if t.key_serializer == t.value_serializer == "json":
        return _json_bytes, _json_bytes
    changelog = t.changelog_topic
    return (
        lambda key: changelog.prepare_key(key, t.key_serializer)[0],
        lambda value: changelog.prepare_value(value, t.value_serializer)[0],
    )


def _json_bytes(obj: Any) -> bytes:
    return want_bytes(faust_json.dumps(obj))
