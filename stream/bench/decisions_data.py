"""Simulated campaigns with a known truth, as the cumulative per-arm sums the engine keeps (see decisions.py).

Each exposure is one user with a true baseline conversion probability p₀ = expit(μ + σ·z) (logit-normal:
mean ≈ 3.3%, heterogeneous — most users near 1%, a minority of likely buyers far above), assigned to treatment
with probability 1 − holdout, converting with probability p₀ + effect (an absolute uplift) when treated.
The "model" scores the exposure before its outcome; its predictions of p_control and p_treated differ by the
campaign's predicted uplift u, and the covariate is their midpoint, as in the engine:
- `model`: logit p̂ = logit p₀ + 0.7·ε — imperfect, calibrated on average;
- `miscalibrated`: logit p̂ = 1.6·(logit p₀ + 0.7·ε) + 1.5 — the same ranking, over-confident and too high;
- `useless`: p̂ drawn from the same population independently of the user — pure noise.
u = true effect + 0.3·s·ζ per campaign (ζ ~ N(0, 1), s = the goal, or the default mixing scale for a goal of
0): the campaign-level error of the model's uplift, which only the old rule's "model agrees" clause reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stream.bench.decisions_stats import ArmSums

Array = np.ndarray
Z80 = 1.959964 + 0.841621
"""z_{1-α/2} + z_{power} of a two-sided 5% test with 80% power."""


@dataclass(frozen=True, slots=True)
class World:
    logit_mean: float = -4.3
    logit_sd: float = 1.5
    model_noise: float = 0.7
    uplift_error: float = 0.3

    def mean_baseline(self) -> float:
        nodes, weights = np.polynomial.hermite_e.hermegauss(80)
        p = 1.0 / (1.0 + np.exp(-(self.logit_mean + self.logit_sd * nodes)))
        return float(np.sum(weights * p) / np.sum(weights))


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    effect: float
    """The true absolute uplift in units of the goal (after the ramp)."""
    zero_goal: bool = False
    """A/A: the goal is 0 instead of the configured goal."""
    ramp: float = 0.0
    """The share of the horizon over which the effect ramps linearly up from 0."""
    good: bool = True
    """True effect ≥ goal: an `underperforming` status is a false alert."""


SCENARIOS = (
    Scenario("A/A", 0.0, zero_goal=True),
    Scenario("at goal", 1.0),
    Scenario("1.25x goal", 1.25),
    Scenario("2x goal", 2.0),
    Scenario("dud", 0.0, good=False),
    Scenario("slow start", 1.25, ramp=0.25),
)


def fixed_sample_size(variance: float, holdout: float, gap: float) -> float:
    """Exposures a fixed-horizon two-sided 5% test needs for 80% power at an absolute difference `gap`, with
    per-exposure outcome variance `variance` and a share `holdout` held out."""
    return Z80**2 * variance * (1.0 / (1.0 - holdout) + 1.0 / holdout) / gap**2


@dataclass(slots=True)
class Sums:
    """One outcome's cumulative sums at every look, arrays (runs, looks), and what the rules need besides."""

    exposures: Array
    treated: ArmSums
    held: ArmSums
    """Outcome sums per arm (n, Σy, Σy² in n, sy, syy; the x fields are unused)."""
    cov: dict[str, tuple[ArmSums, ArmSums]] = field(default_factory=dict)
    truth: Array | float = 0.0
    """The true uplift of the exposures so far (average effect over the treated ones)."""
    predicted_mean: Array | float = 0.0
    """Mean predicted uplift over the exposures so far (the old rule's model clause)."""
    purchases: tuple[Array, Array] | None = None
    """Per arm (treated, held), the exposures with a nonzero outcome so far — for revenue, those with a
    purchase, which `report.decide` counts (`min_purchases_per_arm`); None for a binary outcome."""


