from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from rich.console import Console

from stream.events.models import CampaignStatus, Outcome
from stream.monitor.state import MonitorState
from stream.monitor.view import age, render, uplift

from .factories import T0, alert, drift, effect

pytestmark = pytest.mark.unit


def text(state: MonitorState) -> str:
    out = StringIO()
    Console(file=out, width=200, color_system=None).print(render(state, T0 + timedelta(minutes=3), "k:9092"))
    return out.getvalue()


def test_uplift_formats() -> None:
    assert uplift(Outcome.conversion, 0.0123) == "+1.23 pp"
    assert uplift(Outcome.visit, -0.004) == "-0.40 pp"
    assert uplift(Outcome.revenue, 1.5) == "+1.50"
    assert uplift(Outcome.revenue, None) == "–"


def test_age() -> None:
    assert age(T0, T0 + timedelta(seconds=30)) == "30s ago"
    assert age(T0, T0 + timedelta(minutes=10)) == "10m ago"
    assert age(T0, T0 + timedelta(hours=5)) == "5h ago"
    assert age(T0 + timedelta(seconds=5), T0) == "0s ago"


def test_renders_promotions_drift_and_alerts() -> None:
    state = MonitorState()
    state.apply(effect("p-strong", realised=0.02))
    state.apply(effect("p-dud", realised=-0.001, status=CampaignStatus.underperforming))
    state.apply(drift("treatment", psi=0.6))
    state.apply(alert("a1", message="promotion p-dud is below its goal"))
    state.undecodable = 2
    state.other_schema = 3
    out = text(state)
    for expected in ("p-strong", "p-dud", "underperforming", "meeting_goal", "+2.00 pp", "-0.10 pp",
                     "+1.20 pp", "treatment", "DRIFT", "24h_spend 0.60", "promotion p-dud is below its goal",
                     "1,000 / 100", "3m ago", "2 messages could not be decoded", "k:9092",
                     "3 messages of another schema_version were skipped"):
        assert expected in out, expected
    assert out.index("p-dud") < out.index("p-strong")


def test_shows_the_decision_interval_and_the_early_warning() -> None:
    state = MonitorState()
    state.apply(effect("p-plain", realised=0.02))
    state.apply(effect("p-adj", realised=0.01, adjusted=True, status=CampaignStatus.inconclusive,
                       at_risk=True))
    out = text(state)
    assert "+1.60 pp … +2.40 pp" in out  # anytime-valid, not the fixed-horizon +1.80 … +2.20
    assert "+1.80 pp" not in out
    assert "+0.60 pp … +1.40 pp adj." in out
    assert "inconclusive, at risk" in out
    assert out.index("p-adj") < out.index("p-plain")


def test_resolved_alerts_are_shown_resolved() -> None:
    state = MonitorState()
    state.apply(alert("a1", message="promotion p2 is below its goal"))
    state.apply(alert("a2", minute=1, message="promotion p3 is below its goal", promotion="p3"))
    state.apply(alert("a1", minute=2, message="promotion p2 is below its goal", state="resolved"))
    lines = text(state).splitlines()
    [p2] = [line for line in lines if "promotion p2" in line]
    [p3] = [line for line in lines if "promotion p3" in line]
    assert "resolved" in p2 and "firing" not in p2 and "60s ago" in p2  # when it resolved
    assert "firing" in p3 and "resolved" not in p3


def test_renders_an_empty_state() -> None:
    out = text(MonitorState())
    assert "no campaign effects yet" in out and "no drift reports yet" in out and "no alerts" in out
