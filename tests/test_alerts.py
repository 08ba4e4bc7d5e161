from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream.alerts import AlertGate, Check, check_drift, check_effect, check_triton
from stream.events.models import (
    AlertKind,
    CampaignEffect,
    CampaignStatus,
    DriftReport,
    FeatureDrift,
    Interval,
    Outcome,
    PromotionGoal,
)

pytestmark = pytest.mark.unit
T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)


def effect(status: CampaignStatus, realised: float = 0.001, high: float = 0.004, at: datetime = T0,
           promotion: str = "p1") -> CampaignEffect:
    rates = {o: 0.1 for o in Outcome}
    return CampaignEffect(
        campaign_id="c1", promotion_id=promotion, window_start=T0 - timedelta(hours=1), window_end=at,
        exposures_treatment=4000, exposures_holdout=500,
        predicted_uplift={Outcome.conversion: 0.002}, realised_rate_treatment=rates,
        realised_rate_holdout=rates, realised_uplift={Outcome.conversion: realised},
        realised_uplift_ci={Outcome.conversion: Interval(low=realised - 0.003, high=high)},
        goal=PromotionGoal(outcome=Outcome.conversion, target_uplift=0.01),
        status=status, model_version=2, emitted_at=at,
    )


def drift(drifted: bool, at: datetime = T0) -> DriftReport:
    psis = [("24h_spend", 0.9), ("1h_spend", 0.6), ("5m_spend", 0.5), ("profile_is_new", 0.3),
            ("hour_sin", 0.0)]
    features = [FeatureDrift(name=n, psi=p if drifted else 0.1, drifted=drifted and p > 0.25)
                for n, p in psis]
    return DriftReport(
        scope="overall", window_events=5000, model_version=2, emitted_at=at, drifted=drifted,
        max_psi=0.9 if drifted else 0.1, features=features,
    )


def test_underperforming_promotion_raises() -> None:
    check = check_effect(effect(CampaignStatus.underperforming))
    alert = check.alert
    assert alert is not None
    assert check.subject == "underperforming:c1:p1"
    assert alert.kind is AlertKind.underperforming
    assert alert.severity == "critical"  # the CI's upper end 0.004 is below the goal 0.01
    assert (alert.campaign_id, alert.promotion_id) == ("c1", "p1")
    assert alert.value == 0.001
    assert alert.threshold == 0.01
    assert alert.raised_at == T0
    assert "realised +0.001" in alert.message and "predicted +0.002" in alert.message
    assert alert.alert_id == f"underperforming:c1:p1:{int(T0.timestamp())}"


def test_uncertain_shortfall_is_a_warning() -> None:
    alert = check_effect(effect(CampaignStatus.underperforming, high=0.02)).alert
    assert alert is not None and alert.severity == "warning"


@pytest.mark.parametrize("status", [CampaignStatus.on_track, CampaignStatus.insufficient_data])
def test_other_statuses_are_clear(status: CampaignStatus) -> None:
    assert check_effect(effect(status)) == Check("underperforming:c1:p1", None)


def test_ids_are_deterministic_and_fit_the_id_pattern() -> None:
    under = CampaignStatus.underperforming
    assert check_effect(effect(under)) == check_effect(effect(under))
    long = check_effect(effect(CampaignStatus.underperforming, promotion="p" * 120)).alert
    assert long is not None
    assert long.alert_id.startswith("underperforming:") and len(long.alert_id) <= 128


def test_drift_alert_names_the_worst_features() -> None:
    check = check_drift(drift(True), threshold=0.25)
    assert check.subject == "drift:overall"
    alert = check.alert
    assert alert is not None and alert.kind is AlertKind.drift
    assert alert.value == 0.9 and alert.threshold == 0.25
    assert "24h_spend 0.90, 1h_spend 0.60, 5m_spend 0.50 and 1 more" in alert.message
    assert check_drift(drift(False), threshold=0.25).alert is None


def test_triton_unavailable() -> None:
    check = check_triton("effect_scorer", T0, T0 + timedelta(seconds=45), error="connection refused")
    alert = check.alert
    assert alert is not None
    assert alert.kind is AlertKind.triton_unavailable and alert.severity == "critical"
    assert alert.value == 45
    assert "connection refused" in alert.message
    assert check_triton("effect_scorer", None, T0).alert is None


def test_gate_debounces_until_cooldown_change_or_clear() -> None:
    gate = AlertGate(cooldown_s=600)
    at = [T0 + timedelta(minutes=m) for m in range(0, 40)]
    assert gate.offer(check_effect(effect(CampaignStatus.underperforming, at=at[0]))) is not None
    assert gate.offer(check_effect(effect(CampaignStatus.underperforming, at=at[5]))) is None
    # Severity changed (the interval now reaches the goal): raised again at once.
    assert gate.offer(check_effect(effect(CampaignStatus.underperforming, high=0.02, at=at[6]))) is not None
    assert gate.offer(check_effect(effect(CampaignStatus.underperforming, high=0.02, at=at[15]))) is None
    # Ten minutes after the last raise: raised again while it persists.
    again = gate.offer(check_effect(effect(CampaignStatus.underperforming, high=0.02, at=at[16])))
    assert again is not None and again.alert_id.endswith(str(int(at[16].timestamp())))
    # Cleared, then back: raised at once.
    assert gate.offer(check_effect(effect(CampaignStatus.on_track, at=at[17]))) is None
    assert gate.offer(check_effect(effect(CampaignStatus.underperforming, high=0.02, at=at[18]))) is not None


def test_gate_keeps_subjects_apart() -> None:
    gate = AlertGate(cooldown_s=600)
    assert gate.offer(check_effect(effect(CampaignStatus.underperforming, promotion="p1"))) is not None
    assert gate.offer(check_effect(effect(CampaignStatus.underperforming, promotion="p2"))) is not None
    assert gate.offer(check_drift(drift(True), threshold=0.25)) is not None
    assert gate.offer(check_drift(drift(True, at=T0 + timedelta(seconds=30)), threshold=0.25)) is None
