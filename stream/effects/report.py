"""A promotion's `CampaignEffect`: realised rates per arm, realised uplift with its intervals, and a decision.

Realised rate per arm and outcome, over the arm's exposures: visit and conversion are the shares of
exposures with a visit / a purchase in the attribution window, revenue is the mean revenue per exposure.
Realised uplift = treatment − holdout (an absolute difference per exposure, like the goal's target).

Intervals per outcome:
- `anytime_ci`: the anytime-valid interval of the realised uplift (stream/effects/sequential.py), which holds
  at every snapshot at once — the effect is recomputed every second and read continuously;
- `adjusted_uplift` / `adjusted_ci`: the same with the model's predictions as a covariate (Lin's adjustment),
  once both arms have `min_exposures_per_arm` scored exposures;
- `realised_uplift_ci`: the fixed-horizon 95% interval (Newcombe's hybrid score interval for proportions,
  Welch for revenue), valid at one planned look only: shown for reference, never decided on.

Status, judged on the goal's outcome against `goal.target_uplift` with the decision interval (the adjusted
one when it exists, else the unadjusted one), at error rate `alpha` over the promotion's whole life:
1. `insufficient_data` while either arm has fewer than `min_exposures_per_arm` exposures (for a revenue
   goal also fewer than `min_purchases_per_arm` exposures with a purchase: a mean of a few heavy-tailed
   purchases, or of none, has no usable variance yet), or for good when
   the holdout fraction (0 or 1) or the goal (a proportion's uplift of ±1 or more) makes a decision
   impossible: `decision.reason` says why;
2. `meeting_goal` when the interval's lower bound is at or above the target;
3. `underperforming` when its upper bound is below the target;
4. `inconclusive` otherwise.
No status comes from a point estimate, and the model never decides one: its early warning is `at_risk`, set
while undecided when the anytime-valid upper bound of the mean predicted uplift is below the target.
`goal.target_incremental_revenue` is a campaign total reached over time, not a per-exposure rate, and does
not enter the status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from stream.effects.aggregate import ArmTotals, PromotionTotals
from stream.effects.sequential import (
    ALPHA,
    ArmCovariate,
    Estimate,
    adjusted,
    tau_for,
    unadjusted,
)
from stream.events.models import (
    Arm,
    CampaignEffect,
    CampaignStatus,
    Decision,
    Interval,
    Outcome,
    PromotionGoal,
)
from stream.scoring.signature import OUTCOMES

DEFAULT_MIN_EXPOSURES_PER_ARM = 50
DEFAULT_MIN_PURCHASES_PER_ARM = 30
BINARY = {Outcome.visit: True, Outcome.conversion: True, Outcome.revenue: False}


@dataclass(frozen=True, slots=True)
class Policy:
    alpha: float = ALPHA
    min_exposures_per_arm: int = DEFAULT_MIN_EXPOSURES_PER_ARM
    min_purchases_per_arm: int = DEFAULT_MIN_PURCHASES_PER_ARM


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class Fixed:
    """The fixed-horizon figures of one outcome: rates per arm, uplift and its 95% interval."""

    rate_treatment: float
    rate_holdout: float
    uplift: float
    low: float
    high: float


def wilson(k: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n; [0, 1] when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_diff(k1: float, n1: float, k0: float, n0: float, z: float) -> Fixed:
    """Difference of proportions k1/n1 − k0/n0 with Newcombe's hybrid score interval."""
    p1, p0 = (k1 / n1 if n1 else 0.0), (k0 / n0 if n0 else 0.0)
    l1, u1 = wilson(k1, n1, z)
    l0, u0 = wilson(k0, n0, z)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return Fixed(p1, p0, d, low, high)


def _sums(a: ArmTotals, outcome: Outcome) -> tuple[float, float, float]:
    """(n, Σy, Σy²) of one arm and outcome."""
    if outcome is Outcome.visit:
        return a.exposures, a.visits, a.visits
    if outcome is Outcome.conversion:
        return a.exposures, a.conversions, a.conversions
    return a.exposures, a.revenue, a.revenue_sq


