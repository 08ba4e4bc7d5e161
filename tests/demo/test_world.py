"""The demo world: the simulator knobs it uses, and an offline replay of its default run through the engine's
own attribution and decision code (no Kafka, no worker), which must decide as the demo promises."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from stream.demo.run import DEFAULT_EVENTS, live_world
from stream.demo.truth import sent_exposure_ids, true_uplifts
from stream.effects.aggregate import PromotionTotals
from stream.effects.attribution import (
    EMPTY,
    AttributionConfig,
    AttributionState,
    apply_click,
    apply_exposure,
    exposure_fact,
)
from stream.effects.report import decide
from stream.errors import ConfigError
from stream.events.gate import AnyClick, AnyExposure, DecodeError, decode
from stream.events.models import CampaignStatus, PromotionEvent
from stream.features.state import click_row
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import simulate
from stream.simulate.live import live_simulation

pytestmark = pytest.mark.unit

SMALL = SimConfig(seed=5, users=200, days=2.0)


def test_goal_outcome_and_holdout_overrides_leave_the_rest_of_the_world_alone() -> None:
    plain = simulate(SMALL)
    shaped = simulate(replace(SMALL, goal_outcome="visit", holdout_fraction=0.5))
    starts = [p for p in shaped.promotions if p.action == "start"]
    assert {p.goal.outcome for p in starts} == {"visit"} and {p.holdout_fraction for p in starts} == {0.5}
    # the same exposures (users, promotions, times) in the same order; only the arms are drawn anew
    assert [(e.user_id, e.promotion_id, e.ts) for e in plain.exposures] == [
        (e.user_id, e.promotion_id, e.ts) for e in shaped.exposures
    ]
    assert shaped.meta["promotions"].keys() == plain.meta["promotions"].keys()


def test_a_response_time_moves_outcome_visits_but_not_the_truth() -> None:
    plain = simulate(SMALL)
    quick = simulate(replace(SMALL, response_s=600))
    assert [(r.event_id, r.tau_visit, r.mu0_visit) for r in plain.truth] == [
        (r.event_id, r.tau_visit, r.mu0_visit) for r in quick.truth
    ]
    clicks = defaultdict(list)
    for c in quick.clicks:
        clicks[c.user_id].append(c.ts.timestamp())
    window = quick.config.attribution_window_s
    delays = []
    for e in quick.exposures:
        t = e.ts.timestamp()
        inside = [c for c in clicks[e.user_id] if t <= c < t + window]
        if inside:
            delays.append(min(inside) - t)
    assert delays and max(delays) <= 600  # the first click in the window (the visit) comes within 10 min


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"goal_outcome": "clicks"}, "goal outcome"),
        ({"holdout_fraction": 1.0}, "holdout fraction"),
        ({"holdout_fraction": 0.0}, "holdout fraction"),
        ({"response_s": 30}, "response time"),
        ({"response_s": 90000}, "response time"),
    ],
)
def test_the_new_knobs_are_checked(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SimConfig(users=10, days=1.0, **changes)


def _replay(config: SimConfig, now: datetime, events: int) -> tuple[dict, dict[str, list[str]]]:
    """The first `events` live messages through decoding, attribution and the decision, one look a second
    of the default run (1000 events): the statuses each promotion passed through, and the truth."""
    sim, messages = live_simulation(config, now)
    sent = messages[:events]
    attribution = AttributionConfig(window_s=float(config.attribution_window_s))
    users: dict[str, AttributionState] = defaultdict(lambda: EMPTY)
    totals: dict[str, PromotionTotals] = defaultdict(PromotionTotals)
    goals: dict[str, PromotionEvent] = {}
    statuses: dict[str, list[str]] = defaultdict(list)
    for i, m in enumerate(sent, 1):
        try:
            event = decode(m.topic, m.value)
        except DecodeError:
            continue
        if isinstance(event, PromotionEvent):
            goals[event.promotion_id] = event
        elif isinstance(event, AnyExposure):
            state, delta, _ = apply_exposure(users[event.user_id], exposure_fact(event), attribution)
            users[event.user_id] = state
            if delta is not None:
                totals[event.promotion_id] = totals[event.promotion_id].add(delta)
        elif isinstance(event, AnyClick):
            state, deltas, _ = apply_click(users[event.user_id], click_row(event), attribution)
            users[event.user_id] = state
            for d in deltas:
                totals[d.promotion_id] = totals[d.promotion_id].add(d)
        if i % 1000 == 0 or i == len(sent):
            for pid, t in totals.items():
                promo = goals.get(pid)
                if promo is None:
                    continue  # as the engine does: no goal to judge it by until its promotion event arrives
                status, _, _ = decide(t, promo.goal, holdout_fraction=promo.holdout_fraction)
                if not statuses[pid] or statuses[pid][-1] != status:
                    statuses[pid].append(status)
    return true_uplifts(sim.truth, sim.meta, sent_exposure_ids(sent)), statuses


@pytest.mark.timeout(600)
@pytest.mark.parametrize("hour", [3, 15])
def test_the_default_demo_world_decides_the_dud_and_never_fails_a_good_promotion(hour: int) -> None:
    truth, statuses = _replay(
        live_world(1000, 60), datetime(2026, 12, 1, hour, 20, tzinfo=UTC), DEFAULT_EVENTS
    )
    roles = {t["role"]: pid for pid, t in truth.items()}
    assert set(roles) == {"strong", "regular", "dud"}
    dud = roles["dud"]
    assert truth[dud]["true_uplift"]["visit"] == 0.0 and truth[dud]["target_uplift"] > 0
    assert statuses[dud][-1] == CampaignStatus.underperforming
    for pid, t in truth.items():
        if t["true_uplift"]["visit"] >= t["target_uplift"]:
            assert CampaignStatus.underperforming not in statuses[pid], (pid, statuses[pid])
    assert truth[roles["strong"]]["true_uplift"]["visit"] > 1.5 * truth[roles["strong"]]["target_uplift"]
    assert statuses[roles["strong"]][-1] == CampaignStatus.meeting_goal
