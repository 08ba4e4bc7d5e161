from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from stream.effects.aggregate import NO_COV, ArmTotals, PromotionTotals
from stream.effects.report import Policy, campaign_effect, decide, fixed_horizon, proportion_diff, wilson
from stream.effects.sequential import half_width
from stream.events.models import CampaignEffect, CampaignStatus, Outcome, PromotionGoal

pytestmark = pytest.mark.unit

Z = 1.959964
NOW = datetime(2026, 1, 10, tzinfo=UTC)
GOAL = PromotionGoal(outcome=Outcome.conversion, target_uplift=0.02)


def test_wilson_and_newcombe_match_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, method 10 and Wilson's score interval.
    assert wilson(81, 263, Z) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    e = proportion_diff(56, 70, 48, 80, Z)
    assert (e.uplift, e.low, e.high) == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)
    e = proportion_diff(9, 10, 3, 10, Z)
    assert (e.low, e.high) == pytest.approx((0.1705, 0.8090), abs=1e-4)
    assert wilson(0, 0, Z) == (0.0, 1.0)


def test_fixed_horizon_welch_interval_from_sums_matches_the_raw_data() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.exponential(5.0, 40), rng.exponential(3.0, 25)
    t = ArmTotals(40, 0, 0, float(a.sum()), float((a**2).sum()))
    h = ArmTotals(25, 0, 0, float(b.sum()), float((b**2).sum()))
    e = fixed_horizon(PromotionTotals(t, h), Z)[Outcome.revenue]
    half = Z * np.sqrt(a.var(ddof=1) / 40 + b.var(ddof=1) / 25)
    assert (e.uplift, e.low, e.high) == pytest.approx((a.mean() - b.mean(), e.uplift - half, e.uplift + half))


def _totals(
    n_t: int, k_t: int, n_h: int, k_h: int, predicted: float = 0.05, preds: int = 1000, spread: float = 0.01
) -> PromotionTotals:
    mean_sq = predicted * predicted + spread * spread
    return PromotionTotals(
        ArmTotals(n_t, k_t, k_t, float(k_t), float(k_t)),
        ArmTotals(n_h, k_h, k_h, float(k_h), float(k_h)),
        predictions=preds,
        predicted_uplift_sum=(0.0, predicted * preds, 0.0),
        predicted_uplift_sq_sum=(0.0, mean_sq * preds, 0.0),
        first_ts=NOW.timestamp() - 3600,
        last_ts=NOW.timestamp() - 60,
    )


@pytest.mark.parametrize(
    ("totals", "expected"),
    [
        (_totals(1000, 100, 49, 2), CampaignStatus.insufficient_data),  # holdout below the minimum
        (_totals(49, 10, 1000, 20), CampaignStatus.insufficient_data),
        (_totals(20000, 1000, 20000, 1000), CampaignStatus.underperforming),  # upper bound < target
        (_totals(20000, 2000, 20000, 1000), CampaignStatus.meeting_goal),  # lower bound >= target
        (_totals(800, 52, 800, 40), CampaignStatus.inconclusive),  # interval holds the target
        # A point estimate below the goal and a model that agrees decide nothing: only the interval does.
        (_totals(800, 44, 800, 40, predicted=0.001), CampaignStatus.inconclusive),
    ],
)
def test_statuses_come_from_the_anytime_valid_interval(
    totals: PromotionTotals, expected: CampaignStatus
) -> None:
    status, decision, _ = decide(totals, GOAL, Policy(min_exposures_per_arm=50))
    assert status == expected
    assert decision.interval is not None and not decision.adjusted and decision.mixing_scale == 0.02
    fixed = fixed_horizon(totals)[Outcome.conversion]
    # The anytime-valid interval is wider than the fixed-horizon one it replaces.
    assert decision.interval.low < fixed.low and decision.interval.high > fixed.high


def test_the_model_warns_but_never_decides() -> None:
    undecided = _totals(800, 44, 800, 40, predicted=0.001, spread=0.001)
    status, _, at_risk = decide(undecided, GOAL)
    assert (status, at_risk) == (CampaignStatus.inconclusive, True)
    hopeful = _totals(800, 44, 800, 40, predicted=0.05)
    assert decide(hopeful, GOAL)[2] is False
    # Too few predictions: no warning.
    assert decide(_totals(800, 44, 800, 40, predicted=0.001, preds=10), GOAL)[2] is False
    # Once decided, the data speak: no warning on top of a decision.
    assert decide(_totals(20000, 1000, 20000, 1000, predicted=0.001), GOAL)[2] is False


def test_a_goal_out_of_reach_says_why() -> None:
    goal = PromotionGoal(outcome=Outcome.visit, target_uplift=1.0)
    totals = _totals(20000, 1000, 20000, 1000)
    effect = campaign_effect(totals, goal, "c1", "p1", 3, NOW, holdout_fraction=0.1)
    assert effect.status == CampaignStatus.insufficient_data
    assert effect.decision.reason is not None and "out of reach" in effect.decision.reason


