"""A drift episode: for a stretch of the simulated period the model's inputs shift; the truth stays exact.

`new_segment`: a cohort of brand-new users (tenure of a day or two, hardly any orders, mostly on mobile, deal
seekers) signs up when the episode starts and, while it lasts, carries most exposures and traffic; incumbents
are mostly away (their exposures and sessions within the episode are thinned). The cohort's truth comes from
the same effect model, so its effects differ only as its traits do.
`price`: every catalogue price, list and promotional, is multiplied by a factor for sessions that start within
the episode and for the outcome sessions of exposures within it (a promotion shows the prices at exposure),
so each exposure's expected basket is exactly either the usual or the repriced one.
`both`: the two at once. A config without an episode draws nothing from the drift stream and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from stream.simulate.campaigns import Promotion
from stream.simulate.clock import Clock
from stream.simulate.config import MS, SimConfig
from stream.simulate.effects import Truth, Variants, baskets
from stream.simulate.exposures import Exposures, merge, schedule_exposures, select
from stream.simulate.sessions import Sessions, background_sessions, concat
from stream.simulate.sessions import select as select_sessions
from stream.simulate.world import CATEGORIES, Users, join_users, listed_interests

COHORT_RATIO = 1.0  # cohort users per incumbent
INCUMBENT_KEEP = 0.3  # share of incumbents' exposures and sessions that still happen within the episode
ARRIVAL_MS = 60 * MS  # the cohort's profiles take the episode's first minute; the cohort acts after it
_LEANING = {"electronics": 2.0, "fashion": 2.0, "beauty": 2.0, "toys": 2.0, "sports": 1.0}
_COHORT_TASTE = 0.35 * np.array([_LEANING.get(c, 0.5) for c in CATEGORIES])  # Dirichlet concentration


@dataclass(frozen=True)
class Episode:
    kind: str
    start_ms: int
    end_ms: int
    price_factor: float

    @property
    def new_segment(self) -> bool:
        return self.kind in ("new_segment", "both")

    @property
    def price(self) -> bool:
        return self.kind in ("price", "both")

    def within(self, ms: np.ndarray) -> np.ndarray:
        return (ms >= self.start_ms) & (ms < self.end_ms)


def episode_of(config: SimConfig) -> Episode | None:
    if config.drift_ms is None:
        return None
    return Episode(config.drift_kind, *config.drift_ms, config.drift_price_factor)


def make_cohort(rng: np.random.Generator, n: int, seed: int, first: int) -> Users:
    """`n` new users, numbered from `first` on."""
    orders = (rng.random(n) < 0.15).astype(np.int64)
    tenure = rng.integers(0, 3, size=n)
    preference = rng.dirichlet(_COHORT_TASTE, size=n)
    return Users(
        ids=tuple(f"u{seed}-{i:06d}" for i in range(first, first + n)),
        region=rng.choice(3, size=n, p=[0.70, 0.25, 0.05]),
        channel=rng.choice(4, size=n, p=[0.10, 0.85, 0.0, 0.05]),
        is_new=np.ones(n, dtype=bool),
        tenure_days=tenure,
        orders=orders,
        recency_days=tenure.copy(),
        lifetime_spend=np.round(orders * rng.lognormal(np.log(30.0), 0.4, size=n), 2),
        segment=("new",) * n,
        interests=listed_interests(rng, preference),
        activity=rng.lognormal(np.log(0.6), 0.5, size=n),
        conversion=np.clip(rng.normal(0.025, 0.008, size=n), 0.005, 0.1),
        deal=rng.beta(5.0, 2.0, size=n),
        quantity_rate=rng.gamma(2.0, 0.08, size=n),
        preference=preference,
    )


def cohort_size(config: SimConfig, episode: Episode | None) -> int:
    return round(config.users * COHORT_RATIO) if episode is not None and episode.new_segment else 0


def with_cohort(
    rng: np.random.Generator,
    config: SimConfig,
    episode: Episode | None,
    clock: Clock,
    incumbents: Users,
    promotions: tuple[Promotion, ...],
    variants: Variants,
    exposures: Exposures,
) -> tuple[Users, Users | None, Exposures]:
    """(everyone, the cohort, exposures): incumbents' exposures thinned in the episode, the cohort's added."""
    size = cohort_size(config, episode)
    if episode is None or size == 0:
        return incumbents, None, exposures
    cohort = make_cohort(rng, size, config.seed, len(incumbents))
    everyone = join_users(incumbents, cohort)
    away = episode.within(exposures.t_ms) & (rng.random(len(exposures.t_ms)) >= INCUMBENT_KEEP)
    kept = select(exposures, ~away)
    members = np.arange(len(incumbents), len(everyone))
    active = (episode.start_ms + ARRIVAL_MS, episode.end_ms)
    joined = schedule_exposures(rng, config, clock, everyone, promotions, variants, members, active)
    return everyone, cohort, merge(kept, joined)


def with_cohort_traffic(
    rng: np.random.Generator,
    config: SimConfig,
    episode: Episode | None,
    clock: Clock,
    users: Users,
    exposures: Exposures,
    background: Sessions,
) -> Sessions:
    """Incumbents' sessions within the episode thinned, the cohort's sessions added."""
    if episode is None or not episode.new_segment:
        return background
    away = episode.within(background.start_ms) & (rng.random(len(background.start_ms)) >= INCUMBENT_KEEP)
    members = np.arange(config.users, len(users))
    active = (episode.start_ms + ARRIVAL_MS, episode.end_ms)
    cohort = background_sessions(rng, config, clock, users, exposures, members, active)
    return concat(select_sessions(background, ~away), cohort)


def repriced(variants: Variants, episode: Episode | None) -> Variants | None:
    """The catalogue during a price episode: every price times the factor, to the cent; None without one."""
    if episode is None or not episode.price:
        return None
    factor = episode.price_factor
    return replace(
        variants,
        paid=np.round(variants.paid * factor, 2),
        list_prices=np.round(variants.list_prices * factor, 2),
    )


def repriced_truth(
    truth: Truth,
    episode: Episode | None,
    prices: Variants | None,
    users: Users,
    exposures: Exposures,
) -> Truth:
    """Truth whose baskets, for exposures within a price episode, are those of the repriced catalogue."""
    if episode is None or prices is None:
        return truth
    during = baskets(users, prices, exposures.user, exposures.variant, truth.mix)
    return replace(truth, basket=np.where(episode.within(exposures.t_ms)[None, :], during, truth.basket))


def episode_meta(config: SimConfig, episode: Episode | None, clock: Clock) -> dict[str, Any]:
    """The `drift` entry of meta.json; empty without an episode, so such worlds keep their exact bytes."""
    if episode is None:
        return {}
    size = cohort_size(config, episode)
    info: dict[str, Any] = {
        "kind": episode.kind,
        "start_fraction": config.drift_start,
        "end_fraction": 1.0 if config.drift_end is None else config.drift_end,
        "start": clock.at(episode.start_ms).isoformat(),
        "end": clock.at(episode.end_ms).isoformat(),
    }
    if episode.new_segment:
        info.update(
            cohort_users=size,
            cohort_first_user=f"u{config.seed}-{config.users:06d}",
            cohort_active_from=clock.at(episode.start_ms + ARRIVAL_MS).isoformat(),
            incumbent_keep=INCUMBENT_KEEP,
        )
    if episode.price:
        info["price_factor"] = episode.price_factor
    return {"drift": info}
