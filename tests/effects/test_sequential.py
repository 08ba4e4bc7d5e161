"""The anytime-valid intervals keep their error rate under continuous monitoring, adjusted or not."""

from __future__ import annotations

import numpy as np
import pytest

from stream.effects.sequential import ArmCovariate, adjusted, half_width, unadjusted

pytestmark = pytest.mark.unit

STREAMS = 2000
LOOKS = np.arange(400, 8001, 200)
"""A look every 200 exposures, as the engine's snapshot every second sees a promotion at 200 exposures/s."""
HOLDOUT = 0.2


def _streams(seed: int, lift: float, model_noise: float) -> tuple[np.ndarray, ...]:
    """Per stream and exposure: treated?, outcome, the model's prediction (the covariate)."""
    rng = np.random.default_rng(seed)
    shape = (STREAMS, LOOKS[-1])
    p = rng.beta(1.0, 9.0, shape)  # heterogeneous baseline rates, mean 0.1
    treated = rng.random(shape) >= HOLDOUT
    y = (rng.random(shape) < np.clip(p + lift * treated, 0.0, 1.0)).astype(float)
    x = np.clip(p + rng.normal(0.0, model_noise, shape), 0.0, 1.0) if model_noise >= 0 else rng.random(shape)
    return treated, y, x


def _cum(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.cumsum(np.where(mask, values, 0.0), axis=1)[:, LOOKS - 1]


def _coverage(seed: int, lift: float, model_noise: float, use_covariate: bool) -> tuple[float, float]:
    """(share of streams whose interval covers `lift` at every look, mean final half-width)."""
    treated, y, x = _streams(seed, lift, model_noise)
    tau = 0.02
    arms = []
    for mask in (treated, ~treated):
        arms.append(
            [
                _cum(np.ones_like(y), mask),
                _cum(x, mask),
                _cum(x * x, mask),
                _cum(y, mask),
                _cum(y, mask),
                _cum(x * y, mask),
            ]
        )
    covered = np.ones(STREAMS, dtype=bool)
    final = []
    for s in range(STREAMS):
        for k in range(len(LOOKS)):
            t, h = (ArmCovariate(*(float(v[s, k]) for v in arm)) for arm in arms)
            est = (
                adjusted(t, h, binary=True)
                if use_covariate
                else unadjusted(t.n, t.sy, t.syy, h.n, h.sy, h.syy, binary=True)
            )
            assert est is not None
            low, high = est.interval(tau)
            if not low <= lift <= high:
                covered[s] = False
                break
        final.append(half_width(est.variance, tau))
    return float(covered.mean()), float(np.mean(final))


@pytest.mark.parametrize("lift", [0.0, 0.02])
def test_the_unadjusted_sequence_covers_the_true_uplift_at_every_look(lift: float) -> None:
    share, _ = _coverage(seed=1, lift=lift, model_noise=0.05, use_covariate=False)
    assert share >= 0.95, share


@pytest.mark.parametrize(("noise", "lift"), [(0.02, 0.02), (-1.0, 0.0)])
def test_the_adjusted_sequence_covers_however_good_the_model(noise: float, lift: float) -> None:
    # noise -1: the "model" is pure noise, unrelated to the outcome.
    share, _ = _coverage(seed=2, lift=lift, model_noise=noise, use_covariate=True)
    assert share >= 0.95, share


def test_a_predictive_covariate_narrows_the_interval_and_a_useless_one_costs_nothing() -> None:
    _, plain = _coverage(seed=3, lift=0.02, model_noise=0.02, use_covariate=False)
    _, good = _coverage(seed=3, lift=0.02, model_noise=0.02, use_covariate=True)
    _, useless = _coverage(seed=3, lift=0.02, model_noise=-1.0, use_covariate=True)
    assert good < 0.97 * plain, (good, plain)
    assert useless < 1.01 * plain, (useless, plain)


def test_the_adjusted_estimate_is_unbiased_and_its_variance_is_right() -> None:
    rng = np.random.default_rng(4)
    estimates, variances = [], []
    for _ in range(400):
        n = 4000
        x = rng.uniform(0.0, 1.0, n)
        treated = rng.random(n) < 0.5
        # Arm-specific slopes: the interacted adjustment's (β1 − β0)² Var(x) term matters.
        y = np.where(treated, 1.0 + 3.0 * x, 2.0 * x) + rng.normal(0.0, 1.0, n)
        arms = [
            ArmCovariate(
                float(m.sum()),
                float(x[m].sum()),
                float((x[m] ** 2).sum()),
                float(y[m].sum()),
                float((y[m] ** 2).sum()),
                float((x[m] * y[m]).sum()),
            )
            for m in (treated, ~treated)
        ]
        est = adjusted(*arms, binary=False)
        assert est is not None
        estimates.append(est.uplift)
        variances.append(est.variance)
    true = 1.0 + 3.0 * 0.5 - 2.0 * 0.5
    assert np.mean(estimates) == pytest.approx(true, abs=3 * np.std(estimates) / np.sqrt(400))
    assert np.mean(variances) == pytest.approx(np.var(estimates), rel=0.2)


def test_estimators_need_both_arms() -> None:
    assert unadjusted(0, 0, 0, 10, 1, 1, binary=True) is None
    one = ArmCovariate(1, 0.1, 0.01, 1, 1, 0.1)
    assert adjusted(one, ArmCovariate(10, 1, 0.2, 2, 2, 0.3), binary=True) is None
