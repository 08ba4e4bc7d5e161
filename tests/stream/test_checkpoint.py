"""The commit protocol (stream/batching/checkpoint.py) against fake flushers and a fake committer: the order
outputs → user values → partials → offsets, and what a revoke leaves written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from stream.batching.checkpoint import Checkpoint, Settling
from stream.batching.commits import Commits
from stream.batching.fence import Fence
from stream.batching.pipeline import Pipeline

pytestmark = pytest.mark.unit

A = ("exposures", 0)


class Log:
    def __init__(self) -> None:
        self.steps: list[str] = []
        self.commits: list[dict[Any, int]] = []


class Flusher:
    def __init__(self, name: str, log: Log) -> None:
        self.name, self.log = name, log

    async def flush(self, writes: Iterable[tuple[str, int, Any]]) -> list[Any]:
        keys = [k for k, _, _ in writes]
        self.log.steps.append(f"{self.name}:{','.join(keys)}")
        return []


def _checkpoint(log: Log, pipeline: Pipeline, drain_s: float = 1.0) -> Checkpoint:
    async def committer(offsets: Mapping[Any, int], revoking: bool) -> bool:
        log.steps.append(f"commit{' (revoke)' if revoking else ''}")
        log.commits.append(dict(offsets))
        return True

    fence = Fence(stall_s=60.0)
    return Checkpoint(
        Commits(), fence, Flusher("users", log), Flusher("partials", log), committer, pipeline.drain, drain_s
    )


async def _delivered(log: Log, name: str, gate: asyncio.Event | None = None) -> None:
    if gate is not None:
        await gate.wait()
    log.steps.append(f"delivered:{name}")


async def test_a_batch_settles_outputs_then_user_values_then_partials_then_offsets() -> None:
    log = Log()
    cp = _checkpoint(log, Pipeline(4))
    batch, _ = cp.commits.take([(A, 0), (A, 1)])
    settled = await cp.settle(
        Settling(batch, cp.fence.epoch, [_delivered(log, "b0")], [("u1", 0, 1)], [("p/0", 0, 2)], [])
    )
    assert settled
    assert await cp.commit()
    assert log.steps == ["delivered:b0", "users:u1", "partials:p/0", "commit"]
    assert log.commits == [{A: 2}]
    assert not await cp.commit()  # nothing new


async def test_a_revoke_drains_what_settles_in_time_and_fences_the_rest() -> None:
    log = Log()
    pipeline = Pipeline(4)
    cp = _checkpoint(log, pipeline, drain_s=0.05)
    stuck = asyncio.Event()  # Triton stopped: the second batch's outputs never come back in time

    async def run(offsets: list[int], gate: asyncio.Event | None) -> None:
        batch, _ = cp.commits.take([(A, o) for o in offsets])
        epoch = cp.fence.epoch

        async def work() -> None:
            await _delivered(log, f"b{batch}", gate)

        async def send(_: None) -> Any:
            async def settle() -> None:
                await cp.settle(Settling(batch, epoch, [], [(f"u{batch}", 0, 0)], [(f"p{batch}", 0, 0)], []))

            return settle

        await pipeline.submit(work(), send)

    await run([0, 1], None)
    await run([2, 3], stuck)
    await cp.revoke()
    assert log.commits == [{A: 2}]  # the first batch drained and committed, the stuck one not
    stuck.set()
    await pipeline.drain()
    assert "users:u1" not in log.steps and "partials:p1" not in log.steps
    assert log.steps[-1] == "delivered:b1"  # its outputs came, but nothing of it was written after the fence
    assert cp.commits.due() == {}
