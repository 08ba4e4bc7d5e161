"""What a model's answer must be before the engine uses it: the right shape, finite, and in range.

A model that answers NaN, ±inf, a probability outside [0, 1], a negative expected revenue, or an array
of another shape than it was asked for has not scored those rows. Used as they are, they would fail the
output's validation (so the batch, and its replay after the crash, a crash loop) or, worse, enter the
realised-effect covariates and the drift window. The engine leaves such rows unscored instead: their
exposures are dead-lettered `invalid_score`, their promotion vectors never stored.
"""

from __future__ import annotations

import numpy as np

from stream.scoring.signature import OUTCOMES, PROMO_DIM

PROBABILITIES = [i for i, o in enumerate(OUTCOMES) if o != "revenue"]
REVENUE = OUTCOMES.index("revenue")


def invalid_scores(p_treated: np.ndarray, p_control: np.ndarray, rows: int) -> dict[int, str]:
    """Row → what is wrong with it, for a scorer's answer to `rows` rows (empty when every row is valid).

    Visit and conversion are probabilities in [0, 1]; revenue is an expected value, at least 0.
    """
    for name, array in (("p_treated", p_treated), ("p_control", p_control)):
        wrong = _shape_error(name, array, (rows, len(OUTCOMES)))
        if wrong:
            return dict.fromkeys(range(rows), wrong)
    both = np.stack([p_treated, p_control])  # [arm, row, outcome]
    finite = np.isfinite(both).all(axis=(0, 2))
    with np.errstate(invalid="ignore"):
        probability = ((both[..., PROBABILITIES] >= 0.0) & (both[..., PROBABILITIES] <= 1.0)).all(axis=(0, 2))
        revenue = (both[..., REVENUE] >= 0.0).all(axis=0)
    out: dict[int, str] = {}
    for i in np.flatnonzero(~(finite & probability & revenue)).tolist():
        if not finite[i]:
            out[i] = "non-finite score"
        elif not probability[i]:
            out[i] = "probability outside [0, 1]"
        else:
            out[i] = "negative expected revenue"
    return out


def invalid_vectors(vectors: np.ndarray, rows: int) -> dict[int, str]:
    """Row → what is wrong with it, for the encoder's answer to `rows` promotion texts."""
    wrong = _shape_error("promo_vector", vectors, (rows, PROMO_DIM))
    if wrong:
        return dict.fromkeys(range(rows), wrong)
    return {i: "non-finite vector" for i in np.flatnonzero(~np.isfinite(vectors).all(axis=1)).tolist()}


def _shape_error(name: str, array: np.ndarray, shape: tuple[int, int]) -> str:
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f" or array.shape != shape:
        got = f"{getattr(array, 'dtype', type(array).__name__)} {list(np.shape(array))}"
        return f"{name} is {got}, expected float [{shape[0]}, {shape[1]}]"
    return ""
