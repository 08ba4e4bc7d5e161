"""Partials mark the batches and predictions they count; merging keeps the newest snapshot per partition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stream.batching.partials import PREDICTIONS, Partial
from stream.effects.attribution import Delta
from stream.effects.report import Policy
from stream.events.models import Arm, CampaignStatus, PromotionGoal
from stream.outputs.partials import effect, merged_totals, offer, read_snapshot, snapshot

pytestmark = pytest.mark.unit


def _delta(arm: Arm = Arm.treatment, visits: int = 0) -> Delta:
    return Delta("p1", "c1", arm, 10.0, 20.0, d_exposures=1, d_visits=visits)


def test_marks_cover_the_positions_of_the_batches_added() -> None:
    p = Partial("p1", "c1", 0).add_deltas({"exposures": 5, "clicks": 2}, [_delta()])
    later = p.add_deltas({"exposures": 6}, [_delta(Arm.holdout)])
    assert (later.totals.treatment.exposures, later.totals.holdout.exposures) == (1, 1)
    assert later.marks == {"exposures": 6, "clicks": 2}
    assert later.covers({"exposures": 5, "clicks": 2}) and later.covers({"exposures": 6})
    assert not later.covers({"exposures": 6, "clicks": 3}) and not p.covers({"exposures": 6})


def test_realised_totals_take_predictions_of_another_snapshot() -> None:
    realised = Partial("p1", "c1", 0).add_deltas({"exposures": 1}, [_delta()])
    counted = Partial("p1", "c1", 0).add_predictions([7], [[0.1, 0.2, 0.3]])
    both = realised.with_predictions_of(counted)
    assert both.totals.treatment == realised.totals.treatment and both.totals.predictions == 1
    assert both.marks == {"exposures": 1, PREDICTIONS: 7}


def test_predictions_count_once_and_only_past_the_mark() -> None:
    p = Partial("p1", "c1", 0).add_predictions([3, 4], [[0.1, 0.2, 1.0], [0.3, 0.0, 2.0]])
    assert p.totals.predictions == 2 and p.marks[PREDICTIONS] == 4
    q = p.add_predictions([4, 5], [[9.0, 9.0, 9.0], [0.1, 0.1, 0.1]])
    assert q.totals.predictions == 3
    assert q.totals.predicted_uplift_sum == pytest.approx((0.5, 0.3, 3.1))
    assert q.add_predictions([5], [[1.0, 1.0, 1.0]]) is q


def test_merge_keeps_the_newest_snapshot_per_partition() -> None:
    old = Partial("p1", "c1", 0).add_deltas({"exposures": 1}, [_delta()])
    new = old.add_deltas({"exposures": 2}, [_delta(visits=1)])
    other = Partial("p1", "c1", 1).add_deltas({"exposures": 0}, [_delta(Arm.holdout)])
    stored = offer(None, read_snapshot(snapshot(new).value))
    assert stored is not None
    assert offer(stored, old) is None and offer(stored, new) is None  # stale or repeated: no change
    stored = offer(stored, other)
    assert stored is not None
    totals = merged_totals(stored)
    assert (totals.treatment.exposures, totals.treatment.visits, totals.holdout.exposures) == (2, 1, 1)


def test_effect_of_merged_partials() -> None:
    deltas = [_delta(visits=1) for _ in range(60)] + [_delta(Arm.holdout) for _ in range(60)]
    part = Partial("p1", "c1", 3)
    for offset, d in enumerate(deltas):
        part = part.add_deltas({"exposures": offset}, [d])
    stored = offer(None, part)
    assert stored is not None
    goal = PromotionGoal(outcome="visit", target_uplift=0.1)
    e = effect(stored, goal, 2, datetime(2026, 1, 1, tzinfo=UTC), Policy())
    assert (e.promotion_id, e.campaign_id, e.model_version) == ("p1", "c1", 2)
    assert (e.exposures_treatment, e.exposures_holdout) == (60, 60)
    assert e.realised_uplift["visit"] == pytest.approx(1.0) and e.status is CampaignStatus.meeting_goal
