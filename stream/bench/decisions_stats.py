"""The decision statistics of `stream.effects.sequential` and `stream.effects.report`, over numpy arrays.

`liftstream bench decisions` evaluates every rule at every look of hundreds of simulated campaigns at once,
from cumulative per-arm sums. The scalar functions branch with `if`/`max`, so they are mirrored here
operation by operation (same formulas, same order, same guards); tests/bench/test_decisions.py checks that
each mirror equals its scalar original on random inputs. A missing estimate (the scalar `None`) is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream.effects.sequential import ALPHA

Array = np.ndarray

INSUFFICIENT, UNDECIDED, MEETING, UNDER = 0, 1, 2, 3
"""Status codes: insufficient_data; inconclusive (the old rule's on_track); meeting_goal; underperforming."""


@dataclass(frozen=True, slots=True)
class ArmSums:
    """`sequential.ArmCovariate` over arrays: one arm's n, Σx, Σx², Σy, Σy², Σxy at every look."""

    n: Array
    sx: Array
    sxx: Array
    sy: Array
    syy: Array
    sxy: Array


def _f(a: object) -> Array:
    return np.asarray(a, dtype=np.float64)


def half_width(variance: object, tau: float, alpha: float = ALPHA) -> Array:
    """`sequential.half_width` over an array of variances."""
    if not (0.0 < alpha < 1.0) or tau <= 0.0:
        raise ValueError(f"need 0 < alpha < 1 and tau > 0, got alpha={alpha}, tau={tau}")
    v = _f(variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = tau * tau / v
        h = np.sqrt(v * (1.0 + 1.0 / r) * (np.log1p(r) + 2.0 * np.log(1.0 / alpha)))
    return np.where(v > 0.0, h, np.where(np.isnan(v), np.nan, 0.0))


def sample_variance(total: object, total_sq: object, n: object) -> Array:
    t, tsq, n = _f(total), _f(total_sq), _f(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.maximum(0.0, (tsq - t * t / n) / (n - 1.0))
    return np.where(n >= 2, v, 0.0)


def arm_variance(total: object, total_sq: object, n: object, binary: bool) -> Array:
    if binary:
        p = (_f(total) + 1.0) / (_f(n) + 2.0)
        return p * (1.0 - p)
    return sample_variance(total, total_sq, n)


def unadjusted(
    n1: object, s1: object, ss1: object, n0: object, s0: object, ss0: object, *, binary: bool
) -> tuple[Array, Array]:
    """`sequential.unadjusted` as (uplift, variance) arrays; NaN while an arm is empty."""
    n1, s1, ss1, n0, s0, ss0 = map(_f, (n1, s1, ss1, n0, s0, ss0))
    v1, v0 = arm_variance(s1, ss1, n1, binary), arm_variance(s0, ss0, n0, binary)
    if not binary:
        pooled = sample_variance(s1 + s0, ss1 + ss0, n1 + n0)
        few = np.minimum(n1, n0) < 2
        v1, v0 = np.where(few, pooled, v1), np.where(few, pooled, v0)
    with np.errstate(divide="ignore", invalid="ignore"):
        uplift, variance = s1 / n1 - s0 / n0, v1 / n1 + v0 / n0
    empty = (n1 < 1) | (n0 < 1)
    return np.where(empty, np.nan, uplift), np.where(empty, np.nan, variance)


def slope_and_residual(a: ArmSums, binary: bool) -> tuple[Array, Array, Array]:
    """`ArmCovariate.slope_and_residual` over arrays."""
    n, sx, sxx, sy, syy, sxy = map(_f, (a.n, a.sx, a.sxx, a.sy, a.syy, a.sxy))
    var_x = sample_variance(sx, sxx, n)
    var_y = arm_variance(sy, syy, n, binary)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = np.where(n >= 2, (sxy - sx * sy / n) / (n - 1.0), 0.0)
        flat = var_x <= 1e-12 * np.maximum(1.0, sxx / np.maximum(n, 1.0))
        beta = np.where(flat, 0.0, cov / var_x)
    residual = np.where(flat, var_y, np.maximum(var_y - cov * beta, 0.0))
    return beta, var_x, residual


def adjusted(t: ArmSums, h: ArmSums, *, binary: bool) -> tuple[Array, Array]:
    """`sequential.adjusted` as (uplift, variance) arrays; NaN with < 2 units in an arm."""
    n1, n0 = _f(t.n), _f(h.n)
    n = n1 + n0
    with np.errstate(divide="ignore", invalid="ignore"):
        x_bar = (_f(t.sx) + _f(h.sx)) / n
        b1, _, e1 = slope_and_residual(t, binary)
        b0, _, e0 = slope_and_residual(h, binary)
        var_x = sample_variance(_f(t.sx) + _f(h.sx), _f(t.sxx) + _f(h.sxx), n)
        mu1 = _f(t.sy) / n1 - b1 * (_f(t.sx) / n1 - x_bar)
        mu0 = _f(h.sy) / n0 - b0 * (_f(h.sx) / n0 - x_bar)
        variance = e1 / n1 + e0 / n0 + (b1 - b0) ** 2 * var_x / n
    few = (n1 < 2) | (n0 < 2)
    return np.where(few, np.nan, mu1 - mu0), np.where(few, np.nan, variance)


def wilson(k: object, n: object, z: float) -> tuple[Array, Array]:
    """`report.wilson` over arrays."""
    k, n = _f(k), _f(n)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = z / (1 + z2 / n) * np.sqrt(np.maximum(p * (1 - p) / n + z2 / (4 * n * n), 0.0))
    empty = n <= 0
    low = np.where(empty, 0.0, np.maximum(0.0, centre - half))
    return low, np.where(empty, 1.0, np.minimum(1.0, centre + half))


def proportion_diff(k1: object, n1: object, k0: object, n0: object, z: float) -> tuple[Array, Array, Array]:
    """`report.proportion_diff` (Newcombe's hybrid score interval) as (uplift, low, high) arrays."""
    k1, n1, k0, n0 = map(_f, (k1, n1, k0, n0))
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p0 = np.where(n1 > 0, k1 / n1, 0.0), np.where(n0 > 0, k0 / n0, 0.0)
    l1, u1 = wilson(k1, n1, z)
    l0, u0 = wilson(k0, n0, z)
    d = p1 - p0
    return d, d - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def enough(
    n1: object,
    n0: object,
    min_exposures: int,
    purchases: tuple[object, object] | None = None,
    min_purchases: int = 0,
) -> Array:
    """`report.decide`'s `enough`: both arms have `min_exposures` exposures and, for a revenue goal
    (`purchases` given: each arm's exposures with a purchase), `min_purchases` purchases."""
    out = np.minimum(_f(n1), _f(n0)) >= min_exposures
    if purchases is not None:
        out = out & (np.minimum(_f(purchases[0]), _f(purchases[1])) >= min_purchases)
    return out


def status(low: Array, high: Array, enough: Array, goal: float) -> Array:
    """`report.decide`'s status from the decision interval at every look (codes above)."""
    out = np.full(np.shape(low), UNDECIDED, dtype=np.int8)
    out[low >= goal] = MEETING
    out[high < goal] = UNDER
    out[~enough | np.isnan(low)] = INSUFFICIENT
    return out


def previous_status(
    high: Array, uplift: Array, enough: Array, predictions: Array, predicted: Array, goal: float, min_n: int
) -> Array:
    """The old rule (HEAD~1 `report.status`): underperforming when the fixed-horizon 95% upper bound is below
    the goal, or when ≥ `min_n` predictions exist and the mean predicted uplift and the realised point
    estimate are both below it; else on_track (coded UNDECIDED: it never decides that a goal is met)."""
    agrees = (predictions >= min_n) & (predicted < goal) & (uplift < goal)
    out = np.where((high < goal) | agrees, UNDER, UNDECIDED).astype(np.int8)
    out[~enough] = INSUFFICIENT
    return out
