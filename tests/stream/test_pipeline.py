"""Batches overlap while scoring but finish in order; the scorer retries a batch until Triton answers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from stream.batching.pipeline import Pipeline, Settle
from stream.batching.request import build_request
from stream.batching.scoring import BatchScorer
from stream.batching.users import EMPTY
from stream.errors import ScoringUnavailable
from stream.registry.encoder import PromoTextEncoder
from stream.registry.registry import Registry
from stream.scoring.protocol import ScoreResult

pytestmark = pytest.mark.unit


async def test_finishes_in_submission_order_with_bounded_work_in_flight() -> None:
    pipeline = Pipeline(max_in_flight=2)
    running, peak, finished = 0, 0, []

    async def work(i: int, delay: float) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(delay)
        running -= 1
        return i

    async def send(i: int) -> Settle:
        finished.append(i)
        return settle

    async def settle() -> None:
        return None

    for i, delay in enumerate([0.05, 0.0, 0.02, 0.0]):
        await pipeline.submit(work(i, delay), send)
    await pipeline.drain()
    assert finished == [0, 1, 2, 3] and peak == 2


async def test_the_next_batch_is_sent_while_this_one_settles_and_both_stages_keep_order() -> None:
    pipeline = Pipeline(max_in_flight=3)
    log: list[str] = []
    delivered = {i: asyncio.Event() for i in range(3)}

    async def work(i: int) -> int:
        await asyncio.sleep(0.01 * (3 - i))  # the last batch is scored first
        return i

    async def send(i: int) -> Settle:
        log.append(f"send {i}")

        async def settle() -> None:
            await delivered[i].wait()
            log.append(f"settle {i}")

        return settle

    for i in range(3):
        await pipeline.submit(work(i), send)
    await asyncio.sleep(0.1)
    assert log == ["send 0", "send 1", "send 2"]  # none waited for batch 0's delivery
    for i in (2, 1, 0):
        delivered[i].set()
    await pipeline.drain()
    assert log[3:] == ["settle 0", "settle 1", "settle 2"]


async def test_a_failure_stops_later_batches_and_is_reported_once() -> None:
    errors: list[BaseException] = []
    pipeline = Pipeline(max_in_flight=4, on_error=errors.append)
    finished: list[int] = []

    async def work(i: int) -> int:
        if i == 1:
            raise RuntimeError("boom")
        return i

    async def send(i: int) -> Settle:
        async def settle() -> None:
            finished.append(i)

        return settle

    for i in range(3):
        await pipeline.submit(work(i), send)
    await pipeline.drain()
    assert finished == [0] and len(errors) == 1 and isinstance(pipeline.failed, RuntimeError)
    with pytest.raises(RuntimeError, match="stopped"):
        await pipeline.submit(work(9), send)


class _FlakyScorer:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def model_version(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise ScoringUnavailable("Triton is away")
        return 3

    async def encode(self, *args: object, **kwargs: object) -> np.ndarray:
        raise NotImplementedError

    async def score(self, *args: object, **kwargs: object) -> ScoreResult:
        raise NotImplementedError

    async def close(self) -> None:
        return None


async def test_a_batch_is_retried_with_backoff_until_the_scorer_answers() -> None:
    scorer = _FlakyScorer(failures=3)
    batches = BatchScorer(
        scorer,
        Registry({}, lambda k, v: None),
        PromoTextEncoder(scorer),
        backoff_base_s=0.001,
        backoff_max_s=0.002,
    )
    # An empty request only needs the served version: enough to exercise the retry loop.
    scored = await batches.score(build_request([], [], lambda _: EMPTY, []))
    assert scored.version == 3 and scorer.calls == 4 and batches.outage.since is None
