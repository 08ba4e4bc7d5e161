"""Declared profile attributes: the default is today's 13 columns; others flow into the profile vector."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import orjson
import pytest
from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from stream.errors import ConfigError, DecodeError
from stream.events import gate
from stream.features.declaration import (
    DEFAULT_ATTRIBUTES,
    Attribute,
    Profile,
    check_attributes,
    declaration_hash,
    declared_profile,
    profile_columns,
)
from stream.features.profile import PROFILE_FEATURES, profile_interests, profile_vector
from stream.features.state import stable_hash
from stream.scoring import signature as sig
from tests.features.builders import profile

pytestmark = pytest.mark.unit

SHOP = (
    Attribute(name="loyalty_points", kind="numeric", transform="log1p"),
    Attribute(name="tier", kind="categorical", vocabulary=("gold", "silver")),
    Attribute(name="channel", kind="categorical", vocabulary=("web", "phone")),
    Attribute(name="tags", kind="multi", vocabulary=("shoes", "bags"), match_categories=True),
    Attribute(name="score", kind="numeric"),
)


@pytest.fixture
def shop_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profile events validate against the SHOP declaration (the process's is fixed at import)."""
    monkeypatch.setattr(sig, "DECLARATION", SHOP)


def test_default_declaration_is_todays_profile_columns() -> None:
    assert sig.DECLARATION == DEFAULT_ATTRIBUTES
    assert sig.DECLARATION_HASH == sig.DEFAULT_DECLARATION_HASH == declaration_hash(DEFAULT_ATTRIBUTES)
    assert profile_columns(DEFAULT_ATTRIBUTES) == PROFILE_FEATURES
    assert len(sig.USER_FEATURES) == 41
    assert sig.user_feature_names(PROFILE_FEATURES) == sig.USER_FEATURES


@pytest.mark.usefixtures("shop_events")
def test_declared_columns_values_and_interests() -> None:
    assert profile_columns(SHOP) == (
        "profile_loyalty_points_log", "profile_tier_gold", "profile_tier_silver", "profile_channel_web",
        "profile_channel_phone", "profile_tags_shoes", "profile_tags_bags", "profile_score", "profile_known",
    )  # fmt: skip
    event = profile("u", 0, channel="phone", attributes={"loyalty_points": 9, "tier": "silver",
                                                         "tags": ["bags"], "score": -2.5})  # fmt: skip
    assert profile_vector(event, SHOP).tolist() == pytest.approx([math.log1p(9), 0, 1, 0, 1, 0, 1, -2.5, 1])
    assert profile_interests(event, SHOP) == {stable_hash("bags")}
    bare = profile("u", 0)
    assert profile_vector(bare, SHOP).tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1]  # mobile: not in the vocabulary
    assert profile_vector(None, SHOP).tolist() == [0.0] * 9
    assert profile_interests(bare, DEFAULT_ATTRIBUTES[:-1]) == frozenset()  # nothing matched against


def _profile(**attributes: object) -> bytes:
    return orjson.dumps({"user_id": "u", "ts": "2026-01-05T00:00:00Z", "attributes": attributes})


@pytest.mark.usefixtures("shop_events")
@pytest.mark.parametrize(
    ("attributes", "reason", "message"),
    [
        ({"unknown": 1}, gate.INVALID, "attribute unknown is not declared"),
        ({"channel": "web"}, gate.INVALID, "is a typed field"),
        ({"tier": 3}, gate.WRONG_TYPE, "tier is categorical, got a number"),
        ({"tier": "bronze"}, gate.UNKNOWN_ENUM, "'bronze' is not in its vocabulary"),
        ({"tags": ["shoes", "hats"]}, gate.UNKNOWN_ENUM, "'hats'"),
        ({"loyalty_points": -1}, gate.OUT_OF_RANGE, "at least 0"),
        ({"score": "high"}, gate.WRONG_TYPE, "score is numeric"),
    ],
)
def test_profiles_break_the_declaration_into_dead_letters(
    attributes: dict[str, object], reason: str, message: str
) -> None:
    with pytest.raises(DecodeError, match=message) as caught:
        gate.decode("profiles", _profile(**attributes))
    assert caught.value.reason == reason


@pytest.mark.usefixtures("shop_events")
def test_declared_attributes_decode() -> None:
    event = gate.decode("profiles", _profile(loyalty_points=3, tier="gold", tags=[], score=True))
    assert event.attributes == {"loyalty_points": 3, "tier": "gold", "tags": [], "score": True}  # type: ignore[union-attr]


def test_default_declaration_refuses_any_attribute() -> None:
    with pytest.raises(PydanticCustomError):
        check_attributes({"tier": "gold"}, DEFAULT_ATTRIBUTES)


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ([{"name": "a", "kind": "numeric"}, {"name": "a", "kind": "numeric"}], "declared twice"),
        (
            [{"name": "region", "kind": "categorical", "vocabulary": ["north"]}],
            "not one of the field's values",
        ),
        ([{"name": "orders", "kind": "categorical", "vocabulary": ["x"]}], "numeric field"),
        ([{"name": "tier", "kind": "categorical"}], "needs a vocabulary"),
        ([{"name": "tier", "kind": "categorical", "vocabulary": ["a b"]}], "should match pattern"),
        ([{"name": "n", "kind": "numeric", "vocabulary": ["x"]}], "takes no vocabulary"),
        ([{"name": "n", "kind": "numeric", "feature": "profile_known"}], "twice"),
        (
            [
                {"name": "a", "kind": "multi", "match_categories": True},
                {"name": "b", "kind": "multi", "match_categories": True},
            ],
            "at most one",
        ),  # fmt: skip
    ],
)
def test_bad_declarations_are_refused(attributes: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Profile.model_validate({"attributes": attributes})


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_declaration_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    declared = [a.model_dump(mode="json", exclude_defaults=True) for a in SHOP]
    path = tmp_path / f"attributes{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps({"attribute": declared}))
    else:
        path.write_text("".join(
            "[[attribute]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in a.items()) for a in declared
        ))  # fmt: skip
    monkeypatch.setenv("LIFTSTREAM_PROFILE__ATTRIBUTES_FILE", str(path))
    assert declared_profile().attributes == SHOP
    monkeypatch.delenv("LIFTSTREAM_PROFILE__ATTRIBUTES_FILE")
    monkeypatch.setenv("LIFTSTREAM_PROFILE__ATTRIBUTES", json.dumps(declared))
    assert declared_profile().attributes == SHOP
    assert declaration_hash(SHOP) != sig.DECLARATION_HASH


def test_a_bad_declaration_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIFTSTREAM_PROFILE__ATTRIBUTES_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="invalid setting profile: .*cannot read attributes file"):
        declared_profile()


def test_profile_vector_is_float32_and_today_for_the_default() -> None:
    vec = profile_vector(profile("u", 0, is_new=True))
    assert vec.dtype == np.float32 and vec.shape == (13,)
    assert vec[PROFILE_FEATURES.index("profile_is_new")] == 1.0


def test_a_per_command_declaration_cannot_disagree_with_the_signature() -> None:
    from stream.features.state import FeatureConfig
    from stream.settings import load_settings

    with pytest.raises(ConfigError, match="differ from the declaration the model signature was built with"):
        FeatureConfig.from_settings(load_settings(profile={"attributes": [SHOP[0].model_dump()]}))
    FeatureConfig.from_settings(load_settings())
