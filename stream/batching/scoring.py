"""One Triton scoring request per batch, retried until Triton answers: a batch is never dropped.

`TritonScorer` already retries UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED a bounded number
of times; when it gives up (`ScoringUnavailable`) the batch backs off here, jittered and capped, and
tries again — re-reading the served model version, which may have rolled meanwhile. Any other scoring
error is retried the same way: the batch's offsets stay uncommitted until it is scored, and the
worker's consumer keeps polling and heartbeating meanwhile (see docs/engine.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from stream.batching.request import ScoreRequest
from stream.errors import ScoringError
from stream.registry.encoder import PromoTextEncoder, registry_vectors
from stream.registry.registry import Registry
from stream.scoring.protocol import Scorer
from stream.scoring.signature import OUTCOMES, PROMO_DIM
from stream.scoring.triton import backoff_delay

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    request: ScoreRequest
    p_treated: np.ndarray
    p_control: np.ndarray
    version: int
    scored_at: datetime

    @property
    def uplift(self) -> np.ndarray:
        return self.p_treated - self.p_control


class Outage:
    """When the current run of failed scoring attempts began (None while Triton answers)."""

    def __init__(self) -> None:
        self.since: datetime | None = None
        self.error = ""

    def failed(self, error: str) -> None:
        self.since = self.since or datetime.now(UTC)
        self.error = error

    def recovered(self) -> None:
        self.since = None
        self.error = ""


class BatchScorer:
    def __init__(
        self,
        scorer: Scorer,
        registry: Registry,
        encoder: PromoTextEncoder,
        *,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 5.0,
        inflight: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        self.scorer = scorer
        self.registry = registry
        self.encoder = encoder
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.outage = Outage()
        self.version = 0
        """The version of the last scored batch (0 before the first)."""
        self._inflight = inflight
        self._rng = random.Random()

    async def score(self, request: ScoreRequest) -> Scored:
        attempt = 0
        while True:
            try:
                return await self._attempt(request)
            except ScoringError as exc:
                self.outage.failed(str(exc))
                delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng.random())
                log.warning(
                    "scoring a batch of %d rows failed (%s); retrying in %.2fs", len(request), exc, delay
                )
                await asyncio.sleep(delay)
                attempt += 1

    async def _attempt(self, request: ScoreRequest) -> Scored:
        if not len(request):
            # Nothing to score (a batch of clicks and profiles): no reason to wait for Triton.
            empty = np.zeros((0, len(OUTCOMES)), dtype=np.float32)
            version = self.version or await self.scorer.model_version()
            self.outage.recovered()
            return Scored(request, empty, empty, version, datetime.now(UTC))
        version = await self.scorer.model_version()
        promos = await registry_vectors(self.registry, self.encoder, request.promotion_ids, version)
        order = {pid: i for i, pid in enumerate(promos)}
        table = np.asarray([promos[pid].vectors[version] for pid in order], dtype=np.float32)
        vectors = table.reshape(-1, PROMO_DIM)[[order[pid] for pid in request.promotion_ids]]
        with self._inflight() if self._inflight is not None else nullcontext():
            result = await self.scorer.score(
                request.user_features, vectors, request.promo_attrs, version=version
            )
        self.outage.recovered()
        self.version = result.model_version
        return Scored(request, result.p_treated, result.p_control, result.model_version, datetime.now(UTC))
