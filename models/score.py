"""`liftstream score`: backfill predictions for every exposure of a history, through Triton.

Features come from the same replay as training (`models.dataset.build_dataset`); each promotion's text is
encoded once by `promo_encoder`; exposures go to `effect_scorer` in client-side batches, several in flight,
all pinned to one model version so every row of the file comes from the same model.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.dataset import Dataset, build_dataset
from stream.errors import ConfigError, ModelError
from stream.events.models import Arm
from stream.scoring import signature as sig
from stream.scoring.inprocess import newest_common_version
from stream.scoring.protocol import Scorer, ScoreResult, uplift
from stream.scoring.tokenize import load_tokenizer, tokenize
from stream.scoring.triton import TritonScorer

log = logging.getLogger(__name__)

COLUMNS = (
    "event_id", "user_id", "promotion_id", "campaign_id", "arm", "model_version",
    *(f"{kind}_{o}" for o in sig.OUTCOMES for kind in ("p_treated", "p_control", "uplift")),
)  # fmt: skip
READY_TIMEOUT_S = 300.0  # a fresh server loads the encoder in a python-backend stub: slow on a small CPU


@dataclass(frozen=True)
class ScoreReport:
    rows: int
    promotions: int
    model_version: int
    encode_s: float  # promo_encoder requests
    score_s: float  # effect_scorer requests: what rows/s measures (no replay, start-up or CSV)
    total_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.score_s if self.score_s > 0 else float("inf")


@dataclass(frozen=True)
class PromoTokens:
    promotion_ids: np.ndarray  # sorted
    input_ids: np.ndarray
    attention_mask: np.ndarray


def promo_tokens(promo_texts: dict[str, str]) -> PromoTokens:
    promotions = np.array(sorted(promo_texts))
    return PromoTokens(promotions, *tokenize(load_tokenizer(), [promo_texts[p] for p in promotions]))


async def score_rows(
    scorer: Scorer,
    ds: Dataset,
    promotions: np.ndarray,
    vectors: np.ndarray,
    *,
    batch_size: int,
    max_in_flight: int,
    version: int,
) -> ScoreResult:
    """Both arms' predictions for every row of `ds`, from `version` of the served models."""
    codes = np.searchsorted(promotions, ds.promotion_ids)
    if len(ds) and ((codes >= len(promotions)).any() or (promotions[codes] != ds.promotion_ids).any()):
        raise ModelError("the history has exposures of promotions whose text it does not hold")
    gate = asyncio.Semaphore(max_in_flight)

    async def one(rows: slice) -> ScoreResult:
        async with gate:
            return await scorer.score(ds.user_features[rows], vectors[codes[rows]], ds.promo_attrs[rows],
                                      version=version)

    parts = await asyncio.gather(*(one(slice(i, i + batch_size)) for i in range(0, len(ds), batch_size)))
    empty = np.zeros((0, len(sig.OUTCOMES)), np.float32)
    return ScoreResult(
        np.concatenate([p.p_treated for p in parts]) if parts else empty,
        np.concatenate([p.p_control for p in parts]) if parts else empty,
        version,
    )


def write_predictions(path: Path, ds: Dataset, result: ScoreResult) -> None:
    """The CSV of COLUMNS, one row per exposure in the dataset's order; written whole, then renamed."""
    arms = np.where(ds.arm == 1, Arm.treatment.value, Arm.holdout.value)
    effects = uplift(result)
    numbers = [
        np.char.mod("%.7g", column)
        for o in range(len(sig.OUTCOMES))
        for column in (result.p_treated[:, o], result.p_control[:, o], effects[:, o])
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        version = str(result.model_version)
        writer.writerows(
            zip(ds.event_ids, ds.user_ids, ds.promotion_ids, ds.campaign_ids, arms,
                [version] * len(ds), *numbers, strict=True)
        )  # fmt: skip
    os.replace(tmp, path)


@contextmanager
def _endpoint(repo: Path, triton_url: str | None) -> Iterator[str]:
    if triton_url:
        yield triton_url
        return
    if newest_common_version(repo) is None:
        raise ModelError(f"{repo} holds no exported model: run `liftstream export --repo {repo}` first")
    from stream.local.triton import temporary_triton

    log.info("starting a temporary local Triton for %s", repo)
    with temporary_triton(repo) as endpoints:
        yield endpoints.grpc


async def _score(
    url: str, ds: Dataset, tokens: PromoTokens, batch_size: int, max_in_flight: int
) -> tuple[ScoreResult, float, float]:
    """The predictions, and the seconds spent encoding and scoring."""
    scorer = TritonScorer(url)
    try:
        version = await scorer.wait_ready(READY_TIMEOUT_S)
        started = time.perf_counter()
        vectors = await scorer.encode(tokens.input_ids, tokens.attention_mask, version=version)
        encoded = time.perf_counter()
        result = await score_rows(scorer, ds, tokens.promotion_ids, vectors, batch_size=batch_size,
                                  max_in_flight=max_in_flight, version=version)
        return result, encoded - started, time.perf_counter() - encoded
    finally:
        await scorer.close()


def score_history(
    repo: Path,
    history: Path,
    out: Path,
    *,
    triton_url: str | None = None,
    batch_size: int = sig.SCORER_MAX_BATCH,
    max_in_flight: int = 4,
) -> ScoreReport:
    if not 1 <= batch_size <= sig.SCORER_MAX_BATCH:
        raise ConfigError(f"--batch-size must be in [1, {sig.SCORER_MAX_BATCH}], got {batch_size}")
    if max_in_flight < 1:
        raise ConfigError(f"--in-flight must be >= 1, got {max_in_flight}")
    started = time.perf_counter()
    ds = build_dataset(history)
    tokens = promo_tokens(ds.promo_texts)
    with _endpoint(repo, triton_url) as url:
        result, encode_s, score_s = asyncio.run(_score(url, ds, tokens, batch_size, max_in_flight))
    write_predictions(out, ds, result)
    report = ScoreReport(len(ds), len(ds.promo_texts), result.model_version, encode_s, score_s,
                         time.perf_counter() - started)
    log.info("scored %d exposures of %d promotions with version %d: encoding %.2fs, scoring %.2fs "
             "(%.0f rows/s)", report.rows, report.promotions, report.model_version, encode_s, score_s,
             report.rows_per_s)
    return report
