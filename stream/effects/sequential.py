"""Anytime-valid intervals of a realised uplift, unadjusted and adjusted by the model's predictions.

A `CampaignEffect` is recomputed at every snapshot and read continuously, so its decision interval must hold
at every look at once, not at one planned sample size. `half_width` is the two-sided normal-mixture boundary
(Robbins' mixture; Howard et al. 2021, eq. 14; the mixture SPRT of Johari et al., "Always valid inference",
turned into a confidence sequence; Waudby-Smith et al., "Time-uniform central limit theory", give its
asymptotic validity with an estimated variance): for an estimator with variance V after n exposures,

    half_width = sqrt( V (1 + V/τ²) (log(1 + τ²/V) + 2 log(1/α)) )

covers the true uplift at every n simultaneously with probability ≥ 1 − α. τ is the mixing scale: the effect
size (in the outcome's own unit) at which the sequence is tightest. It is fixed before any data — set from the
promotion's goal (τ = |target uplift|, the effect the campaign owner has to tell apart from zero), or, for a
goal of 0 and for the outcomes the goal does not name, from `DEFAULT_TAU`.

Estimators, from per-arm sums that live in the partials (`stream.effects.aggregate`):
- `unadjusted`: the difference of means (proportions for visit and conversion), variance s₁²/n₁ + s₀²/n₀; a
  proportion's variance is taken at (k + 1)/(n + 2) so that an arm with no successes yet is not certain.
- `adjusted`: Lin's (2013) interacted regression adjustment with one covariate X, the model's prediction of
  the outcome for the exposure (fixed when it was scored, before its outcome): per arm a, μ̂ₐ = ȳₐ − βₐ(x̄ₐ − x̄)
  with βₐ the arm's own least-squares slope and x̄ the mean over both arms; its variance (the influence
  function of the equivalent AIPW estimator) is Var(ε₁)/n₁ + Var(ε₀)/n₀ + (β₁ − β₀)² Var(X)/n. Randomisation
  keeps it consistent and the interval valid however good or bad the model is; asymptotically it is never less
  efficient than the unadjusted difference, and a model that predicts the outcome removes the share R² of the
  outcome's variance within each arm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.05
DEFAULT_TAU = {"visit": 0.01, "conversion": 0.005, "revenue": 0.25}
"""Mixing scale per outcome where the goal gives none: a small but material absolute uplift."""
MOMENTS = 5
"""Per outcome in a covariate block: Σx, Σx², Σy, Σy², Σxy (after one leading count of units)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    uplift: float
    variance: float

    def interval(self, tau: float, alpha: float = ALPHA) -> tuple[float, float]:
        h = half_width(self.variance, tau, alpha)
        return self.uplift - h, self.uplift + h


def half_width(variance: float, tau: float, alpha: float = ALPHA) -> float:
    """Half-width of the anytime-valid interval of an estimate with this variance (see the module doc)."""
    if not (0.0 < alpha < 1.0) or tau <= 0.0:
        raise ValueError(f"need 0 < alpha < 1 and tau > 0, got alpha={alpha}, tau={tau}")
    if variance <= 0.0:
        return 0.0
    r = tau * tau / variance
    return math.sqrt(variance * (1.0 + 1.0 / r) * (math.log1p(r) + 2.0 * math.log(1.0 / alpha)))


def tau_for(outcome: str, goal_outcome: str, target_uplift: float) -> float:
    if outcome == goal_outcome and target_uplift != 0.0:
        return abs(target_uplift)
    return DEFAULT_TAU[outcome]


def sample_variance(total: float, total_sq: float, n: float) -> float:
    # Σx² − (Σx)²/n can dip below 0 by rounding when all values are equal.
    return max(0.0, (total_sq - total * total / n) / (n - 1)) if n >= 2 else 0.0


def arm_variance(total: float, total_sq: float, n: float, binary: bool) -> float:
    if binary:
        p = (total + 1.0) / (n + 2.0)
        return p * (1.0 - p)
    return sample_variance(total, total_sq, n)


def unadjusted(
    n1: float, s1: float, ss1: float, n0: float, s0: float, ss0: float, *, binary: bool
) -> Estimate | None:
    """Difference of means of arm 1 and arm 0 from their counts, Σy and Σy²; None while an arm is empty."""
    if n1 < 1 or n0 < 1:
        return None
    v1, v0 = arm_variance(s1, ss1, n1, binary), arm_variance(s0, ss0, n0, binary)
    if not binary and min(n1, n0) < 2:
        v1 = v0 = sample_variance(s1 + s0, ss1 + ss0, n1 + n0)
    return Estimate(s1 / n1 - s0 / n0, v1 / n1 + v0 / n0)


@dataclass(frozen=True, slots=True)
class ArmCovariate:
    """One arm's sums over its scored exposures for one outcome: n, Σx, Σx², Σy, Σy², Σxy."""

    n: float
    sx: float
    sxx: float
    sy: float
    syy: float
    sxy: float

    @classmethod
    def of(cls, block: Sequence[float], outcome_index: int) -> ArmCovariate:
        """From a covariate block: [n, then MOMENTS values per outcome]."""
        at = 1 + MOMENTS * outcome_index
        sx, sxx, sy, syy, sxy = block[at : at + MOMENTS]
        return cls(block[0], sx, sxx, sy, syy, sxy)

    def slope_and_residual(self, binary: bool) -> tuple[float, float, float]:
        """(β, Var(x), Var(y − βx)) within the arm."""
        n = self.n
        var_x = sample_variance(self.sx, self.sxx, n)
        var_y = arm_variance(self.sy, self.syy, n, binary)
        cov = (self.sxy - self.sx * self.sy / n) / (n - 1) if n >= 2 else 0.0
        if var_x <= 1e-12 * max(1.0, self.sxx / max(n, 1.0)):
            return 0.0, var_x, var_y
        beta = cov / var_x
        return beta, var_x, max(var_y - cov * beta, 0.0)


def adjusted(t: ArmCovariate, h: ArmCovariate, *, binary: bool) -> Estimate | None:
    """Lin's interacted regression-adjusted difference (see the module doc); None with < 2 units in an arm."""
    if t.n < 2 or h.n < 2:
        return None
    n = t.n + h.n
    x_bar = (t.sx + h.sx) / n
    b1, _, e1 = t.slope_and_residual(binary)
    b0, _, e0 = h.slope_and_residual(binary)
    var_x = sample_variance(t.sx + h.sx, t.sxx + h.sxx, n)
    mu1 = t.sy / t.n - b1 * (t.sx / t.n - x_bar)
    mu0 = h.sy / h.n - b0 * (h.sx / h.n - x_bar)
    variance = e1 / t.n + e0 / h.n + (b1 - b0) ** 2 * var_x / n
    return Estimate(mu1 - mu0, variance)
