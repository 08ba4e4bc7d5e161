"""Covariate blocks of scored batches: each scored exposure counted once, with its final outcomes."""

from __future__ import annotations

import pytest

from stream.batching.covariate import batch_blocks, contribution, covariate
from stream.batching.outbox import Outbox, aggregate
from stream.effects.aggregate import NO_COV, PromotionTotals, add_blocks
from stream.effects.attribution import (
    EMPTY,
    AttributionConfig,
    ExposureFact,
    apply_click,
    apply_exposure,
    stamp,
)
from stream.events.models import Arm

pytestmark = pytest.mark.unit

CONFIG = AttributionConfig(window_s=3600.0, allowed_lateness_s=600.0)
X = (0.3, 0.05, 2.0)
FACT = ExposureFact(100.0, 7, "p1", "c1", Arm.treatment)


def _purchase(ts: float = 200.0, amount: float = 12.5, event_hash: int = 99) -> tuple:
    from stream.features.state import PURCHASE as KIND

    return (ts, KIND, amount, 0, 0, 0, 0, 0, event_hash)


def test_the_covariate_is_the_midpoint_of_both_arms_predictions() -> None:
    assert covariate([0.4, 0.1, 3.0], [0.2, 0.0, 1.0]) == pytest.approx((0.3, 0.05, 2.0))


def test_a_block_holds_the_moments_of_an_opened_exposure_and_of_later_changes() -> None:
    state, opened, _ = apply_exposure(EMPTY, FACT, CONFIG)
    assert opened is not None
    first = contribution(opened, X, opened=True)
    assert first == pytest.approx((1, 0.3, 0.09, 0, 0, 0, 0.05, 0.0025, 0, 0, 0, 2.0, 4.0, 0, 0, 0))
    state = stamp(state, FACT.event_hash, X)
    state, deltas, _ = apply_click(state, _purchase(), CONFIG)
    (d,) = deltas
    assert d.x == X  # the delta carries the covariate its row was stamped with
    later = contribution(d, X, opened=False)
    total = add_blocks(first, later)
    # n, then per outcome Σx, Σx², Σy, Σy², Σxy with the final y = (1, 1, 12.5).
    assert total == pytest.approx(
        (1, 0.3, 0.09, 1, 1, 0.3, 0.05, 0.0025, 1, 1, 0.05, 2.0, 4.0, 12.5, 156.25, 25.0)
    )
    assert [row[8] for row in state.exposures] == [X]


def test_a_change_assembled_before_its_exposure_was_scored_uses_what_an_earlier_send_learned() -> None:
    # Batch 1 opens the exposure; batch 2, taken before batch 1 is sent, holds a purchase for it.
    state, opened, _ = apply_exposure(EMPTY, FACT, CONFIG)
    state, deltas, _ = apply_click(state, _purchase(), CONFIG)
    assert opened is not None and deltas[0].x == ()
    scored = {("u1", 7): X}
    one = batch_blocks([("u1", 0, opened)], lambda u, h: scored.get((u, h)), lambda u, h: None)
    assert one.stamps == {("u1", 7): X}
    two = batch_blocks([("u1", 0, deltas[0])], lambda u, h: None, lambda u, h: one.stamps.get((u, h)))
    treatment = add_blocks(one.partials["p1", "c1", 0][0], two.partials["p1", "c1", 0][0])
    assert treatment[0] == 1 and treatment[13] == pytest.approx(12.5) and treatment[15] == pytest.approx(25.0)
    assert one.partials["p1", "c1", 0][1] == NO_COV
    # An outcome of an exposure nobody stamped (its promotion was unknown when it opened) counts nowhere.
    none = batch_blocks([("u1", 0, deltas[0])], lambda u, h: None, lambda u, h: None)
    assert none.partials == {} and none.users == {}


def test_outbox_covariate_deltas_add_to_the_arm_block_when_resent() -> None:
    state, opened, _ = apply_exposure(EMPTY, FACT, CONFIG)
    assert opened is not None
    blocks = batch_blocks([("u1", 0, opened)], lambda u, h: X, lambda u, h: None)
    box = Outbox({"exposures": 5}, aggregate((opened, *blocks.users["u1"])))
    (merged,) = Outbox.from_json(box.to_json()).deltas
    assert merged.d_exposures == 1 and merged.exposure_hash == 0 and merged.x == ()
    totals = PromotionTotals().add(merged)
    assert totals.covariate(Arm.treatment) == pytest.approx(blocks.partials["p1", "c1", 0][0])
    assert totals.treatment.exposures == 1


def test_totals_with_covariate_blocks_round_trip_and_read_version_1() -> None:
    totals = PromotionTotals().add_scored((1.0,) * 16, (2.0,) * 16)
    totals = totals.add_predictions(3, [0.1, 0.2, 0.3], [1, 2, 3])
    assert PromotionTotals.from_json(totals.to_json()) == totals
    old = {"v": 1, "treatment": [3, 1, 0, 0.0, 0.0], "holdout": [1, 0, 0, 0.0, 0.0], "predictions": 0,
           "predicted_uplift_sum": [0, 0, 0], "first_ts": None, "last_ts": None}
    read = PromotionTotals.from_json(old)
    assert read.treatment.exposures == 3 and read.covariate(Arm.holdout) == NO_COV
