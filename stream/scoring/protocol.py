"""The `Scorer` protocol the stream and the backfill call, and what a scoring call returns.

Two implementations: `stream.scoring.triton.TritonScorer` (the served path) and
`stream.scoring.inprocess.TorchScriptScorer` (the same model.pt files run in this process).

Versions: `promo_encoder` and `effect_scorer` are exported together under one version number, and a
promotion vector only means something to the scorer of the same version. A caller that caches vectors
asks `model_version()`, encodes and scores with `version=` that number, and re-encodes when the number
changes; without `version=` each call uses the newest version the implementation serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from stream.scoring import signature as sig

REVENUE = sig.OUTCOMES.index("revenue")


@dataclass(frozen=True)
class ScoreResult:
    """Per row, in OUTCOMES order: visit/conversion probabilities and expected revenue, for each arm."""

    p_treated: np.ndarray  # float32 [N, 3]
    p_control: np.ndarray  # float32 [N, 3]
    model_version: int

    def __len__(self) -> int:
        return len(self.p_treated)


class Scorer(Protocol):
    async def encode(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, *, version: int | None = None
    ) -> np.ndarray:
        """Promotion vectors float32 [N, PROMO_DIM] from int64 tokens [N, MAX_TOKENS]."""
        ...

    async def score(
        self,
        user_features: np.ndarray,
        promo_vector: np.ndarray,
        promo_attrs: np.ndarray,
        *,
        version: int | None = None,
    ) -> ScoreResult:
        """Both arms' expected outcomes for each row; one request per call (callers batch)."""
        ...

    async def model_version(self) -> int:
        """The newest version both models serve."""
        ...

    async def close(self) -> None: ...


def uplift(result: ScoreResult) -> np.ndarray:
    """Predicted effect of showing the promotion, per outcome: p_treated - p_control, [N, 3]."""
    return result.p_treated - result.p_control


def incremental_revenue(result: ScoreResult) -> np.ndarray:
    """Expected incremental revenue of each exposure: the revenue uplift, [N]."""
    return uplift(result)[:, REVENUE]


def empty_outputs(outputs: tuple[sig.Tensor, ...]) -> list[np.ndarray]:
    """Zero-row results: an empty call never reaches a model (a batch of 0 is not a valid request)."""
    return [np.zeros((0, *t.dims), dtype=np.float32) for t in outputs]


def _rows(name: str, array: np.ndarray, dims: tuple[int, ...], dtype: type[np.generic]) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=dtype)
    if out.ndim != 1 + len(dims) or out.shape[1:] != dims:
        raise ValueError(f"{name}: expected shape [N, {', '.join(map(str, dims))}], got {list(out.shape)}")
    return out


def encoder_inputs(input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """The encoder's inputs as contiguous arrays of the signature's dtypes; a wrong shape is a caller bug."""
    ids, mask = (
        _rows(t.name, a, t.dims, np.int64)
        for t, a in zip(sig.ENCODER_INPUTS, (input_ids, attention_mask), strict=True)
    )
    if len(ids) != len(mask):
        raise ValueError(f"{len(ids)} input_ids rows but {len(mask)} attention_mask rows")
    return ids, mask


def scorer_inputs(
    user_features: np.ndarray, promo_vector: np.ndarray, promo_attrs: np.ndarray
) -> tuple[np.ndarray, ...]:
    arrays = tuple(
        _rows(t.name, a, t.dims, np.float32)
        for t, a in zip(sig.SCORER_INPUTS, (user_features, promo_vector, promo_attrs), strict=True)
    )
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(f"inputs disagree on the number of rows: {[len(a) for a in arrays]}")
    return arrays
