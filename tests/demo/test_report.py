from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from stream.demo.collect import Outputs
from stream.demo.decisions import checks, promotion_summaries, report_data, status_changes, summary
from stream.demo.report import write_report
from stream.demo.run import DEFAULT_EVENTS, MAX_WORLD_USERS, WORLD_USERS, live_world, run_settings, worker_env
from stream.demo.truth import sent_exposure_ids, true_uplifts
from stream.history import TruthRow
from stream.settings import load_settings
from stream.simulate.emission import Message

pytestmark = pytest.mark.unit

START = datetime(2026, 1, 1, tzinfo=UTC)
OUTCOMES = ("visit", "conversion", "revenue")


def _effect(
    promo: str,
    second: int,
    status: str,
    exposures: tuple[int, int],
    interval: tuple[float, float] | None,
    goal: float = 0.05,
    adjusted: tuple[float, float] | None = None,
) -> dict:
    """A CampaignEffect as the demo reads it back from Kafka (JSON), judged on visits."""
    zero = dict.fromkeys(OUTCOMES, 0.0)
    wide = {o: {"low": -0.5, "high": 0.5} for o in OUTCOMES}
    ci = None if interval is None else {"low": interval[0], "high": interval[1]}
    uplift = None if interval is None else (interval[0] + interval[1]) / 2
    return {
        "promotion_id": promo,
        "campaign_id": "c1",
        "emitted_at": f"2026-01-01T00:00:{second:02d}Z",
        "status": status,
        "exposures_treatment": exposures[0],
        "exposures_holdout": exposures[1],
        "goal": {"outcome": "visit", "target_uplift": goal, "target_incremental_revenue": 0.0},
        "predicted_uplift": {**zero, "visit": 0.01},
        "realised_uplift": {**zero, "visit": uplift or 0.0},
        "realised_uplift_ci": wide,
        "anytime_ci": {**wide, "visit": ci} if ci else {},
        "adjusted_uplift": {"visit": sum(adjusted) / 2} if adjusted else {},
        "adjusted_ci": {"visit": {"low": adjusted[0], "high": adjusted[1]}} if adjusted else {},
        "decision": {
            "outcome": "visit",
            "uplift": uplift,
            "interval": {"low": adjusted[0], "high": adjusted[1]} if adjusted else ci,
            "adjusted": adjusted is not None,
            "alpha": 0.05,
            "mixing_scale": goal,
            "reason": None,
        },
        "at_risk": False,
    }


def _outputs() -> Outputs:
    """A dud that ends underperforming, a strong promotion that meets its goal, a third that flips."""
    effects = [
        _effect("dud", 2, "insufficient_data", (20, 20), (-0.6, 0.6)),
        _effect("dud", 5, "inconclusive", (60, 60), (-0.2, 0.21)),
        _effect("dud", 9, "inconclusive", (300, 290), (-0.08, 0.09)),
        _effect("dud", 14, "underperforming", (900, 880), (-0.05, 0.04)),
        _effect("dud", 20, "underperforming", (1500, 1490), (-0.04, 0.03), adjusted=(-0.035, 0.028)),
        _effect("strong", 3, "insufficient_data", (10, 9), None),
        _effect("strong", 6, "inconclusive", (80, 70), (-0.1, 0.4), goal=0.1),
        _effect("strong", 12, "meeting_goal", (700, 650), (0.11, 0.3), goal=0.1),
        _effect("flip", 6, "inconclusive", (80, 70), (-0.1, 0.3), goal=0.02),
        _effect("flip", 8, "underperforming", (200, 190), (-0.1, 0.01), goal=0.02),
        _effect("flip", 11, "inconclusive", (400, 390), (-0.05, 0.03), goal=0.02),
    ]
    return Outputs(
        predictions=[{"scored_at": f"2026-01-01T00:00:{s:02d}Z", "latency_ms": float(s)} for s in range(20)],
        effects=list(reversed(effects)),  # the report orders rows by emitted_at itself
        alerts=[
            {
                "raised_at": "2026-01-01T00:00:14Z",
                "kind": "underperforming",
                "state": "firing",
                "severity": "warning",
                "promotion_id": "dud",
                "message": "dud <below> goal",
            }
        ],
        drift=[{"scope": "overall", "emitted_at": "2026-01-01T00:00:10Z", "max_psi": 0.4}],
    )


