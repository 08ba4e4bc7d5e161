from __future__ import annotations

import pytest

from stream.events.models import CampaignStatus, Outcome
from stream.monitor.state import SPARK, MonitorState, sparkline

from .factories import T0, alert, drift, effect

pytestmark = pytest.mark.unit


def test_rows_follow_the_latest_effect_and_keep_a_trend() -> None:
    state = MonitorState()
    for minute, realised in enumerate([0.0, 0.01, 0.02]):
        state.apply(effect(minute=minute, realised=realised))
    [row] = state.promotions()
    assert (row.campaign_id, row.promotion_id, row.outcome) == ("c1", "p1", Outcome.conversion)
    assert row.realised == 0.02 and row.predicted == 0.012 and row.goal == 0.005
    assert row.ci == pytest.approx((0.016, 0.024))
    assert (row.exposures_treatment, row.exposures_holdout) == (1002, 102)
    assert row.trend == SPARK[0] + SPARK[4] + SPARK[-1]


def test_replayed_and_out_of_order_effects_are_ignored() -> None:
    state = MonitorState()
    state.apply(effect(minute=5, realised=0.03))
    state.apply(effect(minute=5, realised=0.03))
    state.apply(effect(minute=2, realised=-0.5))
    [row] = state.promotions()
    assert row.realised == 0.03
    assert len(row.trend) == 1


def test_underperforming_promotions_come_first() -> None:
    state = MonitorState()
    state.apply(effect("a-fine"))
    state.apply(effect("b-new", status=CampaignStatus.insufficient_data))
    state.apply(effect("z-dud", status=CampaignStatus.underperforming, realised=-0.001))
    assert [r.promotion_id for r in state.promotions()] == ["z-dud", "b-new", "a-fine"]


def test_alerts_are_deduplicated_newest_first_and_bounded() -> None:
    state = MonitorState(max_alerts=3)
    for i in range(5):
        state.apply(alert(f"a{i}", minute=i))
    state.apply(alert("a4", minute=4))
    assert [a.alert_id for a in state.alerts()] == ["a4", "a3", "a2"]


def test_drift_keeps_the_latest_report_per_scope() -> None:
    state = MonitorState()
    state.apply(drift("holdout", minute=1, psi=0.5))
    state.apply(drift("overall", minute=1, psi=0.1))
    state.apply(drift("overall", minute=0, psi=0.9))
    rows = state.drift(top=1)
    assert [r.scope for r in rows] == ["overall", "holdout"]
    assert rows[0].max_psi == 0.1 and not rows[0].drifted
    assert rows[1].drifted and rows[1].top == (("24h_spend", 0.5),)
    assert rows[1].updated > T0


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([3.0, 3.0]) == SPARK[4] * 2
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == SPARK
    assert sparkline(list(range(100)), width=5) == SPARK[0] + SPARK[2] + SPARK[4] + SPARK[5] + SPARK[7]
