"""A model's answer is checked row by row: shape, finiteness, probabilities in [0, 1], revenue ≥ 0."""

from __future__ import annotations

import numpy as np
import pytest

from stream.scoring.signature import PROMO_DIM
from stream.scoring.validate import invalid_scores, invalid_vectors

pytestmark = pytest.mark.unit


def _scores(rows: int) -> np.ndarray:
    return np.tile(np.array([0.2, 0.05, 3.0], dtype=np.float32), (rows, 1))


def test_valid_scores_have_no_invalid_rows() -> None:
    assert invalid_scores(_scores(4), _scores(4), 4) == {}
    assert invalid_scores(_scores(0), _scores(0), 0) == {}


def test_each_bad_row_says_what_is_wrong_and_the_others_stay_valid() -> None:
    treated, control = _scores(6), _scores(6)
    treated[1, 0] = np.nan
    control[2, 2] = np.inf
    treated[3, 1] = 1.5  # a conversion probability above 1
    control[4, 0] = -0.1
    treated[5, 2] = -2.0  # expected revenue below 0
    assert invalid_scores(treated, control, 6) == {
        1: "non-finite score",
        2: "non-finite score",
        3: "probability outside [0, 1]",
        4: "probability outside [0, 1]",
        5: "negative expected revenue",
    }


@pytest.mark.parametrize(
    "treated",
    [_scores(3), _scores(5)[:, :2], np.zeros((5, 3), dtype=np.int32), None],
    ids=["too few rows", "too few outcomes", "integers", "missing"],
)
def test_an_answer_of_the_wrong_shape_or_type_leaves_every_row_invalid(treated: np.ndarray) -> None:
    invalid = invalid_scores(treated, _scores(5), 5)
    assert sorted(invalid) == [0, 1, 2, 3, 4]
    assert invalid[0].startswith("p_treated is ") and "expected float [5, 3]" in invalid[0]


def test_vectors_must_be_finite_and_of_the_promotion_dimension() -> None:
    vectors = np.zeros((3, PROMO_DIM), dtype=np.float32)
    vectors[1, 7] = np.nan
    assert invalid_vectors(vectors, 3) == {1: "non-finite vector"}
    assert sorted(invalid_vectors(np.zeros((3, 16), dtype=np.float32), 3)) == [0, 1, 2]
    assert sorted(invalid_vectors(vectors[:2], 3)) == [0, 1, 2]
