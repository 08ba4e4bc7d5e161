"""Output events as the worker would publish them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

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

T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)


def effect(promotion: str = "p1", campaign: str = "c1", *, minute: int = 0, realised: float = 0.01,
           predicted: float = 0.012, status: CampaignStatus = CampaignStatus.meeting_goal,
           outcome: Outcome = Outcome.conversion, goal: float = 0.005, at_risk: bool = False,
           adjusted: bool = False) -> CampaignEffect:
    """The decision interval is realised ± 0.004 (anytime-valid, or the adjusted one when `adjusted`); the
    fixed-horizon one is narrower, realised ± 0.002, so a view that shows it instead can be told apart."""
    at = T0 + timedelta(minutes=minute)
    rates = {o: 0.1 for o in Outcome}
    anytime = Interval(low=realised - 0.004, high=realised + 0.004)
    return CampaignEffect(
        campaign_id=campaign, promotion_id=promotion, window_start=T0, window_end=at,
        exposures_treatment=1000 + minute, exposures_holdout=100 + minute,
        predicted_uplift={outcome: predicted}, realised_rate_treatment=rates, realised_rate_holdout=rates,
        realised_uplift={outcome: realised},
        realised_uplift_ci={outcome: Interval(low=realised - 0.002, high=realised + 0.002)},
        anytime_ci={outcome: anytime},
        adjusted_uplift={outcome: realised} if adjusted else {},
        adjusted_ci={outcome: anytime} if adjusted else {},
        variance_reduction={outcome: 0.25} if adjusted else {},
        predicted_uplift_ci={outcome: Interval(low=predicted - 0.003, high=predicted + 0.003)},
        goal=PromotionGoal(outcome=outcome, target_uplift=goal), status=status,
        decision=Decision(outcome=outcome, uplift=realised, interval=anytime, adjusted=adjusted, alpha=0.05,
                          mixing_scale=goal),
        at_risk=at_risk, model_version=1, emitted_at=at,
    )


def alert(alert_id: str = "a1", *, minute: int = 0, message: str = "promotion p2 is below its goal",
          promotion: str | None = "p2", state: Literal["firing", "resolved"] = "firing") -> Alert:
    return Alert(alert_id=alert_id, kind=AlertKind.underperforming, severity="critical", campaign_id="c1",
                 promotion_id=promotion, message=message, value=0.0, threshold=0.005,
                 raised_at=T0 + timedelta(minutes=minute), state=state)


def drift(scope: str = "overall", *, minute: int = 0, psi: float = 0.4) -> DriftReport:
    features = [FeatureDrift(name="24h_spend", psi=psi, ks=0.3, drifted=psi > 0.25),
                FeatureDrift(name="hour_sin", psi=0.01, ks=0.01, drifted=False)]
    return DriftReport(scope=scope, window_events=5000, features=features, max_psi=psi, drifted=psi > 0.25,
                       model_version=1, emitted_at=T0 + timedelta(minutes=minute))
