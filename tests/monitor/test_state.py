from __future__ import annotations

from datetime import timedelta

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
    assert row.ci == pytest.approx((0.016, 0.024))  # the decision interval, not the fixed-horizon one
    assert not row.adjusted and not row.at_risk and row.status is CampaignStatus.meeting_goal
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


def test_underperforming_promotions_come_first_then_those_at_risk() -> None:
    state = MonitorState()
    state.apply(effect("a-fine"))
    state.apply(effect("b-new", status=CampaignStatus.insufficient_data))
    state.apply(effect("c-open", status=CampaignStatus.inconclusive))
    state.apply(effect("d-new-risky", status=CampaignStatus.insufficient_data, at_risk=True))
    state.apply(effect("e-risky", status=CampaignStatus.inconclusive, at_risk=True))
    state.apply(effect("z-dud", status=CampaignStatus.underperforming, realised=-0.001))
    assert [r.promotion_id for r in state.promotions()] == [
        "z-dud", "e-risky", "d-new-risky", "c-open", "b-new", "a-fine"]


def test_rows_show_whether_the_decision_interval_is_adjusted() -> None:
    state = MonitorState()
    state.apply(effect(adjusted=True))
    [row] = state.promotions()
    assert row.adjusted and row.ci == pytest.approx((0.006, 0.014))


def test_alerts_are_deduplicated_newest_first_and_bounded() -> None:
    state = MonitorState(max_alerts=3)
    for i in range(5):
        state.apply(alert(f"a{i}", minute=i))
    state.apply(alert("a4", minute=4))
    assert [a.alert_id for a in state.alerts()] == ["a4", "a3", "a2"]


def test_a_resolved_alert_replaces_its_firing_one() -> None:
    state = MonitorState()
    state.apply(alert("a1", minute=0))
    state.apply(alert("a2", minute=1))
    state.apply(alert("a1", minute=2, state="resolved"))
    assert [(a.alert_id, a.state) for a in state.alerts()] == [("a1", "resolved"), ("a2", "firing")]


def test_a_resolution_read_before_its_alert_stays_resolved() -> None:
    state = MonitorState()
    state.apply(alert("a1", minute=2, state="resolved"))
    state.apply(alert("a1", minute=0))
    [shown] = state.alerts()
    assert shown.state == "resolved" and shown.raised_at == T0 + timedelta(minutes=2)


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
