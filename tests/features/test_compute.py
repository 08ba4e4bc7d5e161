from __future__ import annotations

import numpy as np
import pytest

from stream.features.compute import (
    RECENCY_CAP_S,
    exposure_matrices,
    promo_attr_matrix,
    promo_attrs,
    user_feature_matrix,
    user_features,
)
from stream.features.profile import NO_INTERESTS, profile_interests, profile_vector
from stream.features.promo import promo_info
from stream.features.state import (
    EMPTY,
    FeatureConfig,
    UserState,
    apply_click,
    apply_exposure,
    click_row,
    exposure_row,
)
from stream.scoring.signature import PROMO_ATTRS, USER_FEATURES
from tests.features.builders import T0, click, exposure, profile, promotion

pytestmark = pytest.mark.unit

CFG = FeatureConfig()
NOW = 100_000.0
NO_PROFILE = profile_vector(None)


def _state(*events: object) -> UserState:
    state = EMPTY
    for ev in events:
        if ev.__class__.__name__ == "ClickEvent":
            state, _ = apply_click(state, click_row(ev), CFG)  # type: ignore[arg-type]
        else:
            state, _ = apply_exposure(state, exposure_row(ev), CFG)  # type: ignore[arg-type]
    return state


def _features(state: UserState, now: float = NOW) -> dict[str, float]:
    row = user_features(state, NO_PROFILE, T0.timestamp() + now)
    assert row.shape == (len(USER_FEATURES),) and row.dtype == np.float32
    return dict(zip(USER_FEATURES, row.tolist(), strict=True))


@pytest.mark.parametrize(
    ("age", "in_5m", "in_1h", "in_24h"),
    [
        (0, 0, 0, 0),
        (-1, 0, 0, 0),
        (0.5, 1, 1, 1),
        (300, 1, 1, 1),
        (300.5, 0, 1, 1),
        (3600, 0, 1, 1),
        (3601, 0, 0, 1),
        (86400, 0, 0, 1),
        (86400.5, 0, 0, 0),
    ],
)
def test_windows_cover_now_minus_w_up_to_but_excluding_now(
    age: float, in_5m: int, in_1h: int, in_24h: int
) -> None:
    f = _features(_state(click("u", NOW - age, "purchase", price=4.0, quantity=2)))
    assert (f["5m_purchase_count"], f["1h_purchase_count"], f["24h_purchase_count"]) == (in_5m, in_1h, in_24h)
    assert (f["5m_spend"], f["1h_spend"], f["24h_spend"]) == (8 * in_5m, 8 * in_1h, 8 * in_24h)
    assert f["24h_distinct_categories"] == in_24h


def test_counts_by_kind_spend_and_distinct_categories() -> None:
    state = _state(
        click("u", NOW - 4000, "visit", category="c"),
        click("u", NOW - 40, "purchase", category=None, price=3.5, quantity=2),
        click("u", NOW - 30, "add_to_cart", category="a"),
        click("u", NOW - 20, "view", category="b"),
        click("u", NOW - 10, "view", category="a"),
    )
    f = _features(state)
    assert (f["5m_view_count"], f["5m_add_to_cart_count"], f["5m_purchase_count"], f["5m_visit_count"]) == (
        2,
        1,
        1,
        0,
    )
    assert f["24h_visit_count"] == 1 and f["1h_visit_count"] == 0
    assert f["5m_spend"] == 7.0
    assert (f["5m_distinct_categories"], f["24h_distinct_categories"]) == (2, 3)


def test_recency_and_session_ignore_events_at_or_after_now() -> None:
    state = _state(
        click("u", NOW - 500, session_id="a"),
        click("u", NOW - 300, session_id="b"),
        click("u", NOW - 100, session_id="b"),
        click("u", NOW, session_id="b"),
        click("u", NOW + 50, session_id="c"),
    )
    f = _features(state)
    assert f["recency_log_s"] == pytest.approx(np.log1p(100))
    assert f["session_events"] == 2
    assert f["session_duration_log_s"] == pytest.approx(np.log1p(200))


def test_no_history_gets_capped_recency_and_empty_session() -> None:
    f = _features(EMPTY)
    assert f["recency_log_s"] == pytest.approx(np.log1p(RECENCY_CAP_S))
    assert f["session_events"] == f["session_duration_log_s"] == f["exposures_24h"] == 0
    assert sum(v for k, v in f.items() if k.endswith("_count")) == 0


def test_recency_survives_eviction_of_the_rows() -> None:
    state = _state(click("u", 0), exposure("u", 200_000))
    assert state.clicks == ()
    f = _features(state, now=200_000)
    assert f["recency_log_s"] == pytest.approx(np.log1p(200_000))
    assert _features(state, now=10 * 86400 + 10**7)["recency_log_s"] == pytest.approx(np.log1p(RECENCY_CAP_S))


