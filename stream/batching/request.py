"""The scorer's inputs for one batch: every exposure, then every ranking candidate, in one set of rows.

Rows are computed in one vectorised pass (`exposure_matrices`) from the user values as of the batch,
each as of its own event time: an exposure at its ts, a ranking at the ts of the click that called for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stream.batching.assemble import ExposureItem, RankItem
from stream.batching.users import NO_PROFILE, UserValue
from stream.features.compute import exposure_matrices
from stream.registry.eligibility import candidates
from stream.registry.promos import Promo


@dataclass(frozen=True, slots=True)
class RankGroup:
    item: RankItem
    promos: tuple[Promo, ...]
    rows: slice


@dataclass(frozen=True)
class ScoreRequest:
    exposures: list[tuple[ExposureItem, Promo]]
    """Rows 0 .. len(exposures) - 1."""
    rankings: list[RankGroup]
    promotion_ids: list[str]
    user_features: np.ndarray
    promo_attrs: np.ndarray

    def __len__(self) -> int:
        return len(self.promotion_ids)


def build_request(
    exposures: Sequence[tuple[ExposureItem, Promo]],
    rankings: Sequence[RankItem],
    user: Callable[[str], UserValue],
    active: Sequence[Promo],
) -> ScoreRequest:
    values: list[UserValue] = []
    promos: list[Promo] = []
    times: list[float] = []
    for item, promo in exposures:
        values.append(user(item.event.user_id))
        promos.append(promo)
        times.append(item.event.ts.timestamp())
    groups: list[RankGroup] = []
    for rank in rankings:
        value = user(rank.user_id)
        chosen = candidates(active, value.interests, value.features, rank.ts)
        start = len(promos)
        values.extend([value] * len(chosen))
        promos.extend(chosen)
        times.extend([rank.ts] * len(chosen))
        groups.append(RankGroup(rank, tuple(chosen), slice(start, len(promos))))
    user_features, promo_attrs = exposure_matrices(
        [v.features for v in values],
        np.asarray([v.profile_vector() for v in values], dtype=np.float32).reshape(
            len(values), len(NO_PROFILE)
        ),
        [v.interests for v in values],
        [p.info for p in promos],
        np.asarray(times, dtype=np.float64),
    )
    return ScoreRequest(list(exposures), groups, [p.promotion_id for p in promos], user_features, promo_attrs)
