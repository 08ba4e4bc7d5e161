from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.events.models import CampaignStatus
from stream.monitor.grafana import dashboard_queries

pytestmark = pytest.mark.unit
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "liftstream-dashboard.json"


def write(tmp_path: Path, dashboard: dict) -> Path:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dashboard))
    return path


def test_variables_are_resolved(tmp_path: Path) -> None:
    path = write(tmp_path, {
        "templating": {"list": [
            {"name": "campaign", "allValue": ".*", "current": {"value": ["$__all"]}},
            {"name": "outcome", "current": {"value": "visit"}},
            {"name": "pick", "current": {"value": ["a", "b"]}},
        ]},
        "panels": [
            {"type": "row", "panels": [{"targets": [{"expr": 'x{campaign=~"$campaign"}'}]}]},
            {"targets": [{"expr": 'rate(y{outcome="${outcome}", p=~"$pick"}[$__rate_interval])'},
                         {"refId": "no expr"}]},
        ],
    })
    assert dashboard_queries(path) == ['x{campaign=~".*"}', 'rate(y{outcome="visit", p=~"a|b"}[1m])']
    assert dashboard_queries(path, {"campaign": "c1"})[0] == 'x{campaign=~"c1"}'


def test_an_unknown_variable_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, {"panels": [{"targets": [{"expr": "x{a=~\"$nope\"}"}]}]})
    with pytest.raises(KeyError, match="nope"):
        dashboard_queries(path)


def test_the_dashboard_covers_live_campaign_monitoring() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert all(p["title"] and p["description"] and p["targets"] for p in panels)
    queries = " ".join(dashboard_queries(DASHBOARD))
    for needle in ("liftstream_predicted_uplift", "liftstream_realised_uplift", "liftstream_exposures",
                   "liftstream_drift_max_psi", "rate(liftstream_events_in_total",
                   "histogram_quantile(0.99, sum by (le) (rate(liftstream_prediction_latency_seconds_bucket",
                   "liftstream_consumer_lag", "liftstream_dead_letters_total",
                   "liftstream_triton_errors_total", "liftstream_anytime_uplift_low",
                   "liftstream_anytime_uplift_high", "liftstream_adjusted_uplift_low",
                   "liftstream_adjusted_uplift_high", "liftstream_at_risk", "liftstream_alert_firing"):
        assert needle in queries, needle
    assert "$" not in queries


def test_the_status_panel_names_every_status() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    [status] = [p for p in panels if p["title"] == "Promotion status"]
    [colours] = status["fieldConfig"]["overrides"][0]["properties"][1]["value"]
    for s in CampaignStatus:
        assert s.value in status["description"] and s.value in colours["options"], s
