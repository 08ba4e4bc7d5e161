from __future__ import annotations

from pathlib import Path

import pytest

from stream.demo.collect import Outputs
from stream.demo.report import summary, write_report
from stream.demo.run import run_settings, worker_env
from stream.settings import load_settings

pytestmark = pytest.mark.unit


def _effect(t: str, realised: float) -> dict:
    zero = {"visit": 0.0, "conversion": 0.0, "revenue": 0.0}
    return {
        "promotion_id": "p1",
        "campaign_id": "c1",
        "emitted_at": t,
        "status": "underperforming",
        "exposures_treatment": 90,
        "exposures_holdout": 30,
        "goal": {"outcome": "conversion", "target_uplift": 0.02},
        "predicted_uplift": {**zero, "conversion": 0.01},
        "realised_uplift": {**zero, "conversion": realised},
        "realised_uplift_ci": {o: {"low": -0.1, "high": 0.1} for o in zero},
    }


def test_report_holds_figures_tables_and_alerts(tmp_path: Path) -> None:
    outputs = Outputs(
        predictions=[{"scored_at": f"2026-01-01T00:00:{s:02d}Z", "latency_ms": float(s)} for s in range(20)],
        effects=[_effect("2026-01-01T00:00:05Z", 0.0), _effect("2026-01-01T00:00:15Z", -0.01)],
        alerts=[
            {
                "raised_at": "2026-01-01T00:00:16Z",
                "kind": "underperforming",
                "severity": "warning",
                "message": "p1 <below> goal",
            }
        ],
        drift=[{"scope": "overall", "emitted_at": "2026-01-01T00:00:10Z", "max_psi": 0.4}],
    )
    page = write_report(outputs, {"run": "r1"}, tmp_path / "r.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "p1 &lt;below&gt; goal" in page
    assert "underperforming" in page and "-0.0100" in page
    numbers = summary(outputs, {})
    assert numbers["predictions"] == 20 and numbers["alerts"] == 1
    assert numbers["latency p50 ms"] == 9.5


def test_each_run_gets_its_own_topics_and_group() -> None:
    settings = run_settings(load_settings(), "demo-x")
    assert settings.topics.predictions == "demo-x-predictions"
    assert settings.topics.partitions == load_settings().topics.partitions
    env = worker_env(settings)
    assert env["LIFTSTREAM_APP_ID"] == "demo-x"
    assert env["LIFTSTREAM_TOPICS__DEAD_LETTER"] == "demo-x-dead-letter"
    assert load_settings(**{}).app_id == "liftstream"
