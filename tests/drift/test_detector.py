from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from stream.drift.detector import CLOCK_FEATURES, DriftDetector
from stream.drift.reference import build_reference
from stream.errors import ModelError
from stream.events.models import Arm
from stream.features.compute import USER_FEATURES
from stream.settings import Drift

from .population import Scored, population

pytestmark = pytest.mark.unit
NOW = datetime(2024, 6, 1, tzinfo=UTC)
SETTINGS = Drift(window_events=5000, psi_threshold=0.25, min_events=200)


@pytest.fixture(scope="module")
def reference() -> dict:
    s = population(20_000, seed=1)
    return build_reference(s.user, s.promo, s.arm, s.p_treated, s.p_control)


def run(reference: dict, live: Scored, batch: int = 512) -> dict[str, object]:
    detector = DriftDetector(reference, SETTINGS)
    for start in range(0, len(live.arm), batch):
        part = live.take(slice(start, start + batch))
        detector.update(part.user, part.promo, part.arm, part.uplift)
    return {r.scope: r for r in detector.report(NOW, model_version=4)}


def drifted_features(report: object) -> set[str]:
    return {f.name for f in report.features if f.drifted}  # type: ignore[attr-defined]


def test_quiet_on_the_reference_distribution(reference: dict) -> None:
    reports = run(reference, population(8000, seed=7))
    assert set(reports) == {"overall", "treatment", "holdout"}
    for report in reports.values():
        assert not report.drifted, drifted_features(report)
        assert report.max_psi < 0.1
        assert report.model_version == 4
    assert reports["overall"].window_events == 5000
    assert reports["holdout"].arm is Arm.holdout
    assert reports["overall"].arm is None


def test_fires_when_prices_double(reference: dict) -> None:
    reports = run(reference, population(5000, seed=7, spend_scale=2.0))
    assert reports["overall"].drifted
    assert {"5m_spend", "1h_spend", "24h_spend"} <= drifted_features(reports["overall"])
    assert "hour_sin" not in drifted_features(reports["overall"])


def test_fires_on_a_new_user_segment(reference: dict) -> None:
    reports = run(reference, population(5000, seed=7, new_share=0.6))
    assert "profile_is_new" in drifted_features(reports["overall"])
    # New users are predicted to respond more, so the predicted uplift drifts with them.
    assert "uplift_visit" in drifted_features(reports["overall"])


def test_per_arm_scope_finds_a_shift_confined_to_one_arm(reference: dict) -> None:
    reports = run(reference, population(5000, seed=7, holdout_new_share=0.9))
    assert reports["holdout"].drifted
    assert not reports["treatment"].drifted
    ks = {f.name: f.ks for f in reports["holdout"].features}
    assert ks["profile_is_new"] == pytest.approx(0.8, abs=0.05)


def test_needs_enough_rows_per_scope(reference: dict) -> None:
    reports = run(reference, population(600, seed=7))
    assert set(reports) == {"overall", "treatment"}


def test_rejects_batches_of_another_width(reference: dict) -> None:
    detector = DriftDetector(reference, SETTINGS)
    with pytest.raises(ModelError, match="columns"):
        detector.update(np.zeros((2, 40)), np.zeros((2, 9)), np.array(["treatment"] * 2), np.zeros((2, 3)))


def test_time_of_day_is_reported_but_never_flags_a_report(reference: dict) -> None:
    live = population(5000, seed=7)
    for name in CLOCK_FEATURES:  # a live window within one hour: every row has the same time of day
        column = USER_FEATURES.index(name)
        live.user[:, column] = live.user[0, column]
    report = run(reference, live)["overall"]
    psis = {f.name: f.psi for f in report.features}
    assert all(psis[name] > SETTINGS.psi_threshold for name in CLOCK_FEATURES)
    assert not report.drifted and not drifted_features(report)
    assert report.max_psi < 0.1
