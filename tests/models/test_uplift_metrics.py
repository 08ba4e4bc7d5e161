from __future__ import annotations

import numpy as np
import pytest

from models.metrics import (
    auc,
    auuc,
    calibration_bins,
    calibration_error,
    gain_curve,
    outcome_metrics,
    pehe,
    qini_coefficient,
    qini_curve,
    truth_qini,
    uplift_at_k,
    uplift_by_decile,
)

pytestmark = pytest.mark.unit

# Four users ranked as listed: treated responder, holdout non-responder, treated non-responder,
# holdout responder. Worked by hand in the comments of each test.
UPLIFT = np.array([0.9, 0.8, 0.7, 0.6])
T = np.array([1, 0, 1, 0])
Y = np.array([1.0, 0.0, 0.0, 1.0])


def test_qini_curve_by_hand() -> None:
    # k=1: 1 - 0 = 1; k=2: 1 - 0*1/1 = 1; k=3: 1 - 0*2/1 = 1; k=4: 1 - 1*2/2 = 0; then / N=4.
    curve = qini_curve(UPLIFT, Y, T)
    np.testing.assert_allclose(curve.x, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(curve.y, [0, 0.25, 0.25, 0.25, 0.0])


def test_qini_coefficient_by_hand() -> None:
    # Trapezoids 0.03125 + 0.0625 + 0.0625 + 0.03125; the random line ends at 0.
    assert qini_coefficient(UPLIFT, Y, T) == pytest.approx(0.1875)
    # Reversing the ranking puts the holdout responder first: worse than random.
    assert qini_coefficient(-UPLIFT, Y, T) < 0


def test_gain_curve_and_auuc_by_hand() -> None:
    # k=2: (1 - 0) * 2/4 = 0.5; k=3: (0.5 - 0) * 3/4 = 0.375; k=4: (0.5 - 0.5) = 0; k=1 has no holdout: 0.
    np.testing.assert_allclose(gain_curve(UPLIFT, Y, T).y, [0, 0, 0.5, 0.375, 0.0])
    assert auuc(UPLIFT, Y, T) == pytest.approx(0.0625 + 0.109375 + 0.046875)


def test_ties_count_as_random_order() -> None:
    assert qini_coefficient(np.zeros(4), Y, T) == pytest.approx(0.0)
    # Two tied pairs: the curve is evaluated only at block ends (k = 0, 2, 4).
    assert len(qini_curve(np.array([1.0, 1.0, 0.0, 0.0]), Y, T).x) == 3


def test_uplift_at_k() -> None:
    assert uplift_at_k(UPLIFT, Y, T, 0.5) == pytest.approx(1.0)
    assert uplift_at_k(UPLIFT, Y, T, 1.0) == pytest.approx(0.0)
    assert np.isnan(uplift_at_k(UPLIFT, Y, T, 0.25))  # top row is treated only


def test_uplift_at_k_counts_a_tied_block_at_the_cut_by_its_share() -> None:
    # All four tied: the top half is, in expectation, half of every row, whatever the data order.
    tied = np.zeros(4)
    assert uplift_at_k(tied, Y, T, 0.5) == pytest.approx(0.0)
    assert uplift_at_k(tied, Y[::-1], T[::-1], 0.5) == pytest.approx(0.0)
    # Rows 2-3 tied at the cut of 3: rows 0-1 fully, each of rows 2-3 at one half.
    scores = np.array([0.9, 0.8, 0.5, 0.5])
    assert uplift_at_k(scores, Y, T, 0.75) == pytest.approx((1 + 0) / 1.5 - (0 + 0.5) / 1.5)


def test_uplift_by_decile() -> None:
    np.testing.assert_allclose(uplift_by_decile(UPLIFT, Y, T, bins=2), [1.0, -1.0])


def test_auc_matches_known_example_and_ties() -> None:
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auc(np.array([1.0, 1.0]), np.array([0, 1])) == pytest.approx(0.5)
    assert np.isnan(auc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_calibration_error_by_hand() -> None:
    pred = np.array([0.1] * 5 + [0.9] * 5)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
    # Bin 1: |0.1 - 0.2|; bin 2: |0.9 - 0.8|; equal weights.
    assert calibration_error(pred, y, bins=2) == pytest.approx(0.1)
    mean_pred, mean_y, sizes = calibration_bins(pred, y, bins=2)
    np.testing.assert_allclose(mean_y, [0.2, 0.8])
    np.testing.assert_array_equal(sizes, [5, 5])


def test_pehe() -> None:
    assert pehe(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == pytest.approx(np.sqrt(2.5))


def test_outcome_metrics_adds_truth_metrics_only_with_truth() -> None:
    p_c = np.full(4, 0.2)
    p_t = p_c + UPLIFT
    plain = outcome_metrics(p_t, p_c, Y, T, binary=True)
    assert "pehe" not in plain and plain["qini"] == pytest.approx(0.1875)
    assert plain["observed_ate"] == pytest.approx(0.0)
    with_truth = outcome_metrics(p_t, p_c, Y, T, binary=True, true_tau=UPLIFT)
    assert with_truth["pehe"] == pytest.approx(0.0, abs=1e-12)
    assert with_truth["oracle_qini"] == pytest.approx(0.1875)
    assert with_truth["truth_qini"] == with_truth["oracle_truth_qini"] > 0


def test_truth_qini_ranks_by_the_true_effect_without_outcome_noise() -> None:
    tau = np.array([0.4, 0.0, 0.2, -0.1])
    # Oracle order 0.4, 0.2, 0.0, -0.1: cumulative 0.4, 0.6, 0.6, 0.5 over n = 4, diagonal to 0.5 / 4.
    expected = (0.4 / 2 + (0.4 + 0.6) / 2 + (0.6 + 0.6) / 2 + (0.6 + 0.5) / 2) / 4 / 4 - 0.5 / 4 / 2
    assert truth_qini(tau, tau) == pytest.approx(expected)
    assert truth_qini(-tau, tau) < 0 < truth_qini(tau, tau)
    # A constant score is one tie block: the random diagonal, Qini zero.
    assert truth_qini(np.zeros(4), tau) == pytest.approx(0.0)
    partly = np.array([1.0, 1.0, 0.0, 0.0])  # the top block averages 0.4 and 0.0
    assert 0 < truth_qini(partly, tau) < truth_qini(tau, tau)


def test_better_ranking_scores_higher_on_simulated_effects() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.random(n)
    t = rng.integers(0, 2, n)
    tau = 0.3 * x
    y = (rng.random(n) < 0.1 + t * tau).astype(float)
    good, noise = qini_coefficient(tau, y, t), qini_coefficient(rng.random(n), y, t)
    assert good > 0.01 > abs(noise)
    assert uplift_at_k(tau, y, t, 0.1) > uplift_at_k(-tau, y, t, 0.1)