ZERO = {"visit": 0.0, "conversion": 0.0, "revenue": 0.0}
TRUTH = {
    "dud": {"role": "dud", "exposures": 2990, "true_uplift": ZERO},
    "strong": {"role": "strong", "exposures": 1350, "true_uplift": {**ZERO, "visit": 0.3}},
    "flip": {"role": "regular", "exposures": 790, "true_uplift": {**ZERO, "visit": 0.01}},
}


def test_status_changes_keep_each_status_reached_with_its_time_and_exposures() -> None:
    rows = sorted(
        (e for e in _outputs().effects if e["promotion_id"] == "dud"), key=lambda e: e["emitted_at"]
    )
    changes = status_changes(rows, START.timestamp())
    assert [c["status"] for c in changes] == ["insufficient_data", "inconclusive", "underperforming"]
    assert [c["t_s"] for c in changes] == [2.0, 5.0, 14.0]
    assert [c["exposures"] for c in changes] == [40, 120, 1780]
    assert changes[-1]["interval"] == {"low": -0.05, "high": 0.04}


def test_promotion_summaries_hold_goal_truth_statuses_and_final_intervals() -> None:
    promos = {p["promotion_id"]: p for p in promotion_summaries(_outputs(), TRUTH, START)}
    assert list(promos) == ["dud", "flip", "strong"]
    dud = promos["dud"]
    assert dud["goal"] == {"outcome": "visit", "target_uplift": 0.05}
    assert dud["role"] == "dud" and dud["true_uplift"] == 0.0 and dud["truly_meets_goal"] is False
    final = dud["final"]
    assert final["status"] == "underperforming" and final["exposures"] == 2990 and final["t_s"] == 20.0
    assert final["adjusted"] is True
    assert final["interval"] == final["adjusted_interval"] == {"low": -0.035, "high": 0.028}
    assert final["unadjusted_interval"] == {"low": -0.04, "high": 0.03}
    assert len(dud["trajectory"]) == 5 and dud["trajectory"][0]["exposures"] == 40
    strong = promos["strong"]
    assert strong["trajectory"][0]["interval"] is None  # no interval until both arms have an exposure
    assert [c["status"] for c in strong["statuses"]][-1] == "meeting_goal"
    assert strong["truly_meets_goal"] is True and not strong["ever_underperforming"]
    assert promos["flip"]["ever_underperforming"] and promos["flip"]["final"]["status"] == "inconclusive"


def test_checks_compare_the_decisions_with_the_truth() -> None:
    promos = promotion_summaries(_outputs(), TRUTH, START)
    assert checks(promos) == {
        "dud_ends_underperforming": True,
        "no_promotion_meeting_its_goal_was_ever_underperforming": True,
    }
    # the flipping promotion truly meets a goal of 0.005: its underperforming spell now breaks the check
    truth = {**TRUTH, "flip": {**TRUTH["flip"], "true_uplift": {"visit": 0.03}}}
    assert (
        checks(promotion_summaries(_outputs(), truth, START))[
            "no_promotion_meeting_its_goal_was_ever_underperforming"
        ]
        is False
    )
    no_truth = promotion_summaries(_outputs())
    assert checks(no_truth) == {
        "dud_ends_underperforming": None,
        "no_promotion_meeting_its_goal_was_ever_underperforming": None,
    }
    assert no_truth[0]["statuses"][0]["t_s"] == 0.0  # without a start, times count from the first report


def test_report_data_is_json_with_alerts_relative_to_the_start() -> None:
    data = json.loads(json.dumps(report_data(_outputs(), {"run": "r1"}, TRUTH, START)))
    assert data["summary"]["run"] == "r1" and data["started_at"] == START.isoformat()
    assert data["alerts"][0]["t_s"] == 14.0 and data["alerts"][0]["state"] == "firing"
    assert [p["promotion_id"] for p in data["promotions"]] == ["dud", "flip", "strong"]


