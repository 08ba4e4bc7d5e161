"""The one commit protocol of the user-events path: outputs delivered → user values → partials → offsets.

`settle` finishes one batch (batches settle in the order they were taken, stream/batching/pipeline.py):
it waits for the delivery of the batch's outputs, then flushes its user values and waits, then its
partials and waits (why in this order: stream/batching/outbox.py), and then marks its records settled in
`Commits`. `commit` commits, per partition, up to the first offset not settled — one commit in flight,
none while the group rebalances (`committer` refuses). A batch the `Fence` no longer allows (taken before a
revoke, or before a stall of the event loop) stops at the next step and writes nothing more; its records
stay unsettled and are replayed from the committed offsets.

`revoke` is the rebalance step: stop (the caller stops taking), let the batches in flight settle for up to
`drain_s`, commit what settled, and start a new epoch of the fence — after it no batch taken before
writes a table value.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from stream.batching.commits import Commits
from stream.batching.fence import Fence
from stream.batching.records import TP, Record

log = logging.getLogger(__name__)

Committer = Callable[[Mapping[TP, int], bool], Awaitable[bool]]
"""(next offset per (logical topic, partition), whether in a revoke) → whether it committed."""


class Flusher(Protocol):
    async def flush(self, writes: Iterable[tuple[str, int, Any]]) -> list[Any]: ...


@dataclass
class Settling:
    """What a batch hands to `settle`."""

    batch: int
    """Its id in `Commits`."""
    epoch: int
    sent: Sequence[Awaitable[Any]]
    users: Sequence[tuple[str, int, Any]]
    partials: Sequence[tuple[str, int, Any]]
    released: Sequence[Record]
    """Records held by earlier batches (exposures waiting for their promotion) that this batch settles."""


class Checkpoint:
    def __init__(
        self,
        commits: Commits,
        fence: Fence,
        users: Flusher,
        partials: Flusher,
        committer: Committer,
        drain: Callable[[], Awaitable[None]],
        drain_s: float,
    ) -> None:
        self.commits = commits
        self.fence = fence
        self._users = users
        self._partials = partials
        self._committer = committer
        self._drain = drain
        self._drain_s = drain_s
        self._committing = False

    async def settle(self, s: Settling) -> bool:
        """Whether the batch settled (False: fenced off, it wrote nothing after the fence)."""
        await asyncio.gather(*s.sent)
        if not self.fence.allows(s.epoch):
            return False
        await asyncio.gather(*await self._users.flush(s.users))
        if not self.fence.allows(s.epoch):
            return False
        await asyncio.gather(*await self._partials.flush(s.partials))
        if not self.fence.allows(s.epoch):
            return False
        for record in s.released:
            self.commits.release(record.tp, record.offset)
        self.commits.settle(s.batch)
        return True

    async def commit(self, *, revoking: bool = False) -> bool:
        if self._committing:
            return False
        offsets = self.commits.due()
        if not offsets:
            return False
        self._committing = True
        try:
            done = await self._committer(offsets, revoking)
        finally:
            self._committing = False
        if done:
            self.commits.committed(offsets)
        return done

    async def revoke(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._drain()), self._drain_s)
        except TimeoutError:
            log.warning(
                "revoke: %d batches still in flight after %gs are abandoned; their input is replayed",
                len(self.commits),
                self._drain_s,
            )
        await self.commit(revoking=True)
        self.fence.revoke()
        self.commits.reset()
