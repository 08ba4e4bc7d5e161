from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream.alerts import AlertGate, Check, check_drift, check_effect, check_triton
from stream.events.models import (
    Alert,
    AlertKind,
    CampaignEffect,
    CampaignStatus,
    Decision,
    DriftReport,
    FeatureDrift,
    Interval,
    Outcome,
    PromotionGoal,
)

pytestmark = pytest.mark.unit
T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)


def effect(status: CampaignStatus, realised: float = 0.001, high: float = 0.004, at: datetime = T0,
           promotion: str = "p1", *, at_risk: bool = False, adjusted: bool = True) -> CampaignEffect:
    """A conversion goal of +0.01; the decision interval is realised − 0.003 … `high`."""
    rates = {o: 0.1 for o in Outcome}
    conversion = Interval(low=realised - 0.003, high=high)
    return CampaignEffect(
        campaign_id="c1", promotion_id=promotion, window_start=T0 - timedelta(hours=1), window_end=at,
        exposures_treatment=4000, exposures_holdout=500,
        predicted_uplift={Outcome.conversion: 0.002}, realised_rate_treatment=rates,
        realised_rate_holdout=rates, realised_uplift={Outcome.conversion: realised},
        realised_uplift_ci={Outcome.conversion: Interval(low=realised - 0.001, high=realised + 0.001)},
        anytime_ci={Outcome.conversion: conversion}, adjusted_uplift={Outcome.conversion: realised},
        adjusted_ci={Outcome.conversion: conversion}, variance_reduction={Outcome.conversion: 0.2},
        predicted_uplift_ci={Outcome.conversion: Interval(low=0.001, high=0.003)},
        goal=PromotionGoal(outcome=Outcome.conversion, target_uplift=0.01),
        status=status,
        decision=Decision(outcome=Outcome.conversion, uplift=realised, interval=conversion, adjusted=adjusted,
                          alpha=0.05, mixing_scale=0.01),
        at_risk=at_risk, model_version=2, emitted_at=at,
    )


def checks(e: CampaignEffect) -> dict[AlertKind, Check]:
    return {AlertKind(check.subject.split(":", 1)[0]): check for check in check_effect(e)}


def raised(e: CampaignEffect) -> set[AlertKind]:
    return {kind for kind, check in checks(e).items() if check.alert is not None}


def offer(gate: AlertGate, e: CampaignEffect) -> list[Alert]:
    return [a for a in (gate.offer(c) for c in check_effect(e)) if a is not None]


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
    check = checks(effect(CampaignStatus.underperforming))[AlertKind.underperforming]
    alert = check.alert
    assert alert is not None
    assert check.subject == "underperforming:c1:p1" and check.at == T0
    assert alert.kind is AlertKind.underperforming
    assert alert.severity == "critical" and alert.state == "firing"
    assert (alert.campaign_id, alert.promotion_id) == ("c1", "p1")
    assert alert.value == 0.001
    assert alert.threshold == 0.01
    assert alert.raised_at == T0
    assert "realised +0.001" in alert.message
    assert "model-adjusted anytime-valid 95% interval -0.002 … +0.004" in alert.message
    assert alert.alert_id == f"underperforming:c1:p1:{int(T0.timestamp())}"


def test_one_check_per_campaign_condition() -> None:
    assert [c.subject for c in check_effect(effect(CampaignStatus.inconclusive))] == [
        "underperforming:c1:p1", "meeting_goal:c1:p1", "at_risk:c1:p1"]


@pytest.mark.parametrize(("status", "at_risk", "expected"), [
    (CampaignStatus.underperforming, False, {AlertKind.underperforming}),
    (CampaignStatus.meeting_goal, False, {AlertKind.meeting_goal}),
    (CampaignStatus.inconclusive, False, set()),
    (CampaignStatus.insufficient_data, False, set()),
    (CampaignStatus.inconclusive, True, {AlertKind.at_risk}),
    (CampaignStatus.insufficient_data, True, {AlertKind.at_risk}),
])
def test_alerts_follow_the_status_and_the_early_warning(status: CampaignStatus, at_risk: bool,
                                                        expected: set[AlertKind]) -> None:
    assert raised(effect(status, at_risk=at_risk)) == expected


def test_meeting_goal_and_at_risk_are_info() -> None:
    met = checks(effect(CampaignStatus.meeting_goal, realised=0.02, high=0.03, adjusted=False))
    alert = met[AlertKind.meeting_goal].alert
    assert alert is not None and alert.severity == "info"
    assert "meets its conversion uplift goal +0.01" in alert.message
    assert "realised +0.02, anytime-valid 95% interval +0.017 … +0.03" in alert.message
    warned = checks(effect(CampaignStatus.inconclusive, at_risk=True))[AlertKind.at_risk].alert
    assert warned is not None and warned.severity == "info"
    assert warned.value == 0.002  # the predicted uplift, not the realised one
    assert "predicted +0.002 (interval +0.001 … +0.003), not yet decided" in warned.message