def fixed_horizon(totals: PromotionTotals, z: float = 1.96) -> dict[Outcome, Fixed]:
    t, h = totals.treatment, totals.holdout
    out: dict[Outcome, Fixed] = {}
    for o in Outcome:
        (n1, s1, ss1), (n0, s0, ss0) = _sums(t, o), _sums(h, o)
        if BINARY[o]:
            out[o] = proportion_diff(s1, n1, s0, n0, z)
            continue
        est = unadjusted(n1, s1, ss1, n0, s0, ss0, binary=False)
        half = z * math.sqrt(est.variance) if est is not None else 0.0
        d = est.uplift if est is not None else 0.0
        out[o] = Fixed(s1 / n1 if n1 else 0.0, s0 / n0 if n0 else 0.0, d, d - half, d + half)
    return out


def unadjusted_estimates(totals: PromotionTotals) -> dict[Outcome, Estimate]:
    out = {}
    for o in Outcome:
        est = unadjusted(*_sums(totals.treatment, o), *_sums(totals.holdout, o), binary=BINARY[o])
        if est is not None:
            out[o] = est
    return out


def adjusted_estimates(totals: PromotionTotals, min_per_arm: int) -> dict[Outcome, tuple[Estimate, float]]:
    """Per outcome: the covariate-adjusted estimate and the variance it removes (1 − adjusted/unadjusted,
    on the same scored exposures), once both arms have `min_per_arm` scored exposures."""
    ct, ch = totals.covariate(Arm.treatment), totals.covariate(Arm.holdout)
    if min(ct[0], ch[0]) < max(min_per_arm, 2):
        return {}
    out = {}
    for i, name in enumerate(OUTCOMES):
        o, t, h = Outcome(name), ArmCovariate.of(ct, i), ArmCovariate.of(ch, i)
        est = adjusted(t, h, binary=BINARY[o])
        base = unadjusted(t.n, t.sy, t.syy, h.n, h.sy, h.syy, binary=BINARY[o])
        if est is None or base is None:
            continue
        removed = 1.0 - est.variance / base.variance if base.variance > 0 else 0.0
        out[o] = (est, removed)
    return out


def predicted_estimates(totals: PromotionTotals) -> dict[Outcome, Estimate]:
    """Mean predicted uplift per outcome with the variance of that mean over the scored exposures."""
    n = totals.predictions
    if n < 2:
        return {}
    out = {}
    sums = zip(OUTCOMES, totals.predicted_uplift_sum, totals.predicted_uplift_sq_sum, strict=True)
    for name, s, ss in sums:
        var = max(0.0, (ss - s * s / n) / (n - 1))
        out[Outcome(name)] = Estimate(s / n, var / n)
    return out


def impossible(goal: PromotionGoal, holdout_fraction: float | None) -> str | None:
    """Why no decision can be reached with this goal and holdout fraction; None when one can."""
    if holdout_fraction is not None and holdout_fraction <= 0.0:
        return "holdout_fraction is 0: no exposure is held out, so there is no control group to compare with"
    if holdout_fraction is not None and holdout_fraction >= 1.0:
        return "holdout_fraction is 1: every exposure is held out, so no treated exposure can show an effect"
    if BINARY[goal.outcome] and abs(goal.target_uplift) >= 1.0:
        return (f"a {goal.outcome.value} uplift goal of {goal.target_uplift:+g} is out of reach: a difference"
                " of two proportions lies strictly between -1 and +1")
    return None


def _interval(est: Estimate, tau: float, alpha: float) -> Interval:
    low, high = est.interval(tau, alpha)
    return Interval(low=low, high=high)


