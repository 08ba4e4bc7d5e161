"""`liftstream bench --triton-only`: rows/s of effect_scorer and texts/s of promo_encoder through gRPC.

The client is the engine's own (`TritonScorer`, tritonclient.grpc.aio): each of `concurrency` coroutines
sends requests of `batch` rows back to back for `seconds`, pinned to the served version. Rows count
when their response arrives; the rate is rows over the time until the last response. The encoder takes
at most ENCODER_MAX_BATCH texts a request, so its batch sizes are capped there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import numpy as np

from stream.bench.stats import percentile_ms
from stream.errors import ConfigError, ScoringError
from stream.scoring import signature as sig
from stream.scoring.triton import TritonScorer

log = logging.getLogger(__name__)

_CLS, _SEP = 101, 102


@dataclass(frozen=True)
class Cell:
    model: str
    batch: int
    concurrency: int
    requests: int
    rows: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s, 1)}


def int_list(text: str, name: str) -> tuple[int, ...]:
    """`1,64,512` → (1, 64, 512); anything but positive integers is a ConfigError naming the option."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} takes comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise ConfigError(f"{name} takes positive integers, got {text!r}")
    return values


def encoder_batches(batch_sizes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted({min(b, sig.ENCODER_MAX_BATCH) for b in batch_sizes}))


def scorer_rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    user = rng.gamma(1.0, 2.0, (n, len(sig.USER_FEATURES))).astype(np.float32)
    vector = rng.uniform(-1, 1, (n, sig.PROMO_DIM)).astype(np.float32)
    attrs = rng.random((n, len(sig.PROMO_ATTRS))).astype(np.float32)
    return user, vector, attrs


def encoder_rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Token rows as the tokenizer makes them: CLS, 16 to 64 tokens, SEP, zero padding."""
    ids = np.zeros((n, sig.MAX_TOKENS), np.int64)
    mask = np.zeros_like(ids)
    for row, length in enumerate(rng.integers(16, sig.MAX_TOKENS, n, endpoint=True).tolist()):
        ids[row, :length] = rng.integers(1000, 29000, length)
        ids[row, 0], ids[row, length - 1] = _CLS, _SEP
        mask[row, :length] = 1
    return ids, mask


async def measure(model: str, batch: int, concurrency: int, seconds: float,
                  call: Callable[[], Awaitable[object]]) -> Cell:  # fmt: skip
    latencies: list[float] = []
    began = time.perf_counter()
    stop_at = began + seconds

    async def loop() -> None:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - t) * 1000)

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return Cell(model, batch, concurrency, len(latencies), len(latencies) * batch, elapsed,
                percentile_ms(latencies, 50), percentile_ms(latencies, 99))  # fmt: skip


@dataclass(frozen=True)
class Grid:
    version: int
    cells: list[Cell]
    errors: dict[str, str]
    """model → why it could not be measured (the other model's figures still stand)."""

    def best(self, model: str) -> float | None:
        return max((c.rows_per_s for c in self.cells if c.model == model), default=None)


async def triton_grid(
    url: str, batch_sizes: tuple[int, ...], concurrency: tuple[int, ...], seconds: float,
    on_cell: Callable[[Cell], None] | None = None,
) -> Grid:  # fmt: skip
    """One Cell per model × batch × concurrency."""
    rng = np.random.default_rng(0)
    scorer = TritonScorer(url, timeout_s=120.0, retries=2)
    cells: list[Cell] = []
    errors: dict[str, str] = {}
    try:
        version = await scorer.wait_ready(timeout_s=30)
        plans: list[tuple[str, tuple[int, ...], Callable[[int], Callable[[], Awaitable[object]]]]] = [
            (sig.SCORER, batch_sizes, lambda b: _scorer_call(scorer, scorer_rows(rng, b), version)),
            (sig.ENCODER, encoder_batches(batch_sizes),
             lambda b: _encoder_call(scorer, encoder_rows(rng, b), version)),
        ]  # fmt: skip
        for model, batches, make in plans:
            try:
                for b in batches:
                    call = make(b)
                    await call()  # warm-up: the connection, the server's first-call allocations
                    for c in concurrency:
                        cells.append(await measure(model, b, c, seconds, call))
                        if on_cell is not None:
                            on_cell(cells[-1])
            except ScoringError as exc:
                log.warning("%s could not be measured: %s", model, exc)
                errors[model] = str(exc)
    finally:
        await scorer.close()
    return Grid(version, cells, errors)


def _scorer_call(
    scorer: TritonScorer, rows: tuple[np.ndarray, ...], version: int
) -> Callable[[], Awaitable[object]]:
    return lambda: scorer.score(*rows, version=version)


def _encoder_call(
    scorer: TritonScorer, rows: tuple[np.ndarray, ...], version: int
) -> Callable[[], Awaitable[object]]:
    return lambda: scorer.encode(*rows, version=version)