@pytest.mark.parametrize(
    ("holdout", "word"), [(0.0, "holdout_fraction is 0"), (1.0, "holdout_fraction is 1")]
)
def test_a_holdout_that_makes_a_decision_impossible_says_why(holdout: float, word: str) -> None:
    effect = campaign_effect(
        _totals(20000, 1000, 20000, 1000), GOAL, "c1", "p1", 3, NOW, holdout_fraction=holdout
    )
    assert effect.status == CampaignStatus.insufficient_data
    assert effect.decision.reason is not None and word in effect.decision.reason


def test_the_adjusted_interval_decides_once_both_arms_have_scored_exposures() -> None:
    rng = np.random.default_rng(0)
    blocks = []
    for n, lift in ((3000, 0.03), (3000, 0.0)):
        x = rng.uniform(0.0, 0.3, n)
        y = (rng.random(n) < x + lift).astype(float)
        cov = [float(n)] + [0.0] * 15
        cov[6:11] = [x.sum(), (x * x).sum(), y.sum(), y.sum(), (x * y).sum()]  # conversion moments
        blocks.append((tuple(cov), int(y.sum()), n))
    (ct, kt, nt), (ch, kh, nh) = blocks
    totals = PromotionTotals(
        ArmTotals(nt, kt, kt, kt, kt), ArmTotals(nh, kh, kh, kh, kh), scored_treatment=ct, scored_holdout=ch
    )
    effect = campaign_effect(totals, GOAL, "c1", "p1", 3, NOW)
    d = effect.decision
    assert d.adjusted and d.interval is not None
    plain = effect.anytime_ci[Outcome.conversion]
    assert d.interval.high - d.interval.low < plain.high - plain.low
    assert 0.0 < effect.variance_reduction[Outcome.conversion] < 1.0
    assert effect.adjusted_ci[Outcome.conversion] == d.interval
    # Without covariate blocks the unadjusted interval decides.
    plain_totals = PromotionTotals(totals.treatment, totals.holdout, scored_treatment=NO_COV)
    assert not campaign_effect(plain_totals, GOAL, "c1", "p1", 3, NOW).decision.adjusted


def test_campaign_effect_record() -> None:
    totals = _totals(1000, 120, 500, 40)
    effect = campaign_effect(totals, GOAL, "c1", "p1", 3, NOW)
    assert CampaignEffect.model_validate_json(effect.model_dump_json()) == effect
    assert effect.schema_version == 2
    assert (effect.exposures_treatment, effect.exposures_holdout, effect.model_version) == (1000, 500, 3)
    assert effect.realised_rate_treatment[Outcome.conversion] == pytest.approx(0.12)
    assert effect.realised_rate_holdout[Outcome.conversion] == pytest.approx(0.08)
    assert effect.realised_uplift[Outcome.conversion] == pytest.approx(0.04)
    ci, cs = effect.realised_uplift_ci[Outcome.conversion], effect.anytime_ci[Outcome.conversion]
    assert cs.low < ci.low < 0.04 < ci.high < cs.high
    assert effect.predicted_uplift == {Outcome.visit: 0.0, Outcome.conversion: 0.05, Outcome.revenue: 0.0}
    assert effect.window_start < effect.window_end < effect.emitted_at == NOW
    empty = campaign_effect(PromotionTotals(), GOAL, "c1", "p1", 0, NOW)
    assert empty.status == CampaignStatus.insufficient_data and empty.window_start == NOW
    assert empty.decision.interval is None and empty.anytime_ci == {}


def test_half_width_shrinks_with_the_variance_and_grows_with_confidence() -> None:
    widths = [half_width(v, 0.02) for v in (1e-3, 1e-4, 1e-5, 1e-6)]
    assert widths == sorted(widths, reverse=True)
    assert half_width(1e-4, 0.02, alpha=0.01) > half_width(1e-4, 0.02, alpha=0.05)
    assert half_width(0.0, 0.02) == 0.0
    with pytest.raises(ValueError, match="tau"):
        half_width(1e-4, 0.0)


def test_a_revenue_goal_waits_for_purchases_in_both_arms() -> None:
    goal = PromotionGoal(outcome=Outcome.revenue, target_uplift=1.0)
    # No purchase anywhere: revenue's variance is 0, and an interval of width 0 must decide nothing.
    none = PromotionTotals(ArmTotals(5000, 100, 0, 0.0, 0.0), ArmTotals(5000, 90, 0, 0.0, 0.0))
    assert decide(none, goal)[0] == CampaignStatus.insufficient_data
    few = PromotionTotals(ArmTotals(5000, 100, 29, 290.0, 2900.0), ArmTotals(5000, 90, 40, 400.0, 4000.0))
    assert decide(few, goal)[0] == CampaignStatus.insufficient_data
    enough = PromotionTotals(ArmTotals(5000, 100, 30, 300.0, 3000.0), ArmTotals(5000, 90, 40, 400.0, 4000.0))
    assert decide(enough, goal)[0] != CampaignStatus.insufficient_data
