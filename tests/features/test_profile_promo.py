from __future__ import annotations

import numpy as np
import pytest

from stream.features.profile import PROFILE_FEATURES, profile_interests, profile_vector
from stream.features.promo import promo_info, promo_text
from stream.features.state import stable_hash
from stream.scoring.signature import PROMO_ATTRS, USER_FEATURES
from tests.features.builders import profile, promotion

pytestmark = pytest.mark.unit


def test_profile_columns_are_the_signature_slice() -> None:
    assert len(PROFILE_FEATURES) == 13
    assert all(name.startswith("profile_") for name in PROFILE_FEATURES)
    assert [n for n in USER_FEATURES if n.startswith("profile_")] == list(PROFILE_FEATURES)


def test_profile_vector_values() -> None:
    vec = profile_vector(
        profile(
            "u",
            0,
            tenure_days=30,
            lifetime_spend=99.0,
            orders=0,
            recency_days=2,
            channel="phone",
            region="suburban",
            is_new=True,
        )
    )
    row = dict(zip(PROFILE_FEATURES, vec.tolist(), strict=True))
    assert vec.dtype == np.float32
    assert row["profile_tenure_log_days"] == pytest.approx(np.log1p(30))
    assert row["profile_lifetime_spend_log"] == pytest.approx(np.log1p(99.0))
    assert row["profile_orders_log"] == 0.0
    assert row["profile_recency_log_days"] == pytest.approx(np.log1p(2))
    assert [
        k for k, v in row.items() if k.startswith(("profile_channel_", "profile_region_")) and v == 1.0
    ] == ["profile_channel_phone", "profile_region_suburban"]
    assert row["profile_is_new"] == row["profile_known"] == 1.0


def test_unknown_profile() -> None:
    assert profile_vector(None).tolist() == [0.0] * len(PROFILE_FEATURES)
    assert profile_interests(None) == frozenset()
    assert profile_interests(profile("u", 0, interests=["a", "b"])) == {stable_hash("a"), stable_hash("b")}


def test_promo_info_static_attrs_and_text() -> None:
    event = promotion(
        "p7",
        0,
        title="Spring",
        description="Shoes half price",
        discount_type="amount_off",
        discount_value=15.0,
        categories=["shoes", "bags"],
        version=3,
    )
    info = promo_info(event)
    assert promo_text(event) == info.text == "Spring. Shoes half price"
    assert (info.promotion_id, info.campaign_id, info.version) == ("p7", "camp-p7", 3)
    assert info.categories == {stable_hash("shoes"), stable_hash("bags")}
    static = dict(zip(PROMO_ATTRS, info.static_attrs, strict=False))
    assert static == {
        "discount_percent": 0.0,
        "discount_amount_off": 1.0,
        "discount_bogo": 0.0,
        "discount_free_shipping": 0.0,
        "discount_bundle": 0.0,
        "discount_value_log": pytest.approx(np.log1p(15.0)),
        "n_categories": 2.0,
    }
