from __future__ import annotations

import numpy as np
import pytest

from models.significance import paired_bootstrap, user_resamples

pytestmark = pytest.mark.unit


def test_a_resample_keeps_every_drawn_user_whole() -> None:
    users = np.array(["a", "a", "b", "c", "c", "c"])
    for idx in user_resamples(users, 50, seed=3):
        drawn, rows_per_user = np.unique(users[idx], return_counts=True)
        own_rows = {"a": 2, "b": 1, "c": 3}
        # a user drawn k times brings all its rows k times
        assert all(n % own_rows[u] == 0 for u, n in zip(drawn, rows_per_user, strict=True))
        assert sum(n // own_rows[u] for u, n in zip(drawn, rows_per_user, strict=True)) == 3


def test_resamples_are_reproducible_from_the_seed() -> None:
    users = np.arange(100) % 37
    first = [idx.copy() for idx in user_resamples(users, 5, seed=7)]
    again = list(user_resamples(users, 5, seed=7))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def _effects(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    tau = rng.uniform(0.0, 0.4, n)
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.1 + t * tau).astype(float)
    return tau, t, y, np.arange(n)


def test_a_ranking_by_the_true_effect_is_surely_ahead_of_a_random_one() -> None:
    tau, t, y, users = _effects(4000, seed=0)
    noise = np.random.default_rng(1).random(len(tau))
    out = paired_bootstrap({"m": tau, "random": noise}, y, t, users, reference="m", resamples=100, seed=0)
    lead = out["versus"]["random"]
    assert lead["uplift_at_30"]["difference"][0] > 0 and lead["qini"]["difference"][0] > 0
    assert lead["uplift_at_30"]["share_ahead"] == 1.0
    low, high = out["models"]["m"]["qini"]
    assert low < high


def test_identical_rankings_are_level_and_their_lead_is_exactly_zero() -> None:
    tau, t, y, users = _effects(1000, seed=2)
    out = paired_bootstrap({"m": tau, "copy": tau.copy()}, y, t, users, reference="m", resamples=30, seed=0)
    for metric in ("uplift_at_30", "qini"):
        assert out["versus"]["copy"][metric] == {"difference": [0.0, 0.0], "share_ahead": 0.5}


def test_two_noisy_rankings_of_a_flat_effect_are_not_told_apart() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.1 + 0.05 * t).astype(float)
    out = paired_bootstrap({"a": rng.random(n), "b": rng.random(n)}, y, t, np.arange(n),
                           reference="a", resamples=100, seed=0)
    low, high = out["versus"]["b"]["uplift_at_30"]["difference"]
    assert low < 0 < high
    assert 0.05 < out["versus"]["b"]["uplift_at_30"]["share_ahead"] < 0.95


def test_resamples_without_a_metric_are_left_out_of_the_comparison() -> None:
    # 20 users; the two treated ones are ranked first by both models. About one resample in eight draws
    # neither of them and has no uplift@30. Whenever it has one, "a" is ahead: after the treated users it
    # ranks the holdout users who did not convert, "b" those who did.
    users = np.arange(20)
    t = (users < 2).astype(int)
    y = np.where(t == 1, 1.0, (users > 10).astype(float))
    a = -users.astype(float)
    b = np.concatenate([[30.0, 29.0], np.where(users[2:] > 10, 20.0 - users[2:], -users[2:])])
    assert any(t[idx].sum() == 0 for idx in user_resamples(users, 100, seed=0))
    out = paired_bootstrap({"a": a, "b": b}, y, t, users, reference="a", resamples=100, seed=0)
    lead = out["versus"]["b"]["uplift_at_30"]
    assert lead["difference"][0] >= 0 and lead["share_ahead"] > 0.97
    assert all(np.isfinite(out["models"]["a"]["uplift_at_30"]))