def test_report_holds_figures_tables_alerts_and_json_beside_it(tmp_path: Path) -> None:
    outputs = _outputs()
    page_path, data_path = write_report(outputs, {"run": "r1"}, tmp_path / "r.html", TRUTH, START)
    assert data_path == tmp_path / "r.json"
    page = page_path.read_text()
    assert page.count("data:image/png;base64,") == 3  # decisions, predicted vs realised, pipeline
    assert "dud &lt;below&gt; goal" in page
    assert "underperforming" in page and "meeting_goal" in page and "-0.0350 … +0.0280" in page
    data = json.loads(data_path.read_text())
    assert data["checks"]["dud_ends_underperforming"] is True
    assert {p["promotion_id"]: p["final"]["status"] for p in data["promotions"]} == {
        "dud": "underperforming",
        "flip": "inconclusive",
        "strong": "meeting_goal",
    }
    numbers = summary(outputs, {})
    assert numbers["predictions"] == 20 and numbers["alerts"] == 1
    assert numbers["latency p50 ms"] == 9.5


def test_report_without_effects_still_writes_both(tmp_path: Path) -> None:
    page_path, data_path = write_report(Outputs(), {"run": "r0"}, tmp_path / "r.html")
    assert "no campaign effect reports" in page_path.read_text()
    assert json.loads(data_path.read_text())["promotions"] == []


def test_true_uplifts_average_the_exposures_sent() -> None:
    rows = [
        TruthRow("x1", "u1", "p1", "treatment", 0.2, 0.01, 1.0, 0.3, 0.02, 2.0),
        TruthRow("x2", "u2", "p1", "holdout", 0.4, 0.03, 3.0, 0.3, 0.02, 2.0),
        TruthRow("x3", "u3", "p1", "holdout", 9.0, 9.0, 9.0, 0.3, 0.02, 2.0),  # not sent
        TruthRow("x4", "u4", "p2", "treatment", 0.0, 0.0, 0.0, 0.3, 0.02, 2.0),
    ]
    meta = {"promotions": {p: {"role": r, "goal_outcome": "visit", "target_uplift": 0.1}
                           for p, r in (("p1", "strong"), ("p2", "dud"), ("p3", "regular"))}}  # fmt: skip
    valid = [Message("exposures", b"u", orjson.dumps({"event_id": x}), 0) for x in ("x1", "x2", "x4")]
    sent = [
        *valid,
        Message("exposures", b"u", b"{not json", 0, valid=False),
        Message("clicks", b"u", b"{}", 0),
    ]
    assert sent_exposure_ids(sent) == {"x1", "x2", "x4"}
    truth = true_uplifts(rows, meta, sent_exposure_ids(sent))
    assert truth["p1"]["true_uplift"]["visit"] == pytest.approx(0.3)
    assert truth["p1"]["true_uplift"]["revenue"] == pytest.approx(2.0) and truth["p1"]["exposures"] == 2
    assert truth["p2"]["role"] == "dud" and truth["p2"]["true_uplift"]["visit"] == 0.0
    assert truth["p3"]["exposures"] == 0 and truth["p3"]["true_uplift"]["visit"] is None
    assert true_uplifts(rows, meta)["p1"]["exposures"] == 3


def test_the_demo_world_is_sized_to_the_run() -> None:
    world = live_world(1000, 60)
    assert world.users == WORLD_USERS and DEFAULT_EVENTS == 1000 * 60
    assert world.goal_outcome == "visit" and world.campaigns == 1 and world.promotions_per_campaign == 3
    assert live_world(500, 60).users == WORLD_USERS // 2
    assert live_world(1, 5).users == 50
    assert live_world(1000, 3600).users == MAX_WORLD_USERS


def test_each_run_gets_its_own_topics_and_group() -> None:
    settings = run_settings(load_settings(), "demo-x")
    assert settings.topics.predictions == "demo-x-predictions"
    assert settings.topics.partitions == load_settings().topics.partitions
    env = worker_env(settings)
    assert env["LIFTSTREAM_APP_ID"] == "demo-x"
    assert env["LIFTSTREAM_TOPICS__DEAD_LETTER"] == "demo-x-dead-letter"
    assert load_settings(**{}).app_id == "liftstream"
