"""Campaigns and their promotions: offer, categories, schedule, holdout, goal and themed copy (versioned)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.events.models import PromotionAction, PromotionEvent, PromotionGoal
from stream.simulate.clock import Clock
from stream.simulate.config import MS, SimConfig
from stream.simulate.texts import THEMES, Copy, write_copy
from stream.simulate.world import Catalogue

DISCOUNT_TYPES: tuple[str, ...] = ("percent", "amount_off", "bogo", "free_shipping", "bundle")
_VALUES: dict[str, tuple[float, ...]] = {
    "percent": (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0),
    "amount_off": (2.0, 5.0, 10.0),
    "bogo": (50.0,),
    "free_shipping": (0.0,),
    "bundle": (10.0, 15.0, 20.0, 25.0),
}
FIRST_PROMOTION_MS = 60 * MS  # after the profiles


@dataclass(frozen=True)
class Version:
    version: int
    valid_from_ms: int
    themes: dict[str, float]  # theme -> weight in the copy
    copy: Copy


@dataclass(frozen=True)
class Promotion:
    promotion_id: str
    campaign_id: str
    discount_type: str
    discount_value: float
    categories: tuple[int, ...]
    start_ms: int
    end_ms: int
    holdout_fraction: float
    goal_outcome: str
    scale: float  # overall strength of the effect; 0 for the dud
    role: str  # "regular", "strong" or "dud"
    versions: tuple[Version, ...]


def make_promotions(
    rng: np.random.Generator, config: SimConfig, catalogue: Catalogue
) -> tuple[Promotion, ...]:
    """Campaign 0 runs throughout; it holds the strong promotion (first), the dud (last) and a copy update."""
    span = config.exposure_span_ms
    out: list[Promotion] = []
    for c in range(config.campaigns):
        if c == 0:
            start, end = FIRST_PROMOTION_MS, span
        else:
            start = FIRST_PROMOTION_MS + int(rng.uniform(0.0, 0.5) * span)
            end = max(start + 3600 * MS, start + int(rng.uniform(0.4, 1.0) * (span - start)))
        for k in range(config.promotions_per_campaign):
            role = "regular"
            if c == 0 and k == 0:
                role = "strong"
            elif c == 0 and k == config.promotions_per_campaign - 1:
                role = "dud"
            # One regular promotion changes its copy half-way, so the effect changes with the text alone.
            updated = c == 0 and k == 1 and role == "regular"
            ids = (f"promo{config.seed}-{c}-{k}", f"camp{config.seed}-{c}")
            out.append(_promotion(rng, config, catalogue, ids, start, end, role, updated))
    return tuple(out)


def _promotion(
    rng: np.random.Generator,
    config: SimConfig,
    catalogue: Catalogue,
    ids: tuple[str, str],
    start: int,
    end: int,
    role: str,
    updated: bool,
) -> Promotion:
    n_cat = len(catalogue.categories)
    categories = tuple(sorted(rng.choice(n_cat, size=1 + int(rng.random() < 0.4), replace=False).tolist()))
    if role == "strong":
        dtype, value, themes, scale = (
            "percent",
            35.0,
            {"free_shipping": 1.0, "value": 0.5},
            config.strong_scale,
        )
    elif role == "dud":
        dtype, value, themes, scale = "free_shipping", 0.0, {"plain": 1.0}, config.dud_scale
    else:
        dtype = DISCOUNT_TYPES[int(rng.integers(len(DISCOUNT_TYPES)))]
        value = float(rng.choice(_VALUES[dtype]))
        themes = _draw_themes(rng)
        scale = float(rng.uniform(0.5, 1.2))
    holdout = 0.3 if role != "regular" else float(rng.choice([0.1, 0.2, 0.3, 0.5]))
    goal = (
        "conversion"
        if role != "regular"
        else str(rng.choice(["visit", "conversion", "revenue"], p=[0.2, 0.5, 0.3]))
    )
    # The overrides replace what was drawn, after drawing it, so the rest of the world stays the same.
    holdout = holdout if config.holdout_fraction is None else config.holdout_fraction
    goal = goal if config.goal_outcome is None else config.goal_outcome
    names = [catalogue.categories[i] for i in categories]
    versions = [Version(1, start, themes, write_copy(rng, themes, dtype, value, names))]
    if updated:
        new = {t: w for t, w in _draw_themes(rng).items() if t not in themes} or {"loyalty": 1.0}
        versions.append(Version(2, (start + end) // 2, new, write_copy(rng, new, dtype, value, names)))
    return Promotion(*ids, dtype, value, categories, start, end, holdout, goal, scale, role, tuple(versions))


def _draw_themes(rng: np.random.Generator) -> dict[str, float]:
    primary = THEMES[int(rng.integers(len(THEMES)))]
    themes = {primary: 1.0}
    if primary != "plain" and rng.random() < 0.35:
        others = [t for t in THEMES if t not in (primary, "plain")]
        themes[others[int(rng.integers(len(others)))]] = 0.5
    return themes


def promotion_events(
    promotions: tuple[Promotion, ...], targets: dict[str, float], catalogue: Catalogue, clock: Clock
) -> list[PromotionEvent]:
    """A start event, an update per later version of the copy, and a stop event per promotion."""
    events = []
    for p in promotions:
        for v in p.versions:
            action = PromotionAction.start if v.version == 1 else PromotionAction.update
            events.append(_event(p, v, action, v.valid_from_ms, targets[p.promotion_id], catalogue, clock))
        events.append(
            _event(
                p, p.versions[-1], PromotionAction.stop, p.end_ms, targets[p.promotion_id], catalogue, clock
            )
        )
    return events


def _event(
    p: Promotion,
    v: Version,
    action: PromotionAction,
    at_ms: int,
    target: float,
    catalogue: Catalogue,
    clock: Clock,
) -> PromotionEvent:
    return PromotionEvent(
        promotion_id=p.promotion_id,
        campaign_id=p.campaign_id,
        action=action,
        ts=clock.at(at_ms),
        version=v.version,
        title=v.copy.title,
        description=v.copy.description,
        discount_type=p.discount_type,  # type: ignore[arg-type]
        discount_value=p.discount_value,
        categories=[catalogue.categories[i] for i in p.categories],
        start=clock.at(p.start_ms),
        end=clock.at(p.end_ms),
        goal=PromotionGoal(outcome=p.goal_outcome, target_uplift=target),  # type: ignore[arg-type]
        holdout_fraction=p.holdout_fraction,
    )
