"""Training examples from a history directory, built by replaying it through the stream's feature code.

Events are applied in event-time order (ties: promotions, profiles, exposures, clicks — the history's
order) with the same `apply_*` functions the stream's agents use, and each exposure takes the
features of its user's state as of the exposure time, so training sees exactly what serving sees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from stream.errors import ConfigError
from stream.features.compute import exposure_matrices
from stream.features.labels import outcome_labels
from stream.features.replay import Replay, replay
from stream.features.state import FeatureConfig
from stream.history import read_history, read_meta
from stream.scoring.signature import DECLARATION_HASH
from stream.settings import get_settings

log = logging.getLogger(__name__)

_CHUNK = 16_384  # exposures featurised per vectorised call; bounds the temporary arrays


@dataclass(frozen=True)
class Dataset:
    """One row per exposure. Arrays share the row order; truth arrays exist for simulator histories."""

    event_ids: np.ndarray  # str
    user_ids: np.ndarray  # str
    promotion_ids: np.ndarray  # str
    campaign_ids: np.ndarray  # str
    ts: np.ndarray  # float64 epoch seconds
    user_features: np.ndarray  # [N, len(USER_FEATURES)] float32
    promo_attrs: np.ndarray  # [N, len(PROMO_ATTRS)] float32
    arm: np.ndarray  # int8, 1 = treatment, 0 = holdout
    labels: np.ndarray  # [N, 3] float32: visit, conversion, revenue (OUTCOMES order)
    tau: np.ndarray | None  # [N, 3] float32 true treatment effect
    mu0: np.ndarray | None  # [N, 3] float32 true control expectation
    promo_texts: dict[str, str]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.event_ids)

    def subset(self, rows: np.ndarray) -> Dataset:
        """The rows selected by an index or boolean array; promo_texts and meta are shared."""
        picked = {
            f.name: getattr(self, f.name)[rows]
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        return replace(self, **picked)


def build_dataset(
    history_dir: Path | str, attribution_window_s: float | None = None, config: FeatureConfig | None = None
) -> Dataset:
    """Replay a history into a Dataset; attribution window: the argument, else meta, else settings."""
    # Before reading the events: their declared attributes validate against this process's declaration.
    imported_with = read_meta(history_dir).get("declaration_hash", DECLARATION_HASH)
    if imported_with != DECLARATION_HASH:
        raise ConfigError(
            f"{history_dir} was imported with profile declaration {imported_with}, this process declares "
            f"{DECLARATION_HASH}: set LIFTSTREAM_PROFILE__ATTRIBUTES(_FILE) as for the import"
        )
    history = read_history(history_dir)
    meta = dict(history.meta)
    if attribution_window_s is None:
        attribution_window_s = meta.get("attribution_window_s") or get_settings().windows.attribution_window_s
    window = float(attribution_window_s)
    rep = replay(history, config or FeatureConfig())

    _, codes = np.unique(np.concatenate([rep.user_ids, rep.click_users]), return_inverse=True)
    n = len(rep.event_ids)
    labels = outcome_labels(
        codes[:n], rep.ts, codes[n:], rep.click_ts, rep.click_kind, rep.click_amount, window
    )
    user_x, promo_x = _featurise(rep)
    tau, mu0 = _truth(history.truth, rep.event_ids)
    meta.update(
        attribution_window_s=window,
        n_rows=n,
        applied=dict(rep.applied),
        skipped_unknown_promotion=rep.skipped,
        declaration_hash=DECLARATION_HASH,
    )
    log.info("dataset %s: %d exposures, %s", history_dir, n, dict(rep.applied))
    return Dataset(
        event_ids=rep.event_ids,
        user_ids=rep.user_ids,
        promotion_ids=rep.promotion_ids,
        campaign_ids=rep.campaign_ids,
        ts=rep.ts,
        user_features=user_x,
        promo_attrs=promo_x,
        arm=rep.arm,
        labels=labels.astype(np.float32),
        tau=tau,
        mu0=mu0,
        promo_texts=rep.promo_texts,
        meta=meta,
    )


def _featurise(rep: Replay) -> tuple[np.ndarray, np.ndarray]:
    parts = [
        exposure_matrices(
            rep.states[i : i + _CHUNK],
            rep.profile_vecs[i : i + _CHUNK],
            rep.interests[i : i + _CHUNK],
            rep.promos[i : i + _CHUNK],
            rep.ts[i : i + _CHUNK],
        )
        for i in range(0, len(rep.states), _CHUNK)
    ]
    if not parts:
        return exposure_matrices([], [], [], [], 0.0)
    return np.concatenate([u for u, _ in parts]), np.concatenate([a for _, a in parts])


def _truth(rows: list[Any] | None, event_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    if rows is None:
        return None, None
    by_id = {r.event_id: r for r in rows}
    missing = [e for e in event_ids if e not in by_id]
    if missing:
        raise ConfigError(f"truth.csv has no row for {len(missing)} exposures, e.g. {missing[0]}")
    picked = [by_id[e] for e in event_ids]
    tau = np.array([(r.tau_visit, r.tau_conversion, r.tau_revenue) for r in picked], np.float32)
    mu0 = np.array([(r.mu0_visit, r.mu0_conversion, r.mu0_revenue) for r in picked], np.float32)
    return tau.reshape(-1, 3), mu0.reshape(-1, 3)


def split_by_user(ds: Dataset, val_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, validation) with every user on exactly one side; deterministic for a seed."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    users, codes = np.unique(ds.user_ids, return_inverse=True)
    rng = np.random.default_rng(seed)
    in_val = np.zeros(len(users), dtype=bool)
    in_val[rng.permutation(len(users))[: round(len(users) * val_fraction)]] = True
    val = in_val[codes]
    return ds.subset(~val), ds.subset(val)


def arm_weights(ds: Dataset) -> np.ndarray:
    """Inverse-propensity weights (mean 1) from each promotion's observed treatment share.

    Holdout fractions differ by promotion, so the propensity is estimated per promotion_id; after
    weighting, both arms of every promotion carry equal total weight (the promotion's row count).
    """
    if len(ds) == 0:
        return np.zeros(0, dtype=np.float32)
    _, promo = np.unique(ds.promotion_ids, return_inverse=True)
    treated = ds.arm.astype(np.float64)
    share = np.bincount(promo, weights=treated) / np.bincount(promo)
    # Rows of the arm a promotion has fewer of weigh more; a one-arm promotion has propensity 1 for its arm.
    p_own = np.where(treated == 1, share[promo], 1.0 - share[promo])
    w = 1.0 / p_own
    return (w / w.mean()).astype(np.float32)
