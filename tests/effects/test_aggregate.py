from __future__ import annotations

import orjson
import pytest

from stream.effects.aggregate import EMPTY, ArmTotals, PromotionTotals, merge
from stream.effects.attribution import Delta
from stream.events.models import Arm

pytestmark = pytest.mark.unit

T, H = Arm.treatment, Arm.holdout


def _delta(
    arm: Arm, ts: float, x: int = 0, v: int = 0, c: int = 0, r: float = 0.0, old: float = 0.0
) -> Delta:
    return Delta("p1", "c1", arm, ts - 1.0, ts, x, v, c, r, (old + r) ** 2 - old**2)


DELTAS = [
    _delta(T, 10.0, x=1),
    _delta(H, 11.0, x=1, v=1),
    _delta(T, 12.0, v=1, c=1, r=5.0),
    _delta(T, 13.0, r=2.0, old=5.0),
    _delta(H, 14.0, x=1),
    _delta(H, 15.0, v=1, c=1, r=3.0),
]


def test_add_accumulates_per_arm_and_tracks_the_event_time_span() -> None:
    totals = EMPTY
    for d in DELTAS:
        totals = totals.add(d)
    assert totals.treatment == ArmTotals(1, 1, 1, 7.0, 49.0)
    assert totals.holdout == ArmTotals(2, 2, 1, 3.0, 9.0)
    assert (totals.first_ts, totals.last_ts) == (9.0, 15.0)
    assert totals == EMPTY.add_many(DELTAS)
    assert totals.arm(T) is totals.treatment and totals.arm(H) is totals.holdout


def test_predictions_add_up_per_outcome() -> None:
    totals = EMPTY.add_predictions(2, [0.1, 0.02, 1.5]).add_predictions(1, (0.05, 0.0, 0.5))
    assert totals.predictions == 3
    assert totals.predicted_uplift_sum == pytest.approx((0.15, 0.02, 2.0))
    with pytest.raises(ValueError, match="3 values"):
        EMPTY.add_predictions(1, [0.1])


def test_json_round_trip() -> None:
    totals = EMPTY.add_many(DELTAS).add_predictions(4, [0.1, 0.2, 0.3])
    assert PromotionTotals.from_json(orjson.loads(orjson.dumps(totals.to_json()))) == totals
    assert PromotionTotals.from_json(EMPTY.to_json()) == EMPTY
    with pytest.raises(ValueError, match="version"):
        PromotionTotals.from_json({**totals.to_json(), "v": 0})


def test_merge_of_partition_partials_equals_the_whole() -> None:
    # One partial per source partition; the merger keeps only each partition's latest cumulative snapshot.
    latest: dict[int, PromotionTotals] = {}
    partials = {0: EMPTY, 1: EMPTY}
    for i, d in enumerate(DELTAS):
        partition = i % 2
        partials[partition] = partials[partition].add(d).add_predictions(1, [0.1, 0.01, 1.0])
        latest[partition] = partials[partition]
    merged = merge(latest[p] for p in sorted(latest))
    whole = EMPTY.add_many(DELTAS).add_predictions(6, [0.6, 0.06, 6.0])
    assert merged.treatment == whole.treatment and merged.holdout == whole.holdout
    assert (merged.first_ts, merged.last_ts, merged.predictions) == (9.0, 15.0, 6)
    assert merged.predicted_uplift_sum == pytest.approx(whole.predicted_uplift_sum)
    assert merge([]) == EMPTY
    assert merge([EMPTY, merged]) == merged
