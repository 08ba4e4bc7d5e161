"""Which active promotions a user may be ranked against.

A promotion is eligible for a user at time t when it is active, t lies within its start/end (each
bound only when set), and it either targets no category or targets one the user cares about: an
interest from the profile, or the category of a click in the 24 hours before t.
"""

from __future__ import annotations

from collections.abc import Iterable

from stream.features.state import NO_CATEGORY, UserState
from stream.registry.promos import Promo

RECENT_S = 86400.0


def recent_categories(state: UserState, ts: float, window_s: float = RECENT_S) -> frozenset[int]:
    return frozenset(row[3] for row in state.clicks if ts - window_s < row[0] < ts and row[3] != NO_CATEGORY)


def eligible(promo: Promo, categories: frozenset[int], ts: float) -> bool:
    """`categories`: the user's interests and recent click categories (hashes)."""
    if not promo.active:
        return False
    start, end = promo.event.start, promo.event.end
    if (start is not None and ts < start.timestamp()) or (end is not None and ts > end.timestamp()):
        return False
    wanted = promo.info.categories
    return not wanted or not wanted.isdisjoint(categories)


def candidates(
    promos: Iterable[Promo], interests: frozenset[int], state: UserState, ts: float
) -> list[Promo]:
    categories = interests | recent_categories(state, ts)
    return [p for p in promos if eligible(p, categories, ts)]
