"""Feature vectors of exposures, computed in one vectorised pass over a batch of user states.

Everything is "as of `now`": a window of W seconds covers event times in [now - W, now). Events at or
after `now` never count, so (a) an out-of-order stream that has already applied later clicks does not
leak them into an earlier exposure, (b) scoring an exposure gives the same row whether or not that
exposure (or a click at the very same instant) has been applied yet — while the user is below the row
cap — and (c) time splits cleanly at an exposure: before it are features, from it on are outcomes
(stream/features/labels.py).

Spend sums price * quantity of purchases. Recency is the time since the latest click (capped at
RECENCY_CAP_S, which is also the value for a user with none). The session is the latest click's
session, counted over the longest window. Column names say which values are log1p-transformed;
counts and spend are raw; hour_sin/hour_cos encode the UTC time of day of `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from stream.features.profile import PROFILE_FEATURES, PROFILE_START
from stream.features.promo import STATIC_ATTRS, PromoInfo
from stream.features.state import LONGEST_WINDOW_S, NO_CATEGORY, PURCHASE, UserState
from stream.scoring.signature import CLICK_KINDS, PROMO_ATTRS, USER_FEATURES, WINDOW_SECONDS, WINDOWS

N_USER = len(USER_FEATURES)
N_PROMO = len(PROMO_ATTRS)
# A user with no known click gets this recency; longer gaps are clipped to it.
RECENCY_CAP_S = 30 * 86400.0
_COL = {name: i for i, name in enumerate(USER_FEATURES)}
_COL_PROMO = {name: i for i, name in enumerate(PROMO_ATTRS)}
_KINDS = len(CLICK_KINDS)
_DAY = 86400.0
_SHIFT = np.int64(1) << 32  # a (row, 32-bit hash) pair as one int64 key


@dataclass(frozen=True, slots=True)
class _Clicks:
    """All click rows of a batch, concatenated; `seg` is the batch position each row belongs to."""

    seg: np.ndarray
    ts: np.ndarray
    kind: np.ndarray
    amount: np.ndarray
    category: np.ndarray
    session: np.ndarray


def _flatten(states: Sequence[UserState], attr: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    lists = [getattr(s, attr) for s in states]
    sizes = [len(r) for r in lists]
    values = chain.from_iterable(chain.from_iterable(lists))
    rows = np.fromiter(values, np.float64, sum(sizes) * width).reshape(-1, width)
    seg = np.repeat(np.arange(len(states), dtype=np.int64), sizes)
    return seg, rows


def _clicks(states: Sequence[UserState]) -> _Clicks:
    seg, rows = _flatten(states, "clicks", 6)
    ints = rows[:, [1, 3, 4]].astype(np.int64)
    return _Clicks(seg, rows[:, 0], ints[:, 0], rows[:, 2], ints[:, 1], ints[:, 2])


def _now(now_ts: float | np.ndarray, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(now_ts, dtype=np.float64), (n,))


def _distinct(seg: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(np.unique(seg * _SHIFT + ids) // _SHIFT, minlength=n)


def _click_columns(out: np.ndarray, c: _Clicks, states: Sequence[UserState], now: np.ndarray) -> None:
    n = len(now)
    dt = now[c.seg] - c.ts
    past = dt > 0
    for window, seconds in zip(WINDOWS, WINDOW_SECONDS, strict=True):
        inside = past & (dt <= seconds)
        counts = np.bincount(c.seg[inside] * _KINDS + c.kind[inside], minlength=n * _KINDS)
        first = _COL[f"{window}_{CLICK_KINDS[0]}_count"]
        out[:, first : first + _KINDS] = counts.reshape(n, _KINDS)
        bought = inside & (c.kind == PURCHASE)
        out[:, _COL[f"{window}_spend"]] = np.bincount(c.seg[bought], weights=c.amount[bought], minlength=n)
        known = inside & (c.category != NO_CATEGORY)
        out[:, _COL[f"{window}_distinct_categories"]] = _distinct(c.seg[known], c.category[known], n)

    # Rows are ts-ordered within a state, so the highest past row index is the user's latest click.
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, c.seg[past], np.flatnonzero(past))
    seen = last >= 0
    latest = np.full(n, np.nan)
    latest[seen] = c.ts[last[seen]]
    # Rows are dropped oldest first, so with no row before `now` the newest dropped click is the latest.
    dropped = np.array([np.nan if s.dropped_click_ts is None else s.dropped_click_ts for s in states])
    latest = np.where(~seen & (dropped < now), dropped, latest)
    recency = np.where(np.isnan(latest), RECENCY_CAP_S, np.clip(now - latest, 0.0, RECENCY_CAP_S))
    out[:, _COL["recency_log_s"]] = np.log1p(recency)

    # The session of the latest click, looking back over the longest window only: rows further back
    # may already be evicted, and must not make the value depend on when eviction ran.
    lookback = past & (dt <= LONGEST_WINDOW_S)
    active = np.zeros(n, dtype=bool)
    active[c.seg[lookback]] = True
    current = np.full(n, -1, dtype=np.int64)
    current[active] = c.session[last[active]]
    same = lookback & (c.session == current[c.seg])
    start = np.full(n, np.inf)
    np.minimum.at(start, c.seg[same], c.ts[same])
    out[:, _COL["session_events"]] = np.bincount(c.seg[same], minlength=n)
    out[:, _COL["session_duration_log_s"]] = np.log1p(np.where(active, latest - start, 0.0))


def _exposure_columns(out: np.ndarray, states: Sequence[UserState], now: np.ndarray) -> None:
    n = len(now)
    seg, rows = _flatten(states, "exposures", 3)
    dt = now[seg] - rows[:, 0]
    inside = (dt > 0) & (dt <= _DAY)
    out[:, _COL["exposures_24h"]] = np.bincount(seg[inside], minlength=n)
    promos = rows[inside, 1].astype(np.int64)
    out[:, _COL["distinct_promotions_24h"]] = _distinct(seg[inside], promos, n)


def _user_matrix(
    c: _Clicks, states: Sequence[UserState], profile_vecs: np.ndarray | Sequence[np.ndarray], now: np.ndarray
) -> np.ndarray:
    n = len(states)
    out = np.zeros((n, N_USER), dtype=np.float64)
    if n == 0:
        return out.astype(np.float32)
    _click_columns(out, c, states, now)
    _exposure_columns(out, states, now)
    profiles = np.asarray(profile_vecs, dtype=np.float32).reshape(n, len(PROFILE_FEATURES))
    out[:, PROFILE_START : PROFILE_START + len(PROFILE_FEATURES)] = profiles
    angle = 2.0 * np.pi * np.mod(now, _DAY) / _DAY
    out[:, _COL["hour_sin"]] = np.sin(angle)
    out[:, _COL["hour_cos"]] = np.cos(angle)
    return out.astype(np.float32)


def _promo_matrix(
    c: _Clicks, promos: Sequence[PromoInfo], interests: Sequence[frozenset[int]], now: np.ndarray
) -> np.ndarray:
    n = len(promos)
    out = np.zeros((n, N_PROMO), dtype=np.float32)
    if n == 0:
        return out
    out[:, :STATIC_ATTRS] = [p.static_attrs for p in promos]
    out[:, _COL_PROMO["interest_match"]] = [
        bool(p.categories & i) for p, i in zip(promos, interests, strict=True)
    ]
    dt = now[c.seg] - c.ts
    recent = (dt > 0) & (dt <= _DAY) & (c.category != NO_CATEGORY)
    wanted_seg = np.repeat(np.arange(n, dtype=np.int64), [len(p.categories) for p in promos])
    wanted = np.fromiter(chain.from_iterable(p.categories for p in promos), np.int64, len(wanted_seg))
    hit = np.isin(wanted_seg * _SHIFT + wanted, c.seg[recent] * _SHIFT + c.category[recent])
    out[:, _COL_PROMO["recent_category_match"]] = np.bincount(wanted_seg[hit], minlength=n) > 0
    return out


def user_feature_matrix(
    states: Sequence[UserState],
    profile_vecs: np.ndarray | Sequence[np.ndarray],
    now_ts: float | np.ndarray,
) -> np.ndarray:
    """[N, len(USER_FEATURES)] float32 rows, row i as of now_ts[i] (a scalar applies to all)."""
    return _user_matrix(_clicks(states), states, profile_vecs, _now(now_ts, len(states)))


def promo_attr_matrix(
    promos: Sequence[PromoInfo],
    interests: Sequence[frozenset[int]],
    states: Sequence[UserState],
    now_ts: float | np.ndarray,
) -> np.ndarray:
    """[N, 9] float32 PROMO_ATTRS rows for showing promos[i] to the user of states[i] at now_ts[i]."""
    return _promo_matrix(_clicks(states), promos, interests, _now(now_ts, len(states)))


def exposure_matrices(
    states: Sequence[UserState],
    profile_vecs: np.ndarray | Sequence[np.ndarray],
    interests: Sequence[frozenset[int]],
    promos: Sequence[PromoInfo],
    now_ts: float | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Both scorer inputs of a batch of exposures, flattening the states once: ([N, users], [N, 9])."""
    c, now = _clicks(states), _now(now_ts, len(states))
    return _user_matrix(c, states, profile_vecs, now), _promo_matrix(c, promos, interests, now)


def user_features(state: UserState, profile_vec: np.ndarray, now_ts: float) -> np.ndarray:
    return user_feature_matrix([state], [profile_vec], now_ts)[0]


def promo_attrs(promo: PromoInfo, interests: frozenset[int], state: UserState, now_ts: float) -> np.ndarray:
    return promo_attr_matrix([promo], [interests], [state], now_ts)[0]
