from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stream.drift.reference import (
    PREDICTION_FEATURES,
    Reference,
    build_reference,
    load_reference,
    save_reference,
)
from stream.errors import ModelError
from stream.scoring.signature import PROMO_ATTRS, USER_FEATURES

from .population import IS_NEW, SPEND, population

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def reference() -> dict:
    s = population(20_000, seed=1)
    return build_reference(s.user, s.promo, s.arm, s.p_treated, s.p_control)


def test_layout(reference: dict) -> None:
    assert reference["features"] == [*USER_FEATURES, *PROMO_ATTRS, *PREDICTION_FEATURES]
    assert set(reference["scopes"]) == {"overall", "treatment", "holdout"}
    assert reference["scopes"]["overall"]["rows"] == 20_000
    assert reference["scopes"]["treatment"]["rows"] + reference["scopes"]["holdout"]["rows"] == 20_000
    json.dumps(reference, allow_nan=False)


def test_continuous_features_get_deciles(reference: dict) -> None:
    spend = reference["scopes"]["overall"]["fractions"][SPEND[0]]
    assert len(spend) == 10
    assert np.allclose(spend, 0.1, atol=0.002)


def test_discrete_features_get_fewer_bins(reference: dict) -> None:
    assert reference["edges"][IS_NEW] == [0.0]
    is_new = reference["scopes"]["overall"]["fractions"][IS_NEW]
    assert is_new == pytest.approx([0.9, 0.1], abs=0.01)
    for scope in reference["scopes"].values():
        assert all(sum(fr) == pytest.approx(1.0) for fr in scope["fractions"])


def test_boolean_arms_match_string_arms(reference: dict) -> None:
    s = population(20_000, seed=1)
    again = build_reference(s.user, s.promo, s.arm == "treatment", s.p_treated, s.p_control)
    assert again == reference


def test_round_trip(reference: dict, tmp_path: Path) -> None:
    save_reference(reference, tmp_path / "reference.json")
    loaded = load_reference(tmp_path / "reference.json")
    direct = Reference.from_dict(reference)
    assert loaded.features == direct.features
    assert np.array_equal(loaded.edges, direct.edges)
    assert all(np.array_equal(loaded.expected[k], direct.expected[k]) for k in direct.expected)


def test_counts_use_right_closed_bins() -> None:
    ref = Reference(("x",), np.array([[1.0, 2.0, np.inf]]), {}, {})
    assert ref.counts(np.array([[0.5], [1.0], [1.5], [2.0], [9.0]])).tolist() == [[2, 2, 1, 0]]


def test_bad_inputs() -> None:
    s = population(100, seed=2)
    with pytest.raises(ModelError, match="names"):
        build_reference(s.user, s.promo, s.arm, s.p_treated, s.p_control, feature_names=("a",))
    with pytest.raises(ModelError, match="malformed"):
        Reference.from_dict({"format": 1, "bins": 10, "features": ["a"], "edges": []})
    with pytest.raises(ModelError, match="format"):
        Reference.from_dict({"format": 99})
