from __future__ import annotations

import math

import numpy as np
import pytest

from stream.drift.stats import fractions, jensen_shannon, ks, psi

pytestmark = pytest.mark.unit


def test_psi_by_hand() -> None:
    expected = np.array([0.5, 0.5])
    actual = np.array([0.25, 0.75])
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi(expected, actual, eps=0.0) == pytest.approx(by_hand)
    assert psi(expected, expected) == pytest.approx(0.0)


def test_psi_accepts_counts_and_smooths_empty_bins() -> None:
    assert psi(np.array([10, 10]), np.array([5, 15]), eps=0.0) == pytest.approx(
        psi(np.array([0.5, 0.5]), np.array([0.25, 0.75]), eps=0.0))
    empty_bin = psi(np.array([1.0, 0.0]), np.array([0.5, 0.5]), eps=1e-4)
    assert np.isfinite(empty_bin)
    by_hand = (0.5001 - 1.0001) * math.log(0.5001 / 1.0001) + (0.5001 - 1e-4) * math.log(0.5001 / 1e-4)
    assert empty_bin == pytest.approx(by_hand, rel=1e-9)


def test_ks_by_hand() -> None:
    # CDFs 0.2/0.5/1.0 and 0.1/0.2/1.0: largest gap 0.3 at the second edge.
    assert ks(np.array([2, 3, 5]), np.array([1, 1, 8])) == pytest.approx(0.3)
    assert ks(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)


def test_jensen_shannon_bounds() -> None:
    assert jensen_shannon(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert jensen_shannon(np.array([3, 1]), np.array([6, 2])) == pytest.approx(0.0)
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    m = (p + q) / 2
    by_hand = 0.5 * sum(p * np.log2(p / m)) + 0.5 * sum(q * np.log2(q / m))
    assert jensen_shannon(p, q) == pytest.approx(by_hand)


def test_vectorised_rows_and_padding_change_nothing() -> None:
    expected = np.array([[0.2, 0.3, 0.5, 0.0], [0.5, 0.5, 0.0, 0.0]])
    actual = np.array([[10, 20, 70, 0], [30, 10, 0, 0]])
    for stat in (psi, ks, jensen_shannon):
        both = stat(expected, actual)
        assert both.shape == (2,)
        assert both[0] == pytest.approx(stat(expected[0, :3], actual[0, :3]))
        assert both[1] == pytest.approx(stat(expected[1, :2], actual[1, :2]))


def test_fractions_of_an_empty_row_are_zero() -> None:
    assert fractions(np.array([[0, 0], [1, 3]])).tolist() == [[0.0, 0.0], [0.25, 0.75]]
