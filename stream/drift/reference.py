"""Reference statistics of the training data, exported with the model and compared against live windows.

Every feature is cut at quantiles of the training data (the same edges for every scope), and the reference
keeps the fraction of rows in each bin overall and per arm. Bins are right-closed: (e[i-1], e[i]]. Discrete
features get fewer bins, because repeated quantiles collapse into one edge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stream.errors import ModelError
from stream.events.models import Arm
from stream.scoring.signature import OUTCOMES, PROMO_ATTRS, USER_FEATURES

FORMAT = 1
DEFAULT_BINS = 10
OVERALL = "overall"
SCOPES = (OVERALL, Arm.treatment.value, Arm.holdout.value)
PREDICTION_FEATURES = tuple(f"uplift_{o}" for o in OUTCOMES)
_CHUNK = 8192


@dataclass(frozen=True)
class Reference:
    features: tuple[str, ...]
    edges: np.ndarray
    """[features, bins - 1] inner cut points, padded with +inf where a feature has fewer bins."""
    expected: dict[str, np.ndarray]
    """scope → [features, bins] reference fractions (padding bins are 0)."""
    rows: dict[str, int]

    @property
    def width(self) -> int:
        return int(self.edges.shape[1]) + 1

    def counts(self, values: np.ndarray) -> np.ndarray:
        """[features, bins] histogram of the rows `values` [n, features] on the reference bins."""
        f = values.shape[1]
        offsets = np.arange(f)[None, :] * self.width
        total = np.zeros(f * self.width, dtype=np.int64)
        # Chunked so a large training set never materialises rows × features × edges at once.
        for start in range(0, len(values), _CHUNK):
            chunk = values[start : start + _CHUNK]
            index = (chunk[:, :, None] > self.edges[None, :, :]).sum(axis=2)
            total += np.bincount((index + offsets).ravel(), minlength=f * self.width)
        return total.reshape(f, self.width)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        try:
            if data["format"] != FORMAT:
                raise ModelError(f"drift reference format {data['format']} is not {FORMAT}")
            features = tuple(data["features"])
            width = int(data["bins"])
            if len(data["edges"]) != len(features) or width < 2:
                raise ModelError("malformed drift reference: one edge list per feature and 2+ bins expected")
            edges = np.full((len(features), width - 1), np.inf)
            for i, cuts in enumerate(data["edges"]):
                edges[i, : len(cuts)] = cuts
            expected, rows = {}, {}
            for scope, stats in data["scopes"].items():
                table = np.zeros((len(features), width))
                for i, fr in enumerate(stats["fractions"]):
                    table[i, : len(fr)] = fr
                expected[scope] = table
                rows[scope] = int(stats["rows"])
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"malformed drift reference: {exc!r}") from exc
        return cls(features, edges, expected, rows)


def build_reference(
    user_features: np.ndarray,
    promo_attrs: np.ndarray,
    arm: np.ndarray,
    p_treated: np.ndarray,
    p_control: np.ndarray,
    feature_names: tuple[str, ...] = (*USER_FEATURES, *PROMO_ATTRS),
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """JSON-able reference of the model inputs and the predicted uplift per outcome, overall and per arm.

    `arm` holds "treatment"/"holdout" strings or booleans/ints (true = treatment).
    """
    values = model_inputs(user_features, promo_attrs, p_treated - p_control)
    names = (*feature_names, *PREDICTION_FEATURES)
    if values.shape[1] != len(names):
        raise ModelError(f"{values.shape[1]} feature columns but {len(names)} names")
    if bins < 2 or len(values) == 0:
        raise ModelError("a drift reference needs at least 2 bins and one row")
    levels = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    cuts = [np.unique(q) for q in np.quantile(values, levels, axis=0).T]
    padded = np.full((len(names), bins - 1), np.inf)
    for i, c in enumerate(cuts):
        padded[i, : len(c)] = c
    ref = Reference(tuple(names), padded, {}, {})
    treated = treatment_mask(arm)
    scopes: dict[str, Any] = {}
    for scope, mask in ((OVERALL, np.ones_like(treated)), (SCOPES[1], treated), (SCOPES[2], ~treated)):
        if mask.any():
            counts = ref.counts(values[mask])
            scopes[scope] = {
                "rows": int(mask.sum()),
                "fractions": [(counts[i, : len(c) + 1] / mask.sum()).tolist() for i, c in enumerate(cuts)],
            }
    return {
        "format": FORMAT,
        "bins": bins,
        "features": list(names),
        "edges": [c.tolist() for c in cuts],
        "scopes": scopes,
    }


def model_inputs(user_features: np.ndarray, promo_attrs: np.ndarray, uplift: np.ndarray) -> np.ndarray:
    """The rows drift is measured on: user features, promotion attributes and predicted uplift."""
    return np.hstack([np.asarray(a, dtype=np.float64).reshape(len(a), -1)
                      for a in (user_features, promo_attrs, uplift)])


def treatment_mask(arm: np.ndarray) -> np.ndarray:
    arm = np.asarray(arm)
    if arm.dtype.kind in "USO":
        return np.asarray(arm == Arm.treatment.value)
    return arm.astype(bool)


def save_reference(reference: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(reference, separators=(",", ":")))


def load_reference(path: Path) -> Reference:
    try:
        return Reference.from_dict(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read drift reference {path}: {exc}") from exc
