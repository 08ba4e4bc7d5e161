"""A promotion's `CampaignEffect`: realised rates per arm, realised uplift with its interval, and a status.

Realised rate per arm and outcome, over the arm's exposures: visit and conversion are the shares of
exposures with a visit / a purchase in the attribution window, revenue is the mean revenue per exposure.
Realised uplift = treatment − holdout (an absolute difference per exposure, like the goal's target).
Intervals at the normal quantile `z`: Newcombe's hybrid score interval (from a Wilson interval per arm)
for the visit and conversion differences, which stays inside [-1, 1] and behaves at rates near 0; a
Welch (unpooled-variance) interval from Σ revenue and Σ revenue² per arm for revenue. An arm with fewer
than two exposures has no variance of its own and borrows the variance of both arms together.
Predicted uplift is the mean model uplift over the promotion's scored exposures (both arms).

Status, judged on the goal's outcome against `goal.target_uplift`:
1. `insufficient_data` when either arm has fewer than `min_exposures_per_arm` exposures;
2. `underperforming` when the interval's upper bound is below the target (the data rule the target
   out), or when at least `min_exposures_per_arm` predictions exist and both the mean predicted uplift
   and the realised point estimate are below the target (model and data agree it falls short while the
   interval is still too wide to exclude the target);
3. `on_track` otherwise.
`goal.target_incremental_revenue` is a campaign total reached over time, not a per-exposure rate, and
does not enter the status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from stream.effects.aggregate import ArmTotals, PromotionTotals
from stream.events.models import CampaignEffect, CampaignStatus, Interval, Outcome, PromotionGoal
from stream.scoring.signature import OUTCOMES

DEFAULT_MIN_EXPOSURES_PER_ARM = 50


@dataclass(frozen=True, slots=True)
class Estimate:
    rate_treatment: float
    rate_holdout: float
    uplift: float
    low: float
    high: float


def wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n; [0, 1] when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_diff(k1: int, n1: int, k0: int, n0: int, z: float) -> Estimate:
    """Difference of proportions k1/n1 − k0/n0 with Newcombe's hybrid score interval."""
    p1, p0 = (k1 / n1 if n1 else 0.0), (k0 / n0 if n0 else 0.0)
    l1, u1 = wilson(k1, n1, z)
    l0, u0 = wilson(k0, n0, z)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return Estimate(p1, p0, d, low, high)


def _variance(total: float, total_sq: float, n: int) -> float:
    # Σx² − (Σx)²/n can dip below 0 by rounding when all values are equal.
    return max(0.0, (total_sq - total * total / n) / (n - 1)) if n >= 2 else 0.0


def mean_diff(t: ArmTotals, h: ArmTotals, z: float) -> Estimate:
    """Difference of mean revenue per exposure with a Welch interval."""
    m1 = t.revenue / t.exposures if t.exposures else 0.0
    m0 = h.revenue / h.exposures if h.exposures else 0.0
    both = t.plus(h)
    pooled = _variance(both.revenue, both.revenue_sq, both.exposures)
    se2 = 0.0
    for a in (t, h):
        var = _variance(a.revenue, a.revenue_sq, a.exposures) if a.exposures >= 2 else pooled
        se2 += var / max(a.exposures, 1)
    half = z * math.sqrt(se2)
    d = m1 - m0
    return Estimate(m1, m0, d, d - half, d + half)


def estimates(totals: PromotionTotals, z: float = 1.96) -> dict[Outcome, Estimate]:
    t, h = totals.treatment, totals.holdout
    return {
        Outcome.visit: proportion_diff(t.visits, t.exposures, h.visits, h.exposures, z),
        Outcome.conversion: proportion_diff(t.conversions, t.exposures, h.conversions, h.exposures, z),
        Outcome.revenue: mean_diff(t, h, z),
    }


def mean_predicted_uplift(totals: PromotionTotals) -> dict[Outcome, float]:
    n = totals.predictions
    sums = zip(OUTCOMES, totals.predicted_uplift_sum, strict=True)
    return {Outcome(o): (s / n if n else 0.0) for o, s in sums}


def status(
    totals: PromotionTotals,
    goal: PromotionGoal,
    est: dict[Outcome, Estimate],
    predicted: dict[Outcome, float],
    min_exposures_per_arm: int,
) -> CampaignStatus:
    if min(totals.treatment.exposures, totals.holdout.exposures) < min_exposures_per_arm:
        return CampaignStatus.insufficient_data
    target, e = goal.target_uplift, est[goal.outcome]
    model_agrees = totals.predictions >= min_exposures_per_arm and predicted[goal.outcome] < target
    if e.high < target or (model_agrees and e.uplift < target):
        return CampaignStatus.underperforming
    return CampaignStatus.on_track


def _at(ts: float | None, default: datetime) -> datetime:
    return default if ts is None else datetime.fromtimestamp(ts, UTC)


def campaign_effect(
    totals: PromotionTotals,
    goal: PromotionGoal,
    campaign_id: str,
    promotion_id: str,
    model_version: int,
    now: datetime,
    min_exposures_per_arm: int = DEFAULT_MIN_EXPOSURES_PER_ARM,
    z: float = 1.96,
) -> CampaignEffect:
    """The CampaignEffect record of a promotion's (merged) totals, emitted at `now`."""
    est = estimates(totals, z)
    predicted = mean_predicted_uplift(totals)
    return CampaignEffect(
        campaign_id=campaign_id,
        promotion_id=promotion_id,
        window_start=_at(totals.first_ts, now),
        window_end=_at(totals.last_ts, now),
        exposures_treatment=totals.treatment.exposures,
        exposures_holdout=totals.holdout.exposures,
        predicted_uplift=predicted,
        realised_rate_treatment={o: e.rate_treatment for o, e in est.items()},
        realised_rate_holdout={o: e.rate_holdout for o, e in est.items()},
        realised_uplift={o: e.uplift for o, e in est.items()},
        realised_uplift_ci={o: Interval(low=e.low, high=e.high) for o, e in est.items()},
        goal=goal,
        status=status(totals, goal, est, predicted, min_exposures_per_arm),
        model_version=model_version,
        emitted_at=now,
    )