def test_exposures_counted_strictly_before_now() -> None:
    state = _state(
        exposure("u", NOW - 90_000, "p0"),
        exposure("u", NOW - 86400, "p1"),
        exposure("u", NOW - 10, "p2"),
        exposure("u", NOW - 5, "p2"),
        exposure("u", NOW, "p3"),
    )
    f = _features(state)
    assert (f["exposures_24h"], f["distinct_promotions_24h"]) == (3, 2)


def test_hour_of_now_in_utc() -> None:
    six_am = 6 * 3600.0
    f = _features(EMPTY, now=six_am)
    assert f["hour_sin"] == pytest.approx(1.0) and f["hour_cos"] == pytest.approx(0.0, abs=1e-7)


def test_batch_rows_equal_single_rows() -> None:
    states = [
        EMPTY,
        _state(click("a", NOW - 10), click("a", NOW - 5000, "purchase"), exposure("a", NOW - 7)),
        _state(click("b", NOW + 1), exposure("b", NOW - 1, "p9")),
        _state(*(click("c", NOW - 60 * i, "click", category=f"k{i % 3}") for i in range(30))),
    ]
    profiles = [
        NO_PROFILE,
        profile_vector(profile("a", 0)),
        NO_PROFILE,
        profile_vector(profile("c", 0, is_new=True)),
    ]
    interests = [NO_INTERESTS, profile_interests(profile("a", 0)), NO_INTERESTS, frozenset()]
    promos = [
        promo_info(promotion(p, 0, categories=cats))
        for p, cats in [("p1", ["shoes"]), ("p2", []), ("p3", ["k1", "shoes"]), ("p4", ["zz"])]
    ]
    now = T0.timestamp() + np.array([NOW, NOW, NOW, NOW - 30])
    users, attrs = exposure_matrices(states, profiles, interests, promos, now)
    assert users.shape == (4, len(USER_FEATURES)) and attrs.shape == (4, len(PROMO_ATTRS))
    assert np.array_equal(users, user_feature_matrix(states, np.stack(profiles), now))
    assert np.array_equal(attrs, promo_attr_matrix(promos, interests, states, now))
    for i in range(4):
        assert np.array_equal(users[i], user_features(states[i], profiles[i], now[i]))
        assert np.array_equal(attrs[i], promo_attrs(promos[i], interests[i], states[i], now[i]))


def test_empty_batch() -> None:
    users, attrs = exposure_matrices([], [], [], [], 0.0)
    assert users.shape == (0, len(USER_FEATURES)) and attrs.shape == (0, len(PROMO_ATTRS))


def test_promo_attrs_matches() -> None:
    promo = promo_info(
        promotion("p", 0, discount_type="bogo", discount_value=3.0, categories=["shoes", "hats", "hats"])
    )
    state = _state(click("u", NOW - 100, category="hats"), click("u", NOW + 5, category="shoes"))
    row = dict(
        zip(PROMO_ATTRS, promo_attrs(promo, frozenset(), state, T0.timestamp() + NOW).tolist(), strict=True)
    )
    assert (
        row["discount_bogo"] == 1.0
        and sum(v for k, v in row.items() if k.startswith("discount_") and k != "discount_value_log") == 1.0
    )
    assert row["discount_value_log"] == pytest.approx(np.log1p(3.0))
    assert row["n_categories"] == 2
    assert row["interest_match"] == 0.0
    assert row["recent_category_match"] == 1.0
    interested = profile_interests(profile("u", 0, interests=["shoes"]))
    later = promo_attrs(promo, interested, state, T0.timestamp() + NOW + 86400 - 10)
    assert dict(zip(PROMO_ATTRS, later.tolist(), strict=True))["interest_match"] == 1.0
    assert dict(zip(PROMO_ATTRS, later.tolist(), strict=True))["recent_category_match"] == 1.0
    far = promo_attrs(promo, interested, state, T0.timestamp() + NOW + 86400 + 10)
    assert far[PROMO_ATTRS.index("recent_category_match")] == 0.0


def test_session_looks_back_over_the_longest_window_only() -> None:
    f = _features(_state(click("u", NOW - 86401, session_id="old")))
    assert f["session_events"] == f["session_duration_log_s"] == 0
    assert f["recency_log_s"] == pytest.approx(np.log1p(86401))


def test_events_at_now_do_not_change_the_row() -> None:
    base = _state(click("u", NOW - 90_000), click("u", NOW - 50), exposure("u", NOW - 20))
    row = user_features(base, NO_PROFILE, T0.timestamp() + NOW)
    for ev in (click("u", NOW, "purchase"), exposure("u", NOW), click("u", NOW + 1)):
        later = _state(click("u", NOW - 90_000), click("u", NOW - 50), exposure("u", NOW - 20), ev)
        assert np.array_equal(user_features(later, NO_PROFILE, T0.timestamp() + NOW), row)