def decide(
    totals: PromotionTotals,
    goal: PromotionGoal,
    policy: Policy = DEFAULT_POLICY,
    holdout_fraction: float | None = None,
) -> tuple[CampaignStatus, Decision, bool]:
    """(status, decision, at_risk) of one promotion's totals (see the module doc)."""
    o = goal.outcome
    tau = tau_for(o.value, o.value, goal.target_uplift)
    reason = impossible(goal, holdout_fraction)
    adj = adjusted_estimates(totals, policy.min_exposures_per_arm).get(o)
    est = adj[0] if adj is not None else unadjusted_estimates(totals).get(o)
    interval = None if est is None else _interval(est, tau, policy.alpha)
    decision = Decision(
        outcome=o,
        uplift=None if est is None else est.uplift,
        interval=interval,
        adjusted=adj is not None,
        alpha=policy.alpha,
        mixing_scale=tau,
        reason=reason,
    )
    t, h = totals.treatment, totals.holdout
    enough = min(t.exposures, h.exposures) >= policy.min_exposures_per_arm
    if not BINARY[o]:
        enough = enough and min(t.conversions, h.conversions) >= policy.min_purchases_per_arm
    target = goal.target_uplift
    if reason is not None or not enough or interval is None:
        status = CampaignStatus.insufficient_data
    elif interval.low >= target:
        status = CampaignStatus.meeting_goal
    elif interval.high < target:
        status = CampaignStatus.underperforming
    else:
        status = CampaignStatus.inconclusive
    predicted = predicted_estimates(totals).get(o)
    at_risk = (
        status in (CampaignStatus.insufficient_data, CampaignStatus.inconclusive)
        and reason is None
        and predicted is not None
        and totals.predictions >= policy.min_exposures_per_arm
        and predicted.interval(tau, policy.alpha)[1] < target
    )
    return status, decision, at_risk


def mean_predicted_uplift(totals: PromotionTotals) -> dict[Outcome, float]:
    n = totals.predictions
    sums = zip(OUTCOMES, totals.predicted_uplift_sum, strict=True)
    return {Outcome(o): (s / n if n else 0.0) for o, s in sums}


def _at(ts: float | None, default: datetime) -> datetime:
    return default if ts is None else datetime.fromtimestamp(ts, UTC)


def campaign_effect(
    totals: PromotionTotals,
    goal: PromotionGoal,
    campaign_id: str,
    promotion_id: str,
    model_version: int,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
    holdout_fraction: float | None = None,
) -> CampaignEffect:
    """The CampaignEffect record of a promotion's (merged) totals, emitted at `now`."""
    fixed = fixed_horizon(totals)
    plain = unadjusted_estimates(totals)
    adj = adjusted_estimates(totals, policy.min_exposures_per_arm)
    predicted = predicted_estimates(totals)
    status, decision, at_risk = decide(totals, goal, policy, holdout_fraction)

    def tau(o: Outcome) -> float:
        return tau_for(o.value, goal.outcome.value, goal.target_uplift)

    return CampaignEffect(
        campaign_id=campaign_id,
        promotion_id=promotion_id,
        window_start=_at(totals.first_ts, now),
        window_end=_at(totals.last_ts, now),
        exposures_treatment=totals.treatment.exposures,
        exposures_holdout=totals.holdout.exposures,
        predicted_uplift=mean_predicted_uplift(totals),
        realised_rate_treatment={o: f.rate_treatment for o, f in fixed.items()},
        realised_rate_holdout={o: f.rate_holdout for o, f in fixed.items()},
        realised_uplift={o: f.uplift for o, f in fixed.items()},
        realised_uplift_ci={o: Interval(low=f.low, high=f.high) for o, f in fixed.items()},
        anytime_ci={o: _interval(e, tau(o), policy.alpha) for o, e in plain.items()},
        adjusted_uplift={o: e.uplift for o, (e, _) in adj.items()},
        adjusted_ci={o: _interval(e, tau(o), policy.alpha) for o, (e, _) in adj.items()},
        variance_reduction={o: removed for o, (_, removed) in adj.items()},
        predicted_uplift_ci={o: _interval(e, tau(o), policy.alpha) for o, e in predicted.items()},
        goal=goal,
        status=status,
        decision=decision,
        at_risk=at_risk,
        model_version=model_version,
        emitted_at=now,
    )