def test_ids_are_deterministic_and_fit_the_id_pattern() -> None:
    under = CampaignStatus.underperforming
    assert check_effect(effect(under)) == check_effect(effect(under))
    long = checks(effect(under, promotion="p" * 120))[AlertKind.underperforming].alert
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


def test_a_campaign_alert_fires_once_and_resolves_with_its_id() -> None:
    gate = AlertGate(cooldown_s=600)
    at = [T0 + timedelta(minutes=m) for m in range(0, 40)]
    [fired] = offer(gate, effect(CampaignStatus.underperforming, at=at[0]))
    assert fired.kind is AlertKind.underperforming and fired.state == "firing"
    # Campaign conditions never repeat while they hold, not even after the cooldown.
    assert offer(gate, effect(CampaignStatus.underperforming, at=at[5])) == []
    assert offer(gate, effect(CampaignStatus.underperforming, at=at[30])) == []
    assert gate.firing() == [fired]
    # Cleared: the same alert comes back resolved, stamped with the effect that cleared it.
    [resolved] = offer(gate, effect(CampaignStatus.inconclusive, at=at[31]))
    assert resolved.alert_id == fired.alert_id and resolved.state == "resolved"
    assert resolved.raised_at == at[31] and resolved.message == fired.message
    assert gate.firing() == []
    assert offer(gate, effect(CampaignStatus.inconclusive, at=at[32])) == []
    # Back in the condition: a new alert, with a new id.
    [again] = offer(gate, effect(CampaignStatus.underperforming, at=at[33]))
    assert again.state == "firing" and again.alert_id != fired.alert_id


def test_a_status_change_resolves_one_alert_and_fires_the_other() -> None:
    gate = AlertGate(cooldown_s=600)
    [warned] = offer(gate, effect(CampaignStatus.inconclusive, at_risk=True))
    assert warned.kind is AlertKind.at_risk
    later = T0 + timedelta(minutes=1)
    events = offer(gate, effect(CampaignStatus.underperforming, at=later))
    assert [(a.kind, a.state) for a in events] == [(AlertKind.underperforming, "firing"),
                                                   (AlertKind.at_risk, "resolved")]
    assert events[1].alert_id == warned.alert_id


def test_operational_alerts_repeat_after_the_cooldown_and_resolve() -> None:
    gate = AlertGate(cooldown_s=600)
    at = [T0 + timedelta(minutes=m) for m in range(0, 40)]
    first = gate.offer(check_drift(drift(True, at=at[0]), threshold=0.25))
    assert first is not None and first.state == "firing"
    assert gate.offer(check_drift(drift(True, at=at[5]), threshold=0.25)) is None
    again = gate.offer(check_drift(drift(True, at=at[10]), threshold=0.25))
    assert again is not None and again.alert_id.endswith(str(int(at[10].timestamp())))
    resolved = gate.offer(check_drift(drift(False, at=at[11]), threshold=0.25))
    assert resolved is not None and resolved.state == "resolved"
    assert resolved.alert_id == again.alert_id and resolved.raised_at == at[11]
    assert gate.offer(check_drift(drift(False, at=at[12]), threshold=0.25)) is None

    down = at[20]
    assert gate.offer(check_triton("effect_scorer", down, down)) is not None
    assert gate.offer(check_triton("effect_scorer", down, at[25])) is None
    assert gate.offer(check_triton("effect_scorer", down, at[30])) is not None
    back = gate.offer(check_triton("effect_scorer", None, at[31]))
    assert back is not None and back.state == "resolved" and back.kind is AlertKind.triton_unavailable


def test_gate_keeps_subjects_apart() -> None:
    gate = AlertGate(cooldown_s=600)
    assert len(offer(gate, effect(CampaignStatus.underperforming, promotion="p1"))) == 1
    assert len(offer(gate, effect(CampaignStatus.underperforming, promotion="p2"))) == 1
    assert gate.offer(check_drift(drift(True), threshold=0.25)) is not None
    assert gate.offer(check_drift(drift(True, at=T0 + timedelta(seconds=30)), threshold=0.25)) is None
    events = offer(gate, effect(CampaignStatus.meeting_goal, promotion="p1", realised=0.02, high=0.03))
    assert [(a.kind, a.promotion_id, a.state) for a in events] == [
        (AlertKind.underperforming, "p1", "resolved"), (AlertKind.meeting_goal, "p1", "firing")]
    assert {a.promotion_id for a in gate.firing() if a.kind is AlertKind.underperforming} == {"p2"}