def cumulative(v: Array, look_every: int) -> Array:
    """Sums over each block of `look_every` exposures, accumulated: the totals at every look."""
    runs, n = v.shape
    return v.reshape(runs, n // look_every, look_every).sum(axis=2, dtype=np.float64).cumsum(axis=1)


def totals(y: Array, xs: dict[str, Array], look_every: int, binary: bool) -> dict[str, Array]:
    """The arm-blind cumulative sums: Σy, Σy², for a non-binary outcome the count of nonzero outcomes (`k`),
    and per covariate Σx, Σx², Σxy."""
    c = {"y": cumulative(y, look_every)}
    c["yy"] = c["y"] if binary else cumulative(y * y, look_every)
    if not binary:
        c["k"] = cumulative((y != 0).astype(np.float32), look_every)
    for name, x in xs.items():
        c[name] = cumulative(x, look_every)
        c[name + "2"] = cumulative(x * x, look_every)
        c[name + "y"] = cumulative(x * y, look_every)
    return c


def arm_sums(
    a: Array, y: Array, xs: dict[str, Array], tot: dict[str, Array], look_every: int, binary: bool
) -> Sums:
    """Per-arm sums from the indicator `a` (0/1) and the arm-blind totals (holdout = total − treated); for a
    non-binary outcome also each arm's count of nonzero outcomes (`Sums.purchases`)."""
    exposures = look_every * np.arange(1, tot["y"].shape[1] + 1, dtype=np.float64)
    ay = a * y
    n1, sy1 = cumulative(a, look_every), cumulative(ay, look_every)
    syy1 = sy1 if binary else cumulative(ay * y, look_every)
    n0 = exposures - n1
    nil = np.zeros_like(n1)
    out = Sums(exposures, ArmSums(n1, nil, nil, sy1, syy1, nil),
               ArmSums(n0, nil, nil, tot["y"] - sy1, tot["yy"] - syy1, nil))  # fmt: skip
    if not binary:
        k1 = cumulative(a * (y != 0), look_every)
        out.purchases = (k1, tot["k"] - k1)
    for name, x in xs.items():
        ax = a * x
        sx, sxx, sxy = (cumulative(v, look_every) for v in (ax, ax * x, ax * y))
        t = ArmSums(n1, sx, sxx, sy1, syy1, sxy)
        h = ArmSums(n0, tot[name] - sx, tot[name + "2"] - sxx, tot["y"] - sy1, tot["yy"] - syy1,
                         tot[name + "y"] - sxy)  # fmt: skip
        out.cov[name] = (t, h)
    return out


def _expit(v: Array) -> Array:
    return 1.0 / (1.0 + np.exp(-v))


def simulate(
    rng: np.random.Generator,
    world: World,
    scenario: Scenario,
    goal: float,
    scale: float,
    runs: int,
    horizon: int,
    look_every: int,
    holdout: float,
) -> Sums:
    """`runs` campaigns of `horizon` exposures each, as cumulative sums at every look (module doc)."""
    f32 = np.float32
    final = scenario.effect * goal
    index = np.arange(horizon, dtype=f32)
    ramp = max(scenario.ramp * horizon, 1.0)
    effect = (final * np.minimum(1.0, index / ramp) if scenario.ramp else np.full(horizon, final)).astype(f32)
    u = (final + world.uplift_error * scale * rng.standard_normal(runs)).astype(f32)[:, None]
    logit = (world.logit_mean + world.logit_sd * rng.standard_normal((runs, horizon), dtype=f32)).astype(f32)
    a = (rng.random((runs, horizon), dtype=f32) >= f32(holdout)).astype(f32)
    p = np.minimum(_expit(logit) + a * effect, f32(1.0))
    y = (rng.random((runs, horizon), dtype=f32) < p).astype(f32)
    seen = logit + f32(world.model_noise) * rng.standard_normal((runs, horizon), dtype=f32)
    noise = world.logit_mean + world.logit_sd * rng.standard_normal((runs, horizon), dtype=f32)
    xs = {
        "model": _expit(seen) + u / 2,
        "miscalibrated": _expit(f32(1.6) * seen + f32(1.5)) + u / 2,
        "useless": _expit(noise.astype(f32)) + u / 2,
    }
    sums = arm_sums(a, y, xs, totals(y, xs, look_every, True), look_every, True)
    with np.errstate(divide="ignore", invalid="ignore"):
        sums.truth = np.where(sums.treated.n > 0, cumulative(a * effect, look_every) / sums.treated.n, final)
    sums.predicted_mean = u.astype(np.float64)
    return sums
