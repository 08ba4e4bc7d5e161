"""One Triton scoring request per batch: retried while Triton is away, split when the batch is poison.

Two kinds of failure, two answers:

- **Triton away** (`ScoringUnavailable`: UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED after
  `TritonScorer`'s own bounded retries, no model version ready, or the pinned version rolled out): the
  batch backs off here, jittered and capped, and tries again, forever, re-reading the served version
  each time. A batch is never dropped for an outage; its offsets stay uncommitted, the `Outage` raises
  the `triton_unavailable` alert, and the worker's consumer keeps polling and heartbeating meanwhile
  (see docs/engine.md).
- **A deterministic error** (any other `ScoringError`, e.g. INVALID_ARGUMENT): retried the same way
  `TRIES` times in all, in case it passes; then the rows are split in halves, each scored on its own,
  until the error is isolated to single rows. Those rows are left unscored with reason `scoring_failed`,
  and the rest of the batch scores. Retrying such a batch forever would stall its partitions for good.

Every answer is validated (stream/scoring/validate.py): rows scored NaN, ±inf, out of range or in an
answer of the wrong shape, and rows whose promotion the encoder gave no valid vector, are left unscored
with reason `invalid_score`. Unscored exposures become dead letters and settle like the rest of the batch
(stream/agents/users.py: send); unscored ranking candidates are left out of their ranking.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from stream.batching.assemble import ExposureItem
from stream.batching.request import ScoreRequest
from stream.errors import ScoringError, ScoringUnavailable
from stream.registry.encoder import PromoTextEncoder, registry_vectors
from stream.registry.promos import Promo
from stream.registry.registry import Registry
from stream.scoring.protocol import Scorer
from stream.scoring.signature import OUTCOMES, PROMO_DIM
from stream.scoring.triton import backoff_delay
from stream.scoring.validate import invalid_scores

log = logging.getLogger(__name__)

INVALID_SCORE = "invalid_score"
SCORING_FAILED = "scoring_failed"
TRIES = 3
"""Attempts of a whole batch that fails deterministically before it is split to find the failing rows."""


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str
    """`invalid_score` or `scoring_failed`: the dead-letter reason of an unscored exposure."""
    error: str


@dataclass(frozen=True)
class Scored:
    request: ScoreRequest
    p_treated: np.ndarray
    p_control: np.ndarray
    version: int
    scored_at: datetime
    failures: Mapping[int, Failure] = field(default_factory=dict)
    """Rows left unscored, and why; their p_treated / p_control rows are NaN and nothing is built on them."""

    @property
    def uplift(self) -> np.ndarray:
        return self.p_treated - self.p_control

    def exposures(self) -> list[tuple[int, ExposureItem, Promo]]:
        """(row, item, promotion) of each scored exposure, in request order."""
        return [
            (i, item, promo)
            for i, (item, promo) in enumerate(self.request.exposures)
            if i not in self.failures
        ]

    def unscored(self) -> list[tuple[ExposureItem, Failure]]:
        """The exposures left unscored, in request order, with why."""
        return [
            (item, self.failures[i])
            for i, (item, _) in enumerate(self.request.exposures)
            if i in self.failures
        ]


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


class _Answer:
    """The scores of one batch as its rows are scored, alone or in parts."""

    def __init__(self, rows: int) -> None:
        self.p_treated = np.full((rows, len(OUTCOMES)), np.nan, dtype=np.float32)
        self.p_control = np.full((rows, len(OUTCOMES)), np.nan, dtype=np.float32)
        self.failures: dict[int, Failure] = {}

    def fail(self, rows: np.ndarray, reason: str, error: str) -> None:
        self.failures.update(dict.fromkeys(rows.tolist(), Failure(reason, error)))


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
                scored = await self._attempt(request)
            except ScoringUnavailable as exc:
                self.outage.failed(str(exc))
                delay = self._delay(attempt)
                log.warning(
                    "scoring a batch of %d rows failed (%s); retrying in %.2fs", len(request), exc, delay
                )
                await asyncio.sleep(delay)
                attempt += 1
            else:
                self.outage.recovered()
                return scored

    async def _attempt(self, request: ScoreRequest) -> Scored:
        if not len(request):
            # Nothing to score (a batch of clicks and profiles): no reason to wait for Triton.
            empty = np.zeros((0, len(OUTCOMES)), dtype=np.float32)
            version = self.version or await self.scorer.model_version()
            return Scored(request, empty, empty, version, datetime.now(UTC))
        # One version for the whole batch, its parts too: every output carries the version that scored it.
        version = await self.scorer.model_version()
        answer = _Answer(len(request))
        await self._isolate(request, np.arange(len(request)), version, answer, TRIES)
        if answer.failures:
            reasons = sorted({f.reason for f in answer.failures.values()})
            first = next(iter(answer.failures.values()))
            log.warning(
                "%d of %d rows left unscored at v%d (%s; first: %s)",
                len(answer.failures), len(request), version, ", ".join(reasons), first.error,
            )
        self.version = version
        now = datetime.now(UTC)
        return Scored(request, answer.p_treated, answer.p_control, version, now, answer.failures)

    async def _isolate(
        self, request: ScoreRequest, rows: np.ndarray, version: int, answer: _Answer, tries: int
    ) -> None:
        """Scores `rows` into `answer`. A deterministic error is tried `tries` times, then split in halves
        (each tried once) down to the single rows it fails, which are left unscored."""
        for attempt in range(tries):
            try:
                await self._score_rows(request, rows, version, answer)
                return
            except ScoringUnavailable:
                raise
            except ScoringError as exc:
                error = exc
                if attempt + 1 < tries:
                    delay = self._delay(attempt)
                    log.warning("scoring %d rows failed (%s); trying again in %.2fs", len(rows), exc, delay)
                    await asyncio.sleep(delay)
        if len(rows) == 1:
            answer.fail(rows, SCORING_FAILED, str(error))
            return
        half = len(rows) // 2
        for part in (rows[:half], rows[half:]):
            await self._isolate(request, part, version, answer, 1)

    async def _score_rows(
        self, request: ScoreRequest, rows: np.ndarray, version: int, answer: _Answer
    ) -> None:
        ids = [request.promotion_ids[i] for i in rows.tolist()]
        promos = await registry_vectors(self.registry, self.encoder, ids, version)
        order = {pid: i for i, pid in enumerate(p for p in promos if version in promos[p].vectors)}
        has_vector = np.asarray([pid in order for pid in ids], dtype=bool)
        if not has_vector.all():
            missing = sorted({pid for pid in ids if pid not in order})
            error = f"promo_encoder v{version} gave no valid vector for {', '.join(missing[:3])}"
            answer.fail(rows[~has_vector], INVALID_SCORE, error)
        rows = rows[has_vector]
        if not len(rows):
            return
        table = np.asarray([promos[pid].vectors[version] for pid in order], dtype=np.float32)
        vectors = table.reshape(-1, PROMO_DIM)[[order[request.promotion_ids[i]] for i in rows.tolist()]]
        with self._inflight() if self._inflight is not None else nullcontext():
            result = await self.scorer.score(
                request.user_features[rows], vectors, request.promo_attrs[rows], version=version
            )
        invalid = invalid_scores(result.p_treated, result.p_control, len(rows))
        if len(invalid) < len(rows):  # the answer has the right shape, and some rows are valid
            valid = np.ones(len(rows), dtype=bool)
            valid[list(invalid)] = False
            answer.p_treated[rows[valid]] = result.p_treated[valid]
            answer.p_control[rows[valid]] = result.p_control[valid]
        for i, why in invalid.items():
            answer.failures[int(rows[i])] = Failure(INVALID_SCORE, f"effect_scorer v{version}: {why}")

    def _delay(self, attempt: int) -> float:
        return backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng.random())
