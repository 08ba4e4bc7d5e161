"""Who is shown which promotion when, and in which arm.

Sends follow the daily rhythm. A frequency cap allows one exposure per user per attribution window, so every
click in the window after an exposure belongs to that exposure's outcome and the truth of each exposure is
exact (no other promotion's effect leaks into its window).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from stream.simulate.campaigns import FIRST_PROMOTION_MS, Promotion
from stream.simulate.clock import Clock
from stream.simulate.config import MS, SimConfig
from stream.simulate.effects import Variants
from stream.simulate.world import Users

GAP_MS = 2 * MS  # keeps other traffic strictly outside [exposure, exposure + window]
_CHUNK = 200_000


@dataclass(frozen=True)
class Exposures:
    """Sorted by (user, time)."""

    user: np.ndarray
    promotion: np.ndarray
    variant: np.ndarray  # row of `Variants`
    t_ms: np.ndarray
    treated: np.ndarray


def schedule_exposures(
    rng: np.random.Generator,
    config: SimConfig,
    clock: Clock,
    users: Users,
    promotions: tuple[Promotion, ...],
    variants: Variants,
    members: np.ndarray | None = None,
    period_ms: tuple[int, int] | None = None,
) -> Exposures:
    """Exposures of `members` (default: every user) within `period_ms` (default: the whole `days`)."""
    members = np.arange(len(users)) if members is None else members
    first, last = period_ms or (FIRST_PROMOTION_MS, config.exposure_span_ms)
    lo, hi = np.array([max(first, FIRST_PROMOTION_MS)]), np.array([last])
    if hi[0] <= lo[0]:
        raise ValueError("the simulated period is shorter than a minute")
    units = float((clock.cumulative(hi) - clock.cumulative(lo))[0])
    counts = rng.poisson(config.exposure_rate * units, size=len(members))
    user = np.repeat(members, counts)
    t_ms = clock.sample(rng, np.full(len(user), lo[0]), np.full(len(user), hi[0]))
    promotion = _choose_promotions(rng, users, promotions, user, t_ms)
    has = promotion >= 0
    user, t_ms, promotion = user[has], t_ms[has], promotion[has]
    order = np.lexsort((t_ms, user))
    user, t_ms, promotion = user[order], t_ms[order], promotion[order]
    keep = _frequency_cap(user, t_ms, config.window_ms + 2 * GAP_MS)
    user, t_ms, promotion = user[keep], t_ms[keep], promotion[keep]
    holdout = np.array([p.holdout_fraction for p in promotions])[promotion]
    treated = rng.random(len(user)) >= holdout
    return Exposures(user, promotion, _variant_at(variants, promotion, t_ms), t_ms, treated)


def select(exposures: Exposures, keep: np.ndarray) -> Exposures:
    return Exposures(*(getattr(exposures, f.name)[keep] for f in fields(Exposures)))


def merge(a: Exposures, b: Exposures) -> Exposures:
    """Both sets, sorted by (user, time) again."""
    joined = {f.name: np.concatenate([getattr(a, f.name), getattr(b, f.name)]) for f in fields(Exposures)}
    order = np.lexsort((joined["t_ms"], joined["user"]))
    return Exposures(**{name: values[order] for name, values in joined.items()})


def _choose_promotions(
    rng: np.random.Generator,
    users: Users,
    promotions: tuple[Promotion, ...],
    user: np.ndarray,
    t_ms: np.ndarray,
) -> np.ndarray:
    """An active promotion per send, favouring those matching the user's interests; -1 when none is active."""
    start = np.array([p.start_ms for p in promotions])
    end = np.array([p.end_ms for p in promotions])
    cats = np.zeros((len(promotions), users.interests.shape[1]), dtype=bool)
    for i, p in enumerate(promotions):
        cats[i, list(p.categories)] = True
    draws = rng.random(len(user))
    out = np.empty(len(user), dtype=np.int64)
    for lo in range(0, len(user), _CHUNK):
        u, t = user[lo : lo + _CHUNK], t_ms[lo : lo + _CHUNK, None]
        active = (start <= t) & (t < end)
        match = (users.interests[u].astype(np.int8) @ cats.T.astype(np.int8)) > 0
        weight = active * (1.0 + 2.0 * match)
        total = weight.sum(axis=1)
        cum = np.cumsum(weight, axis=1)
        pick = (draws[lo : lo + _CHUNK, None] * total[:, None] >= cum).sum(axis=1)
        out[lo : lo + _CHUNK] = np.where(total > 0, np.minimum(pick, len(promotions) - 1), -1)
    return out


def _frequency_cap(user: np.ndarray, t_ms: np.ndarray, min_gap_ms: int) -> np.ndarray:
    keep = np.zeros(len(user), dtype=bool)
    last_user, last_t = -1, 0
    for i, (u, t) in enumerate(zip(user.tolist(), t_ms.tolist(), strict=True)):
        if u != last_user or t >= last_t + min_gap_ms:
            keep[i] = True
            last_user, last_t = u, t
    return keep


def _variant_at(variants: Variants, promotion: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """The copy version live at each exposure time."""
    out = np.full(len(promotion), -1, dtype=np.int64)
    for row in range(len(variants.promotion)):
        live = (variants.promotion[row] == promotion) & (variants.valid_from_ms[row] <= t_ms)
        out = np.where(live, row, out)  # rows are in version order, so the latest valid one wins
    return out
