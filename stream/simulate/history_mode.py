"""Build a whole simulated world from a config, and write it as a history directory."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stream.events.models import ClickEvent, ExposureEvent, PromotionEvent, UserProfileEvent
from stream.history import MalformedRecord, TruthRow, write_history
from stream.simulate import assemble, drift
from stream.simulate.campaigns import Promotion, make_promotions, promotion_events
from stream.simulate.clock import Clock
from stream.simulate.config import SimConfig, stage_rng
from stream.simulate.effects import make_variants, true_effects
from stream.simulate.emission import Message, to_messages, with_malformed
from stream.simulate.exposures import schedule_exposures
from stream.simulate.sessions import background_sessions, concat, outcome_sessions, session_events
from stream.simulate.texts import THEMES
from stream.simulate.world import make_catalogue, make_users, profile_events

log = logging.getLogger(__name__)

_TARGET_USERS = 2000  # users the planned goal of each promotion is computed over
_TARGET_FLOOR = {"visit": 0.005, "conversion": 0.001, "revenue": 0.1}
_OUTCOME_INDEX = {"visit": 0, "conversion": 1, "revenue": 2}


@dataclass(frozen=True)
class Simulation:
    config: SimConfig
    promotions: list[PromotionEvent]
    profiles: list[UserProfileEvent]
    exposures: list[ExposureEvent]
    clicks: list[ClickEvent]
    truth: list[TruthRow]
    meta: dict[str, Any]

    def messages(self) -> list[Message]:
        """Valid messages per topic, each topic in event-time order."""
        return [
            *to_messages("promotions", self.promotions),
            *to_messages("profiles", self.profiles),
            *to_messages("exposures", self.exposures),
            *to_messages("clicks", self.clicks),
        ]


def simulate(config: SimConfig) -> Simulation:
    world_rng, promo_rng, exposure_rng, outcome_rng, traffic_rng, event_rng, drift_rng = (
        stage_rng(config.seed, s)
        for s in ("world", "promotions", "exposures", "outcomes", "traffic", "events", "drift")
    )
    clock = Clock(config.start)
    catalogue = make_catalogue(world_rng)
    incumbents = make_users(world_rng, config.users, config.seed)
    promotions = make_promotions(promo_rng, config, catalogue)
    variants = make_variants(promotions, catalogue)
    exposures = schedule_exposures(exposure_rng, config, clock, incumbents, promotions, variants)
    episode = drift.episode_of(config)
    users, cohort, exposures = drift.with_cohort(
        drift_rng, config, episode, clock, incumbents, promotions, variants, exposures
    )
    truth = true_effects(
        users, variants, clock, config.window_ms, exposures.user, exposures.variant, exposures.t_ms
    )
    prices = drift.repriced(variants, episode)
    truth = drift.repriced_truth(truth, episode, prices, users, exposures)
    background = background_sessions(
        traffic_rng, config, clock, users, exposures, members=np.arange(config.users)
    )
    sessions = concat(
        drift.with_cohort_traffic(drift_rng, config, episode, clock, users, exposures, background),
        outcome_sessions(outcome_rng, config, clock, exposures, truth, users),
    )
    episode_ms = (episode.start_ms, episode.end_ms) if episode is not None else (0, 0)
    clicks = session_events(event_rng, sessions, users, variants, prices, episode_ms)

    targets = _planned_targets(config, clock, users, promotions, variants)
    order = assemble.exposure_order(exposures)
    exposure_events = assemble.exposure_events(config.seed, exposures, order, users, promotions, clock)
    click_events = assemble.click_events(
        config.seed, sessions, clicks, users, promotions, variants, catalogue, clock
    )
    profiles = profile_events(incumbents, clock)
    if cohort is not None and episode is not None:
        profiles += profile_events(cohort, clock, at_ms=episode.start_ms)
    counts = (len(users), len(exposure_events), len(click_events))
    return Simulation(
        config=config,
        promotions=sorted(promotion_events(promotions, targets, catalogue, clock), key=lambda e: e.ts),
        profiles=profiles,
        exposures=exposure_events,
        clicks=click_events,
        truth=assemble.truth_rows(exposure_events, exposures, order, truth),
        meta={
            **_meta(config, clock, promotions, targets, *counts),
            **drift.episode_meta(config, episode, clock),
        },
    )


def _planned_targets(
    config: SimConfig, clock: Clock, users: Any, promotions: tuple[Promotion, ...], variants: Any
) -> dict[str, float]:
    """Goal per promotion: half its expected effect on the goal outcome (a floor where that is not positive),
    as an absolute treatment-minus-holdout difference per exposure. The dud was planned like the others: its
    goal is the median goal of the promotions with the same goal outcome (the floor when there are none)."""
    n = min(config.users, _TARGET_USERS)  # incumbents: goals are planned before any drift
    targets = {}
    for i, p in enumerate(promotions):
        if p.role == "dud":
            continue
        row = int(np.flatnonzero(variants.promotion == i)[0])
        truth = true_effects(
            users, variants, clock, config.window_ms, np.arange(n), np.full(n, row), np.full(n, p.start_ms)
        )
        planned = float(truth.tau[_OUTCOME_INDEX[p.goal_outcome]].mean())
        targets[p.promotion_id] = round(max(0.5 * planned, _TARGET_FLOOR[p.goal_outcome]), 4)
    for p in promotions:
        if p.role == "dud":
            peers = [targets[q.promotion_id] for q in promotions if q.promotion_id in targets
                     and q.goal_outcome == p.goal_outcome]
            targets[p.promotion_id] = float(np.median(peers)) if peers else _TARGET_FLOOR[p.goal_outcome]
    return targets


def _meta(
    config: SimConfig,
    clock: Clock,
    promotions: tuple[Promotion, ...],
    targets: dict[str, float],
    n_users: int,
    n_exposures: int,
    n_clicks: int,
) -> dict[str, Any]:
    return {
        "source": "simulator",
        "seed": config.seed,
        "start": clock.at(0).isoformat(),
        "end": clock.at(config.span_ms).isoformat(),
        "attribution_window_s": config.attribution_window_s,
        "days": config.days,
        "n_users": n_users,
        "n_exposures": n_exposures,
        "n_clicks": n_clicks,
        "n_promotions": len(promotions),
        "dud_promotion_id": next(p.promotion_id for p in promotions if p.role == "dud"),
        "strong_promotion_id": next(p.promotion_id for p in promotions if p.role == "strong"),
        "goal_target": "absolute treatment-minus-holdout difference of the goal outcome per exposure",
        "themes": list(THEMES),
        "promotions": {
            p.promotion_id: {
                "role": p.role,
                "scale": p.scale,
                "goal_outcome": p.goal_outcome,
                "target_uplift": targets[p.promotion_id],
                "themes_by_version": {str(v.version): v.themes for v in p.versions},
            }
            for p in promotions
        },
        "malformed_rate": config.malformed_rate,
    }


def write_simulation(config: SimConfig, out: Path) -> dict[str, int]:
    """Simulate and write the history directory; returns the number of messages per file."""
    began = time.perf_counter()
    sim = simulate(config)
    mixed = with_malformed(stage_rng(config.seed, "malformed"), config.malformed_rate, sim.messages())
    bad = [m for m in mixed if not m.valid]
    meta = {**sim.meta, "n_malformed": len(bad)}
    counts = write_history(
        out, sim.promotions, sim.profiles, sim.exposures, sim.clicks, sim.truth, meta,
        malformed=[MalformedRecord(m.topic, m.value) for m in bad],
    )  # fmt: skip
    counts["malformed"] = len(bad)
    log.info("simulated history in %s: %s in %.1f s", out, counts, time.perf_counter() - began)
    return counts
