"""One valid instance of every wire model, keyed by topic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from stream.events.models import (
    Alert,
    AlertKind,
    Arm,
    CampaignEffect,
    CampaignStatus,
    ClickEvent,
    ClickKind,
    DeadLetter,
    Decision,
    DiscountType,
    DriftReport,
    EffectPrediction,
    ExposureEvent,
    FeatureDrift,
    Interval,
    Outcome,
    OutcomeScores,
    PromotionAction,
    PromotionEvent,
    PromotionGoal,
    PromotionRanking,
    RankedPromotion,
    UserProfileEvent,
)

T0 = datetime(2024, 6, 1, 12, 30, 15, 250_000, tzinfo=UTC)
_SCORES = OutcomeScores(p_treated=0.12, p_control=0.1, uplift=0.02)
_PER_OUTCOME = {Outcome.visit: 0.03, Outcome.conversion: 0.01, Outcome.revenue: 1.5}


def sample_events() -> dict[str, BaseModel]:
    goal = PromotionGoal(outcome=Outcome.revenue, target_uplift=0.02, target_incremental_revenue=5000.0)
    return {
        "clicks": ClickEvent(
            event_id="c-1",
            user_id="u1",
            session_id="s1",
            ts=T0,
            kind=ClickKind.purchase,
            item_id="i-9",
            category="shoes",
            price=59.9,
            quantity=2,
            promotion_id="p1",
        ),
        "promotions": PromotionEvent(
            promotion_id="p1",
            campaign_id="camp1",
            action=PromotionAction.update,
            ts=T0,
            version=3,
            title="20% off sandals",
            description="Summer sale: twenty percent off all sandals.",
            discount_type=DiscountType.percent,
            discount_value=20.0,
            categories=["shoes"],
            start=T0,
            end=T0 + timedelta(days=14),
            goal=goal,
            holdout_fraction=0.2,
        ),
        "exposures": ExposureEvent(
            event_id="x-1", user_id="u1", promotion_id="p1", campaign_id="camp1", ts=T0, arm=Arm.holdout
        ),
        "profiles": UserProfileEvent(
            user_id="u1",
            ts=T0,
            tenure_days=400,
            lifetime_spend=812.5,
            orders=9,
            recency_days=12,
            segment="loyal",
            interests=["shoes", "garden"],
            is_new=False,
        ),
        "predictions": EffectPrediction(
            event_id="x-1",
            user_id="u1",
            promotion_id="p1",
            campaign_id="camp1",
            arm=Arm.treatment,
            model_version=4,
            visit=_SCORES,
            conversion=_SCORES,
            revenue=_SCORES,
            expected_incremental_revenue=1.25,
            event_ts=T0,
            scored_at=T0 + timedelta(seconds=1),
            latency_ms=12.5,
        ),
        "campaign-effects": CampaignEffect(
            campaign_id="camp1",
            promotion_id="p1",
            window_start=T0,
            window_end=T0 + timedelta(hours=1),
            exposures_treatment=900,
            exposures_holdout=100,
            predicted_uplift=_PER_OUTCOME,
            realised_rate_treatment=_PER_OUTCOME,
            realised_rate_holdout=_PER_OUTCOME,
            realised_uplift=_PER_OUTCOME,
            realised_uplift_ci={outcome: Interval(low=-0.01, high=0.05) for outcome in Outcome},
            anytime_ci={outcome: Interval(low=-0.03, high=0.07) for outcome in Outcome},
            adjusted_uplift=_PER_OUTCOME,
            adjusted_ci={outcome: Interval(low=-0.02, high=0.06) for outcome in Outcome},
            variance_reduction={outcome: 0.2 for outcome in Outcome},
            predicted_uplift_ci={outcome: Interval(low=0.0, high=0.04) for outcome in Outcome},
            goal=goal,
            status=CampaignStatus.inconclusive,
            decision=Decision(
                outcome=goal.outcome,
                uplift=0.02,
                interval=Interval(low=-0.02, high=0.06),
                adjusted=True,
                alpha=0.05,
                mixing_scale=0.02,
            ),
            model_version=4,
            emitted_at=T0,
        ),
        "promotion-rankings": PromotionRanking(
            user_id="u1",
            session_id="s1",
            model_version=4,
            scored_at=T0,
            ranked=[
                RankedPromotion(
                    promotion_id="p1",
                    campaign_id="camp1",
                    expected_incremental_revenue=2.0,
                    uplift_conversion=0.01,
                )
            ],
        ),
        "drift": DriftReport(
            scope="global",
            arm=Arm.treatment,
            window_events=5000,
            max_psi=0.31,
            drifted=True,
            model_version=4,
            emitted_at=T0,
            features=[FeatureDrift(name="spend_24h", psi=0.31, ks=0.2, drifted=True)],
        ),
        "alerts": Alert(
            alert_id="a-1",
            kind=AlertKind.underperforming,
            severity="warning",
            campaign_id="camp1",
            promotion_id="p1",
            message="realised uplift below goal",
            value=0.001,
            threshold=0.02,
            raised_at=T0,
        ),
        "dead-letter": DeadLetter(
            reason="malformed_json",
            error="malformed_json: EOF",
            source_topic="clicks",
            partition=3,
            offset=1234,
            key_b64="dTE=",
            payload_b64="eyJh",
            received_at=T0,
        ),
    }
