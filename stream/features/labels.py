"""Outcome labels of exposures: what the user did within the attribution window after being exposed.

For an exposure at t, the user's clicks with ts in [t, t + window) count: visit = any click of any
kind, conversion = any purchase, revenue = sum(price * quantity) of those purchases. Feature windows
end just before t (stream/features/compute.py), so every click is either a feature or an outcome of an
exposure, never both, whatever order equal timestamps arrive in.
Used by training (models/dataset.py) and by the stream's realised-effect logic.
"""

from __future__ import annotations

import numpy as np

from stream.features.state import PURCHASE
from stream.scoring.signature import OUTCOMES

N_OUTCOMES = len(OUTCOMES)


def in_attribution_window(
    exposure_ts: float | np.ndarray, click_ts: float | np.ndarray, window_s: float
) -> bool | np.ndarray:
    """Whether a click at click_ts is an outcome of an exposure at exposure_ts (scalars or arrays)."""
    return (click_ts >= exposure_ts) & (click_ts < exposure_ts + window_s)


def outcome_labels(
    exposure_user: np.ndarray,
    exposure_ts: np.ndarray,
    click_user: np.ndarray,
    click_ts: np.ndarray,
    click_kind: np.ndarray,
    click_amount: np.ndarray,
    window_s: float,
) -> np.ndarray:
    """[N, 3] float64 (visit, conversion, revenue) per exposure; users are integer codes.

    One lexicographic sort of clicks and window bounds together gives, for each bound, how many
    clicks precede it in (user, ts) order, so each exposure's clicks are a contiguous slice.
    """
    exposure_user = np.asarray(exposure_user, dtype=np.int64)
    exposure_ts = np.asarray(exposure_ts, dtype=np.float64)
    m, n = len(click_ts), len(exposure_ts)
    users = np.concatenate([np.asarray(click_user, dtype=np.int64), exposure_user, exposure_user])
    ts = np.concatenate([np.asarray(click_ts, dtype=np.float64), exposure_ts, exposure_ts + window_s])
    # At equal (user, ts) a bound sorts before the clicks: the window is [t, t + window).
    bound = np.concatenate([np.ones(m, dtype=np.int8), np.zeros(2 * n, dtype=np.int8)])
    order = np.lexsort((bound, ts, users))
    is_click = order < m
    before = np.empty(m + 2 * n, dtype=np.int64)
    before[order] = np.cumsum(is_click) - is_click
    lo, hi = before[m : m + n], before[m + n :]

    sorted_clicks = order[is_click]
    bought = np.asarray(click_kind, dtype=np.int64)[sorted_clicks] == PURCHASE
    purchases_before = np.concatenate([[0], np.cumsum(bought)])
    p_lo, p_hi = purchases_before[lo], purchases_before[hi]
    # Revenue is summed purchase by purchase (not as a cumsum difference) so it is exact.
    amounts = np.asarray(click_amount, dtype=np.float64)[sorted_clicks[bought]]
    per_exposure = p_hi - p_lo
    owner = np.repeat(np.arange(n), per_exposure)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(per_exposure) - per_exposure, per_exposure)
    revenue = np.bincount(owner, weights=amounts[np.repeat(p_lo, per_exposure) + offset], minlength=n)

    labels = np.empty((n, N_OUTCOMES), dtype=np.float64)
    labels[:, OUTCOMES.index("visit")] = hi > lo
    labels[:, OUTCOMES.index("conversion")] = per_exposure > 0
    labels[:, OUTCOMES.index("revenue")] = revenue
    return labels
