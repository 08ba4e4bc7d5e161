"""Ground truth: the control expectation and the treatment effect of every exposure, per outcome.

Within the attribution window after an exposure the user visits with probability p_v, a visit converts with
probability q and a conversion is worth m in expectation (category mix x quantity x price paid). Treatment
shifts p_v and q on the logit scale by `scale * appeal`, where appeal combines the discount depth, whether the
promotion's categories match the user's interests and, above all, the themes of the copy weighted by how the
user responds to each theme — some themes help some users and hurt others. Treatment also steers the category
mix towards the promotion and changes prices and quantities. Everything here is exact, so the behaviour
module can draw outcomes from exactly these numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.simulate.campaigns import Promotion
from stream.simulate.clock import Clock
from stream.simulate.texts import THEMES
from stream.simulate.world import Catalogue, Users

_STEER = 0.35  # how far treatment pulls the category mix towards the promotion's categories


@dataclass(frozen=True)
class Variants:
    """One row per (promotion, copy version): everything the effect of an exposure depends on."""

    promotion: np.ndarray  # index into the promotions tuple
    version: np.ndarray  # 1-based copy version
    valid_from_ms: np.ndarray
    themes: np.ndarray  # (variants, themes) weights
    scale: np.ndarray
    depth: np.ndarray  # discount depth in [0, 1]
    free_shipping: np.ndarray  # discount type is free shipping (matters more far from cities)
    in_promo: np.ndarray  # (variants, categories) bool
    paid: np.ndarray  # (variants, categories, items) unit price paid when treated
    qty_base: np.ndarray  # (variants, categories): treated quantity = base + per_unit * Poisson(rate)
    qty_per_unit: np.ndarray
    list_prices: np.ndarray  # (categories, items) catalogue prices, paid in the control arm


@dataclass(frozen=True)
class Truth:
    p_visit: np.ndarray  # (2, n): control row 0, treated row 1
    q_convert: np.ndarray  # (2, n) purchase chance given a visit
    basket: np.ndarray  # (2, n) expected value of a conversion
    mix: np.ndarray  # (n, categories) treated category mix (control is the user's own preference)

    @property
    def mu0(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._mu(0)

    @property
    def tau(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mu0, mu1 = self._mu(0), self._mu(1)
        return tuple(b - a for a, b in zip(mu0, mu1, strict=True))  # type: ignore[return-value]

    def _mu(self, arm: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        visit = self.p_visit[arm]
        conversion = visit * self.q_convert[arm]
        return visit, conversion, conversion * self.basket[arm]


def make_variants(promotions: tuple[Promotion, ...], catalogue: Catalogue) -> Variants:
    rows = [(i, p, v) for i, p in enumerate(promotions) for v in p.versions]
    n_cat = len(catalogue.categories)
    in_promo = np.zeros((len(rows), n_cat), dtype=bool)
    paid = np.repeat(catalogue.prices[None], len(rows), axis=0)
    qty_base = np.ones((len(rows), n_cat))
    qty_per_unit = np.ones((len(rows), n_cat))
    for r, (_, p, _) in enumerate(rows):
        cats = list(p.categories)
        in_promo[r, cats] = True
        paid[r, cats] = _discounted(catalogue.prices[cats], p.discount_type, p.discount_value)
        if p.discount_type == "bogo":
            qty_base[r, cats], qty_per_unit[r, cats] = 2.0, 2.0
        elif p.discount_type == "bundle":
            qty_base[r, cats] = 2.0
    return Variants(
        promotion=np.array([i for i, _, _ in rows]),
        version=np.array([v.version for _, _, v in rows]),
        valid_from_ms=np.array([v.valid_from_ms for _, _, v in rows]),
        themes=np.array([[v.themes.get(t, 0.0) for t in THEMES] for _, _, v in rows]),
        scale=np.array([p.scale for _, p, _ in rows]),
        depth=np.array([_depth(p.discount_type, p.discount_value) for _, p, _ in rows]),
        free_shipping=np.array([p.discount_type == "free_shipping" for _, p, _ in rows]),
        in_promo=in_promo,
        paid=paid,
        qty_base=qty_base,
        qty_per_unit=qty_per_unit,
        list_prices=catalogue.prices,
    )


def _discounted(prices: np.ndarray, discount_type: str, value: float) -> np.ndarray:
    if discount_type in ("percent", "bundle"):
        return np.round(prices * (1.0 - value / 100.0), 2)
    if discount_type == "amount_off":
        return np.round(np.maximum(prices - value, prices * 0.5), 2)
    if discount_type == "bogo":
        return np.round(prices / 2.0, 2)  # two units for the price of one
    return prices.copy()


def _depth(discount_type: str, value: float) -> float:
    depths = {"percent": value / 40.0, "amount_off": value / 15.0, "bogo": 0.8, "free_shipping": 0.3,
              "bundle": value / 40.0}  # fmt: skip
    return float(min(depths[discount_type], 1.0))


def theme_affinity(users: Users) -> np.ndarray:
    """(users, themes): how each user responds to each theme of the copy; negative means it puts them off."""
    loyal = np.maximum(np.tanh((users.tenure_days - 540.0) / 365.0), 0.0)
    big_spender = np.maximum(np.tanh(np.log1p(users.lifetime_spend) - np.log1p(300.0)), 0.0)
    new = users.is_new.astype(float)
    rural, suburban = (users.region == 2).astype(float), (users.region == 1).astype(float)
    mobile = (users.channel == 1).astype(float)
    deal = users.deal
    columns = {
        "urgency": 0.9 * deal + 0.4 * new - 0.6 * loyal - 0.2,
        "exclusivity": 0.9 * big_spender + 0.3 * loyal - 0.5 * new - 0.4 * deal,
        "free_shipping": 1.1 * rural + 0.4 * suburban + 0.3 * mobile - 0.15,
        "value": 1.0 * deal - 0.5 * big_spender - 0.1,
        "loyalty": 0.9 * loyal - 0.9 * new - 0.1,
        "plain": np.zeros(len(users)),
    }
    return np.stack([columns[t] for t in THEMES], axis=1)


def _shift(p: np.ndarray, by: np.ndarray) -> np.ndarray:
    moved = 1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p) + by)))
    return np.where(by == 0.0, p, moved)  # exactly unchanged where there is no effect (the dud)


def true_effects(
    users: Users,
    variants: Variants,
    clock: Clock,
    window_ms: int,
    user: np.ndarray,
    variant: np.ndarray,
    t_ms: np.ndarray,
) -> Truth:
    """Exact expectations for exposures of `user` to `variant` at `t_ms`."""
    exposure_days = clock.cumulative(t_ms + window_ms) - clock.cumulative(t_ms)
    p0 = 1.0 - np.exp(-users.activity[user] * exposure_days)
    q0 = users.conversion[user]
    scale = variants.scale[variant]
    rural = users.region[user] == 2
    depth = variants.depth[variant] * np.where(variants.free_shipping[variant] & rural, 2.0, 1.0)
    discount = depth * (0.4 + 0.8 * users.deal[user])
    themed = np.einsum("nt,nt->n", variants.themes[variant], theme_affinity(users)[user])
    match = (users.interests[user] & variants.in_promo[variant]).any(axis=1).astype(float)
    p1 = _shift(p0, scale * (0.15 * discount + 0.4 * themed + 0.1 * match))
    q1 = _shift(q0, scale * (0.3 * discount + 0.6 * themed + 0.2 * match))

    own = users.preference[user]
    steer = _STEER * np.minimum(scale, 1.0)[:, None]
    in_promo = variants.in_promo[variant]
    mix = (1.0 - steer) * own + steer * in_promo / in_promo.sum(axis=1, keepdims=True)
    return Truth(
        p_visit=np.stack([p0, p1]),
        q_convert=np.stack([q0, q1]),
        basket=baskets(users, variants, user, variant, mix),
        mix=mix,
    )


def baskets(
    users: Users, variants: Variants, user: np.ndarray, variant: np.ndarray, mix: np.ndarray
) -> np.ndarray:
    """(2, n) expected value of a conversion per arm at the prices of `variants`."""
    own = users.preference[user]
    rate = users.quantity_rate[user][:, None]
    # Both arms computed by the same expression, so a promotion that changes nothing has exactly zero effect.
    basket0 = np.einsum("nc,nc->n", own, variants.list_prices.mean(axis=1)[None, :] * (1.0 + rate))
    unit_paid = variants.paid.mean(axis=2)[variant]
    quantity = variants.qty_base[variant] + variants.qty_per_unit[variant] * rate
    basket1 = np.einsum("nc,nc->n", mix, unit_paid * quantity)
    return np.stack([basket0, basket1])
