"""Batches overlap while they wait on Triton and on Kafka, and take effect in the order they were taken.

`submit` waits for one of `max_in_flight` scoring slots and one of `max_unsettled` settling slots — the
back-pressure that stops the agent from taking more input while Triton or Kafka is slow — then starts the
batch's work. A scoring slot is free again once the batch is sent: a batch waiting for its deliveries
(three produce round trips in series, stream/batching/checkpoint.py) need not keep the next batches from
Triton. A batch finishes in two stages,
each in input order: `send` hands its outputs and state to the producer (after the previous batch's
`send`), and the `settle` it returns waits for their delivery and acknowledges the input (after the
previous batch's `settle`). So the next batch is sent while this one's deliveries are still on their way,
and outputs, table writes and acknowledgements all keep input order. A failure stops the pipeline: later
batches are neither sent nor settled, nothing after the failure is acknowledged, and `on_error` is told once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Settle = Callable[[], Awaitable[None]]


class Pipeline:
    def __init__(
        self,
        max_in_flight: int,
        on_error: Callable[[BaseException], None] | None = None,
        max_unsettled: int | None = None,
    ) -> None:
        """`max_unsettled`: batches sent and not settled, at most (4 × `max_in_flight` by default)."""
        self._slots = asyncio.Semaphore(max_in_flight)
        self._unsettled = asyncio.Semaphore(max_unsettled or 4 * max_in_flight)
        self._sent: asyncio.Future[None] | None = None
        self._tail: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._on_error = on_error

    async def submit(self, work: Awaitable[T], send: Callable[[T], Awaitable[Settle]]) -> None:
        if self._failed is not None:
            _close(work)
            raise RuntimeError("the batch pipeline stopped after a failure") from self._failed
        await self._unsettled.acquire()
        await self._slots.acquire()
        sent = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._run(work, send, sent, self._sent, self._tail))
        task.add_done_callback(_retrieve)
        self._sent, self._tail = sent, task

    async def drain(self) -> None:
        """Waits until every submitted batch has settled (or the pipeline failed)."""
        if self._tail is not None:
            await asyncio.wait([self._tail])

    @property
    def failed(self) -> BaseException | None:
        return self._failed

    async def _run(
        self,
        work: Awaitable[T],
        send: Callable[[T], Awaitable[Settle]],
        sent: asyncio.Future[None],
        previous_sent: asyncio.Future[None] | None,
        previous: asyncio.Task[None] | None,
    ) -> None:
        scoring = True
        try:
            result = await work
            await _after(previous_sent)
            settle = await send(result) if self._failed is None else None
            sent.set_result(None)
            self._slots.release()
            scoring = False
            await _after(previous)
            if settle is not None and self._failed is None:
                await settle()
        except BaseException as exc:
            if self._failed is None:
                self._failed = exc
                log.exception("batch pipeline failed")
                if self._on_error is not None:
                    self._on_error(exc)
            raise
        finally:
            if not sent.done():
                sent.set_result(None)
            if scoring:
                self._slots.release()
            self._unsettled.release()


async def _after(previous: asyncio.Future[Any] | None) -> None:
    if previous is not None:
        await asyncio.wait([previous])


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _close(work: Awaitable[Any]) -> None:
    close = getattr(work, "close", None)
    if close is not None:
        close()
