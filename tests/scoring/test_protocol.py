from __future__ import annotations

import numpy as np
import pytest

from stream.scoring import signature as sig
from stream.scoring.protocol import (
    ScoreResult,
    empty_outputs,
    encoder_inputs,
    incremental_revenue,
    scorer_inputs,
    uplift,
)

pytestmark = pytest.mark.unit


def test_uplift_is_treated_minus_control_per_outcome() -> None:
    result = ScoreResult(
        p_treated=np.array([[0.5, 0.1, 12.0], [0.2, 0.0, 0.0]], np.float32),
        p_control=np.array([[0.3, 0.05, 10.0], [0.25, 0.0, 1.0]], np.float32),
        model_version=3,
    )
    np.testing.assert_allclose(uplift(result), [[0.2, 0.05, 2.0], [-0.05, 0.0, -1.0]], atol=1e-6)
    np.testing.assert_allclose(incremental_revenue(result), [2.0, -1.0], atol=1e-6)
    assert len(result) == 2


def test_scorer_inputs_are_contiguous_float32_of_the_signature_widths() -> None:
    n = 4
    user = np.ones((n, len(sig.USER_FEATURES)), np.float64)
    vec = np.asfortranarray(np.ones((n, sig.PROMO_DIM), np.float32))
    attrs = np.ones((n, len(sig.PROMO_ATTRS)), np.int64)
    arrays = scorer_inputs(user, vec, attrs)
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays)


@pytest.mark.parametrize(
    ("user_cols", "vec_rows"),
    [(len(sig.USER_FEATURES) - 1, 4), (len(sig.USER_FEATURES), 3)],
)
def test_scorer_inputs_reject_wrong_widths_and_row_counts(user_cols: int, vec_rows: int) -> None:
    with pytest.raises(ValueError, match="user_features|rows"):
        scorer_inputs(
            np.ones((4, user_cols)), np.ones((vec_rows, sig.PROMO_DIM)), np.ones((4, len(sig.PROMO_ATTRS)))
        )


def test_encoder_inputs_are_int64_and_must_agree() -> None:
    ids, mask = encoder_inputs(np.ones((2, sig.MAX_TOKENS), np.int32), np.ones((2, sig.MAX_TOKENS), np.int32))
    assert ids.dtype == mask.dtype == np.int64
    with pytest.raises(ValueError, match="rows"):
        encoder_inputs(np.ones((2, sig.MAX_TOKENS)), np.ones((3, sig.MAX_TOKENS)))
    with pytest.raises(ValueError, match="input_ids"):
        encoder_inputs(np.ones((2, 10)), np.ones((2, 10)))


def test_empty_outputs_have_the_output_widths() -> None:
    treated, control = empty_outputs(sig.SCORER_OUTPUTS)
    assert treated.shape == control.shape == (0, len(sig.OUTCOMES))
