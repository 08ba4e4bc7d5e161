from __future__ import annotations

import numpy as np
import pytest

from stream.features.labels import in_attribution_window, outcome_labels
from stream.features.state import KIND_INDEX

pytestmark = pytest.mark.unit

W = 3600.0
V, P = KIND_INDEX["view"], KIND_INDEX["purchase"]


def _brute(exp_user, exp_ts, c_user, c_ts, c_kind, c_amount, window):  # type: ignore[no-untyped-def]
    out = np.zeros((len(exp_ts), 3))
    for i, (u, t) in enumerate(zip(exp_user, exp_ts, strict=True)):
        hit = (c_user == u) & in_attribution_window(t, c_ts, window)
        bought = hit & (c_kind == P)
        in_ts_order = np.argsort(c_ts[bought], kind="stable")
        out[i] = [hit.any(), bought.any(), sum(c_amount[bought][in_ts_order].tolist())]
    return out


def test_window_is_from_exposure_inclusive_to_end_exclusive() -> None:
    clicks_ts = np.array([99.0, 100.0, 100.0 + W - 0.5, 100.0 + W])
    assert in_attribution_window(100.0, clicks_ts, W).tolist() == [False, True, True, False]
    labels = outcome_labels(
        np.array([0, 0, 1]),
        np.array([100.0, 100.0 + W, 50.0]),
        np.zeros(4, dtype=np.int64),
        clicks_ts,
        np.array([V, P, P, P]),
        np.array([0.0, 5.0, 7.25, 11.0]),
        W,
    )
    assert labels.tolist() == [[1, 1, 12.25], [1, 1, 11.0], [0, 0, 0.0]]


def test_views_make_visits_not_conversions() -> None:
    labels = outcome_labels(
        np.array([3]), np.array([0.0]), np.array([3]), np.array([1.0]), np.array([V]), np.array([9.0]), W
    )
    assert labels.tolist() == [[1, 0, 0]]


def test_no_clicks_and_no_exposures() -> None:
    empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0)
    assert outcome_labels(np.array([1]), np.array([5.0]), empty_i, empty_f, empty_i, empty_f, W).tolist() == [
        [0, 0, 0]
    ]
    assert outcome_labels(
        empty_i, empty_f, np.array([1]), np.array([5.0]), np.array([P]), np.array([1.0]), W
    ).shape == (0, 3)


def test_matches_brute_force_on_random_data() -> None:
    rng = np.random.default_rng(7)
    n_exp, n_click = 300, 900
    args = (
        rng.integers(0, 20, n_exp),
        rng.integers(0, 40, n_exp).astype(np.float64) * 100,
        rng.integers(0, 20, n_click),
        rng.integers(0, 80, n_click).astype(np.float64) * 100,  # many exact ties with the bounds
        rng.choice([V, P, KIND_INDEX["visit"]], n_click),
        rng.gamma(2.0, 10.0, n_click),
    )
    got = outcome_labels(*args, 1000.0)
    assert np.array_equal(got, _brute(*args, 1000.0))
    assert got[:, 1].sum() > 0
