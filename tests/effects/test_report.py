from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from stream.effects.aggregate import ArmTotals, PromotionTotals
from stream.effects.report import campaign_effect, estimates, mean_diff, proportion_diff, wilson
from stream.events.models import CampaignEffect, CampaignStatus, Outcome, PromotionGoal

pytestmark = pytest.mark.unit

Z = 1.959964
NOW = datetime(2026, 1, 10, tzinfo=UTC)


def _arm(rng: np.random.Generator, n: int, p_visit: float, p_buy: float, mean_spend: float) -> ArmTotals:
    """An arm of n exposures with Bernoulli visits/conversions and lognormal spend per conversion."""
    converted = rng.random(n) < p_buy
    visited = converted | (rng.random(n) < p_visit)
    revenue = np.where(converted, rng.lognormal(np.log(mean_spend) - 0.5, 1.0, n), 0.0)
    return ArmTotals(
        n, int(visited.sum()), int(converted.sum()), float(revenue.sum()), float((revenue**2).sum())
    )


def _truth(p_visit: float, p_buy: float, mean_spend: float) -> tuple[float, float, float]:
    return p_buy + (1 - p_buy) * p_visit, p_buy, p_buy * mean_spend


def test_wilson_and_newcombe_match_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, method 10 and Wilson's score interval.
    assert wilson(81, 263, Z) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    e = proportion_diff(56, 70, 48, 80, Z)
    assert (e.uplift, e.low, e.high) == pytest.approx((0.2, 0.0524, 0.3339), abs=1e-4)
    e = proportion_diff(9, 10, 3, 10, Z)
    assert (e.low, e.high) == pytest.approx((0.1705, 0.8090), abs=1e-4)
    assert wilson(0, 0, Z) == (0.0, 1.0)


def test_welch_interval_from_sums_matches_the_raw_data() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.exponential(5.0, 40), rng.exponential(3.0, 25)
    t = ArmTotals(40, 0, 0, float(a.sum()), float((a**2).sum()))
    h = ArmTotals(25, 0, 0, float(b.sum()), float((b**2).sum()))
    e = mean_diff(t, h, Z)
    half = Z * np.sqrt(a.var(ddof=1) / 40 + b.var(ddof=1) / 25)
    assert (e.uplift, e.low, e.high) == pytest.approx((a.mean() - b.mean(), e.uplift - half, e.uplift + half))


def test_intervals_stay_finite_with_empty_or_single_arms() -> None:
    for t, h in [(ArmTotals(), ArmTotals()), (ArmTotals(1, 1, 1, 4.0, 16.0), ArmTotals(5, 1, 1, 2.0, 4.0))]:
        for e in estimates(PromotionTotals(t, h)).values():
            assert np.isfinite([e.uplift, e.low, e.high]).all() and e.low <= e.uplift <= e.high


def test_95_percent_intervals_cover_the_true_difference_in_simulated_experiments() -> None:
    truth_t, truth_h = (0.2, 0.06, 40.0), (0.15, 0.04, 40.0)
    true_diff = np.subtract(_truth(*truth_t), _truth(*truth_h))
    covered = np.zeros(3)
    for seed in range(200):
        rng = np.random.default_rng(seed)
        totals = PromotionTotals(_arm(rng, 900, *truth_t), _arm(rng, 300, *truth_h))
        est = estimates(totals, Z)
        covered += [est[o].low <= d <= est[o].high for o, d in zip(Outcome, true_diff, strict=True)]
    assert (covered / 200 >= 0.9).all(), covered


GOAL = PromotionGoal(outcome=Outcome.conversion, target_uplift=0.02)


def _totals(
    n_t: int, k_t: int, n_h: int, k_h: int, predicted: float = 0.05, preds: int = 1000
) -> PromotionTotals:
    return PromotionTotals(
        ArmTotals(n_t, k_t, k_t, float(k_t), float(k_t)),
        ArmTotals(n_h, k_h, k_h, float(k_h), float(k_h)),
        predictions=preds,
        predicted_uplift_sum=(0.0, predicted * preds, 0.0),
        first_ts=NOW.timestamp() - 3600,
        last_ts=NOW.timestamp() - 60,
    )


@pytest.mark.parametrize(
    ("totals", "expected"),
    [
        (_totals(1000, 100, 49, 2), CampaignStatus.insufficient_data),  # holdout below the minimum
        (_totals(49, 10, 1000, 20), CampaignStatus.insufficient_data),
        (_totals(4000, 200, 4000, 200), CampaignStatus.underperforming),  # CI upper bound < target
        (_totals(800, 52, 800, 40, predicted=0.01), CampaignStatus.underperforming),  # model + point < target
        (_totals(800, 52, 800, 40, predicted=0.01, preds=10), CampaignStatus.on_track),  # too few predictions
        (_totals(800, 52, 800, 40, predicted=0.05), CampaignStatus.on_track),  # the model still expects it
        (_totals(800, 80, 800, 40, predicted=0.01), CampaignStatus.on_track),  # point estimate above target
    ],
)
def test_status_rules(totals: PromotionTotals, expected: CampaignStatus) -> None:
    effect = campaign_effect(totals, GOAL, "c1", "p1", 3, NOW, min_exposures_per_arm=50)
    assert effect.status == expected


def test_campaign_effect_record() -> None:
    totals = _totals(1000, 120, 500, 40)
    effect = campaign_effect(totals, GOAL, "c1", "p1", 3, NOW)
    assert CampaignEffect.model_validate_json(effect.model_dump_json()) == effect
    assert (effect.exposures_treatment, effect.exposures_holdout, effect.model_version) == (1000, 500, 3)
    assert effect.realised_rate_treatment[Outcome.conversion] == pytest.approx(0.12)
    assert effect.realised_rate_holdout[Outcome.conversion] == pytest.approx(0.08)
    assert effect.realised_uplift[Outcome.conversion] == pytest.approx(0.04)
    ci = effect.realised_uplift_ci[Outcome.conversion]
    assert ci.low < 0.04 < ci.high
    assert effect.predicted_uplift == {Outcome.visit: 0.0, Outcome.conversion: 0.05, Outcome.revenue: 0.0}
    assert effect.window_start < effect.window_end < effect.emitted_at == NOW
    empty = campaign_effect(PromotionTotals(), GOAL, "c1", "p1", 0, NOW)
    assert empty.status == CampaignStatus.insufficient_data and empty.window_start == NOW
