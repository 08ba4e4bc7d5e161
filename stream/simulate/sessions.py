"""Shopping sessions: background traffic with a daily rhythm, and the outcomes of exposures.

A session is a `visit`, a few `view`/`click` events, perhaps an `add_to_cart`, and a `purchase` when it
converts. Background sessions never start inside an exposure's attribution window and are cut short at the
next exposure; inside the window, only the exposure's outcome session exists, drawn from the ground truth
(visit with p_visit of its arm, purchase with q_convert, basket from the arm's category mix and prices).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from stream.simulate.clock import Clock
from stream.simulate.config import MS, SimConfig
from stream.simulate.effects import Truth, Variants
from stream.simulate.exposures import GAP_MS, Exposures
from stream.simulate.world import Users

MAX_SESSION_MS = 30 * 60 * MS
_MEAN_GAP_MS = 45 * MS
KINDS = ("visit", "view", "click", "add_to_cart", "purchase")


@dataclass(frozen=True)
class Sessions:
    user: np.ndarray
    start_ms: np.ndarray
    limit_ms: np.ndarray  # events at or after this time are not emitted
    purchase: np.ndarray
    mix: np.ndarray  # (sessions, categories) category choice probabilities
    variant: np.ndarray  # -1 for list prices, else the treated variant whose prices and quantities apply
    priced_ms: np.ndarray  # the time whose prices apply: the start, or the exposure of an outcome session


@dataclass(frozen=True)
class Clicks:
    """Event-level arrays, not yet ordered."""

    session: np.ndarray
    position: np.ndarray
    t_ms: np.ndarray
    kind: np.ndarray  # index into KINDS
    category: np.ndarray  # -1 for a visit
    item: np.ndarray
    price: np.ndarray
    quantity: np.ndarray


def background_sessions(
    rng: np.random.Generator,
    config: SimConfig,
    clock: Clock,
    users: Users,
    exposures: Exposures,
    members: np.ndarray | None = None,
    period_ms: tuple[int, int] | None = None,
) -> Sessions:
    """Sessions of `members` (default: every user) starting within `period_ms` (default: the whole span)."""
    members = np.arange(len(users)) if members is None else members
    lo, hi = period_ms or (0, config.span_ms)
    units = float((clock.cumulative(np.array([hi])) - clock.cumulative(np.array([lo])))[0])
    counts = rng.poisson(users.activity[members] * units)
    user = np.repeat(members, counts)
    start = clock.sample(rng, np.full(len(user), lo), np.full(len(user), hi))
    purchase = rng.random(len(user)) < users.conversion[user]
    # Exposures are sorted by (user, time): in one key space, searchsorted finds each session's neighbours.
    # Sentinels at both ends (user -1) keep every neighbour index in range.
    exp_user = np.concatenate([[-1], exposures.user, [-1]])
    exp_t = np.concatenate([[0], exposures.t_ms, [0]])
    stride = np.int64(config.span_ms + 10 * config.window_ms)
    exposure_key = np.concatenate([[np.iinfo(np.int64).min], exposures.user * stride + exposures.t_ms,
                                   [np.iinfo(np.int64).max]])  # fmt: skip
    before = np.searchsorted(exposure_key, user * stride + start + GAP_MS, side="right") - 1
    inside = (exp_user[before] == user) & (start <= exp_t[before] + config.window_ms + GAP_MS)
    after = before + 1
    next_t = np.where(exp_user[after] == user, exp_t[after] - GAP_MS, config.span_ms)
    keep = ~inside
    return Sessions(
        user=user[keep],
        start_ms=start[keep],
        limit_ms=np.minimum(next_t, config.span_ms)[keep],
        purchase=purchase[keep],
        mix=users.preference[user[keep]],
        variant=np.full(int(keep.sum()), -1),
        priced_ms=start[keep],
    )


def outcome_sessions(
    rng: np.random.Generator,
    config: SimConfig,
    clock: Clock,
    exposures: Exposures,
    truth: Truth,
    users: Users,
) -> Sessions:
    arm = exposures.treated.astype(np.int64)
    n = len(arm)
    visit = rng.random(n) < truth.p_visit[arm, np.arange(n)]
    purchase = rng.random(n) < truth.q_convert[arm, np.arange(n)]
    idx = np.flatnonzero(visit)
    lo = exposures.t_ms[idx] + GAP_MS
    latest = config.window_ms - MAX_SESSION_MS - GAP_MS
    if config.response_s is not None:
        latest = max(min(latest, config.response_s * MS), 2 * GAP_MS)
    start = clock.sample(rng, lo, exposures.t_ms[idx] + latest)
    treated = exposures.treated[idx]
    mix = np.where(treated[:, None], truth.mix[idx], users.preference[exposures.user[idx]])
    return Sessions(
        user=exposures.user[idx],
        start_ms=start,
        limit_ms=exposures.t_ms[idx] + config.window_ms,
        purchase=purchase[idx],
        mix=mix,
        variant=np.where(treated, exposures.variant[idx], -1),
        priced_ms=exposures.t_ms[idx],
    )


def concat(*parts: Sessions) -> Sessions:
    return Sessions(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Sessions)))


def select(s: Sessions, keep: np.ndarray) -> Sessions:
    return Sessions(*(getattr(s, f.name)[keep] for f in fields(Sessions)))


def session_events(
    rng: np.random.Generator,
    s: Sessions,
    users: Users,
    variants: Variants,
    repriced: Variants | None = None,
    repriced_ms: tuple[int, int] = (0, 0),
) -> Clicks:
    """Events of every session; a session priced within `repriced_ms` sees the `repriced` catalogue."""
    n = len(s.user)
    browse = 1 + rng.poisson(3.0, size=n)
    cart = s.purchase | (rng.random(n) < 0.15)
    size = 1 + browse + cart + s.purchase
    session = np.repeat(np.arange(n), size)
    first = np.cumsum(size) - size
    position = np.arange(len(session)) - first[session]
    gaps = np.where(position == 0, 0.0, rng.exponential(_MEAN_GAP_MS, size=len(session)))
    offset = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], size)
    squeeze = np.minimum(1.0, MAX_SESSION_MS / np.maximum(offset[first + size - 1], 1.0))
    t_ms = s.start_ms[session] + np.floor(offset * squeeze[session]).astype(np.int64)

    kind = np.where(rng.random(len(session)) < 0.7, 1, 2)
    kind = np.where(position == 0, 0, kind)
    is_purchase = s.purchase[session] & (position == size[session] - 1)
    is_cart = cart[session] & (position == 1 + browse[session])
    kind = np.where(is_cart, 3, np.where(is_purchase, 4, kind))

    # The basket (category, item, quantity) is drawn once per session and shared by add_to_cart and purchase.
    cum = np.cumsum(s.mix, axis=1)
    basket_cat = np.minimum((rng.random(n)[:, None] * cum[:, -1:] >= cum).sum(axis=1), cum.shape[1] - 1)
    basket_item = rng.integers(variants.list_prices.shape[1], size=n)
    units = rng.poisson(users.quantity_rate[s.user])
    treated = s.variant >= 0
    v = np.maximum(s.variant, 0)
    base = np.where(treated, variants.qty_base[v, basket_cat], 1.0)
    per_unit = np.where(treated, variants.qty_per_unit[v, basket_cat], 1.0)
    basket_qty = (base + per_unit * units).astype(np.int64)
    # Price tier per session (0: the catalogue, 1: repriced); choosing it draws nothing from `rng`.
    tiers = [variants] if repriced is None else [variants, repriced]
    list_prices = np.stack([t.list_prices for t in tiers])
    paid = np.stack([t.paid for t in tiers])
    lo, hi = repriced_ms
    tier = ((s.priced_ms >= lo) & (s.priced_ms < hi) & (repriced is not None)).astype(np.int64)
    list_price = list_prices[tier, basket_cat, basket_item]
    basket_price = np.where(treated, paid[tier, v, basket_cat, basket_item], list_price)

    ev_cum = cum[session]
    category = np.minimum(
        (rng.random(len(session))[:, None] * ev_cum[:, -1:] >= ev_cum).sum(axis=1), cum.shape[1] - 1
    )
    item = rng.integers(variants.list_prices.shape[1], size=len(session))
    in_basket = is_cart | is_purchase
    category = np.where(in_basket, basket_cat[session], np.where(position == 0, -1, category))
    item = np.where(in_basket, basket_item[session], item)
    browsed = list_prices[tier[session], np.maximum(category, 0), item]
    price = np.where(in_basket, basket_price[session], browsed)
    price = np.where(position == 0, 0.0, price)
    quantity = np.where(in_basket, basket_qty[session], 1)
    keep = t_ms < s.limit_ms[session]
    return Clicks(session[keep], position[keep], t_ms[keep], kind[keep], category[keep], item[keep],
                  price[keep], quantity[keep])  # fmt: skip
