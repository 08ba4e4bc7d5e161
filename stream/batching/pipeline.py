"""Batches overlap while they wait on Triton, and finish one at a time in the order they were taken.

`submit` waits for one of `max_in_flight` slots — the back-pressure that stops the agent from taking
more input while Triton is slow — then starts the batch's work. Each batch's `finish` (publishing,
flushing state, acknowledging) runs only after the previous batch's finish completed, so outputs,
table writes and acknowledgements keep input order. A failure stops the pipeline: later batches do
not finish, nothing after the failure is acknowledged, and `on_error` is told once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Pipeline:
    def __init__(self, max_in_flight: int, on_error: Callable[[BaseException], None] | None = None) -> None:
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tail: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._on_error = on_error

    async def submit(self, work: Awaitable[T], finish: Callable[[T], Awaitable[None]]) -> None:
        if self._failed is not None:
            _close(work)
            raise RuntimeError("the batch pipeline stopped after a failure") from self._failed
        await self._slots.acquire()
        task = asyncio.create_task(self._run(work, finish, self._tail))
        task.add_done_callback(_retrieve)
        self._tail = task

    async def drain(self) -> None:
        """Waits until every submitted batch has finished (or the pipeline failed)."""
        if self._tail is not None:
            await asyncio.wait([self._tail])

    @property
    def failed(self) -> BaseException | None:
        return self._failed

    async def _run(
        self, work: Awaitable[T], finish: Callable[[T], Awaitable[None]], previous: asyncio.Task[None] | None
    ) -> None:
        try:
            result = await work
            if previous is not None:
                await asyncio.wait([previous])
            if self._failed is None:
                await finish(result)
        except BaseException as exc:
            if self._failed is None:
                self._failed = exc
                log.exception("batch pipeline failed")
                if self._on_error is not None:
                    self._on_error(exc)
            raise
        finally:
            self._slots.release()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _close(work: Awaitable[Any]) -> None:
    close = getattr(work, "close", None)
    if close is not None:
        close()
