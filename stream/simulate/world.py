"""Users (observable profiles plus latent preferences) and the product catalogue.

Latent traits drive behaviour and promotion effects; the profile shows noisy proxies of them (segment, spend,
tenure, region, channel, interests), which is what a model can learn from.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from stream.events.models import Channel, Region, UserProfileEvent
from stream.simulate.clock import Clock

CATEGORIES: tuple[str, ...] = (
    "electronics", "fashion", "home", "beauty", "sports", "toys", "books", "grocery", "garden", "pets",
)  # fmt: skip
_MEDIAN_PRICE = np.array([120.0, 45.0, 60.0, 25.0, 55.0, 30.0, 15.0, 12.0, 40.0, 22.0])
ITEMS_PER_CATEGORY = 40
REGIONS: tuple[Region, ...] = (Region.urban, Region.suburban, Region.rural)
CHANNELS: tuple[Channel, ...] = (Channel.web, Channel.mobile, Channel.phone, Channel.multichannel)


@dataclass(frozen=True)
class Catalogue:
    categories: tuple[str, ...]
    prices: np.ndarray  # (categories, items) list prices, rounded to cents

    def item_id(self, category: int, item: int) -> str:
        return f"{self.categories[category]}-{item:03d}"


@dataclass(frozen=True)
class Users:
    ids: tuple[str, ...]
    region: np.ndarray  # index into REGIONS
    channel: np.ndarray  # index into CHANNELS
    is_new: np.ndarray
    tenure_days: np.ndarray
    orders: np.ndarray
    recency_days: np.ndarray
    lifetime_spend: np.ndarray
    segment: tuple[str, ...]
    interests: np.ndarray  # (users, categories) bool: the categories a profile lists
    activity: np.ndarray  # latent: sessions per day
    conversion: np.ndarray  # latent: chance a session ends in a purchase
    deal: np.ndarray  # latent: deal seeking in [0, 1]
    quantity_rate: np.ndarray  # latent: extra units per purchase (Poisson mean)
    preference: np.ndarray  # latent: (users, categories) category choice probabilities

    def __len__(self) -> int:
        return len(self.ids)


def make_catalogue(rng: np.random.Generator) -> Catalogue:
    spread = rng.lognormal(0.0, 0.45, size=(len(CATEGORIES), ITEMS_PER_CATEGORY))
    prices = np.maximum(np.round(_MEDIAN_PRICE[:, None] * spread, 2), 1.0)
    return Catalogue(CATEGORIES, prices)


def make_users(rng: np.random.Generator, n: int, seed: int) -> Users:
    n_cat = len(CATEGORIES)
    region = rng.choice(3, size=n, p=[0.45, 0.40, 0.15])
    channel = rng.choice(4, size=n, p=[0.40, 0.40, 0.10, 0.10])
    is_new = rng.random(n) < 0.15
    activity = rng.lognormal(np.log(0.35), 0.7, size=n)
    deal = rng.beta(2.0, 3.0, size=n)
    preference = rng.dirichlet(np.full(n_cat, 0.35), size=n)
    tenure = np.where(
        is_new, rng.integers(0, 31, size=n), np.minimum(rng.lognormal(np.log(420), 0.8, n), 3650)
    )
    tenure = tenure.astype(np.int64)
    orders = np.where(is_new, rng.integers(0, 2, size=n), rng.poisson(tenure / 365.0 * 4.0 * activity / 0.35))
    basket = rng.lognormal(np.log(55.0), 0.5, size=n) * (1.3 - 0.6 * deal)
    lifetime_spend = np.round(orders * basket, 2)
    recency = np.minimum(rng.exponential(1.0 / np.maximum(activity, 0.02)), tenure).astype(np.int64)
    conversion = np.clip(0.04 + 0.015 * np.log1p(orders) + rng.normal(0, 0.015, n), 0.01, 0.3)
    quantity_rate = rng.gamma(2.0, 0.15, size=n)
    interests = listed_interests(rng, preference)
    return Users(
        ids=tuple(f"u{seed}-{i:06d}" for i in range(n)),
        region=region,
        channel=channel,
        is_new=is_new,
        tenure_days=tenure,
        orders=orders.astype(np.int64),
        recency_days=recency,
        lifetime_spend=lifetime_spend,
        segment=_segments(is_new, lifetime_spend, tenure, orders, deal),
        interests=interests,
        activity=activity,
        conversion=conversion,
        deal=deal,
        quantity_rate=quantity_rate,
        preference=preference,
    )


def listed_interests(rng: np.random.Generator, preference: np.ndarray) -> np.ndarray:
    """The one to three categories a profile lists: the user's favourites."""
    n = len(preference)
    ranked = np.argsort(-preference, axis=1, kind="stable")
    n_interests = rng.integers(1, 4, size=n)
    interests = np.zeros(preference.shape, dtype=bool)
    rows = np.repeat(np.arange(n), n_interests)
    cols = ranked[rows, np.concatenate([np.arange(k) for k in n_interests]) if n else []]
    interests[rows, cols] = True
    return interests


def join_users(a: Users, b: Users) -> Users:
    """`b` appended to `a`: the user indices of `a` stay as they are."""
    joined = {}
    for f in fields(Users):
        x, y = getattr(a, f.name), getattr(b, f.name)
        joined[f.name] = x + y if isinstance(x, tuple) else np.concatenate([x, y])
    return Users(**joined)


def _segments(
    is_new: np.ndarray, spend: np.ndarray, tenure: np.ndarray, orders: np.ndarray, deal: np.ndarray
) -> tuple[str, ...]:
    vip_line = np.quantile(spend, 0.9) if len(spend) else 0.0
    labels = np.select(
        [is_new, spend >= vip_line, (tenure > 730) & (orders >= 8), deal > 0.6],
        ["new", "vip", "loyal", "bargain"],
        default="regular",
    )
    return tuple(str(s) for s in labels)


def profile_events(users: Users, clock: Clock, at_ms: int = 0) -> list[UserProfileEvent]:
    """One profile per user, spread over the minute from `at_ms` (before any of them acts)."""
    return [
        UserProfileEvent(
            user_id=users.ids[i],
            ts=clock.at(at_ms + i % 60_000),
            tenure_days=int(users.tenure_days[i]),
            lifetime_spend=float(users.lifetime_spend[i]),
            orders=int(users.orders[i]),
            recency_days=int(users.recency_days[i]),
            channel=CHANNELS[users.channel[i]],
            region=REGIONS[users.region[i]],
            segment=users.segment[i],
            interests=[CATEGORIES[c] for c in np.flatnonzero(users.interests[i])],
            is_new=bool(users.is_new[i]),
        )
        for i in range(len(users))
    ]
