"""Train/serve parity: the stream's event-at-a-time path and build_dataset give identical exposure rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from models.dataset import build_dataset
from stream.events.models import INPUT_EVENTS, ClickEvent, ExposureEvent, PromotionEvent, UserProfileEvent
from stream.features.compute import exposure_matrices, promo_attrs, user_features
from stream.features.profile import profile_interests, profile_vector
from stream.features.promo import PromoInfo, promo_info
from stream.features.state import (
    EMPTY,
    FeatureConfig,
    UserState,
    apply_click,
    apply_exposure,
    click_row,
    exposure_row,
)
from stream.history import TOPICS, write_history
from stream.scoring.signature import USER_FEATURES
from tests.features.builders import T0, click, exposure, profile, promotion

pytestmark = pytest.mark.unit

# Small caps so that capping and eviction happen in a short history.
CONFIG = FeatureConfig(allowed_lateness_s=600, max_events=12, max_exposures=4)
KINDS = ("view", "click", "add_to_cart", "purchase", "visit")


def _events(
    seed: int = 3,
) -> tuple[list[PromotionEvent], list[UserProfileEvent], list[ExposureEvent], list[ClickEvent]]:
    rng = np.random.default_rng(seed)
    promotions = [
        promotion("p1", 0, categories=["shoes", "hats"]),
        promotion("p2", 500, discount_type="free_shipping", discount_value=0.0, categories=[]),
        promotion("p1", 90_000, action="update", version=2, title="Bigger deal", discount_value=25.0),
        promotion("p2", 150_000, action="stop"),
    ]
    users = [f"u{i}" for i in range(10)]
    profiles = [
        profile(
            u,
            float(rng.uniform(0, 50_000)),
            tenure_days=int(rng.integers(0, 900)),
            interests=list(rng.choice(["shoes", "hats", "bags"], 2)),
        )
        for u in users[:7]
    ]
    profiles.append(profile("u0", 100_000, channel="web", region="urban", is_new=True))
    clicks: list[ClickEvent] = []
    for user in users:
        for s in range(int(rng.integers(1, 8))):
            t = float(rng.uniform(0, 200_000))
            for _ in range(int(rng.integers(1, 12))):
                t += float(rng.exponential(90.0))
                clicks.append(
                    click(
                        user,
                        round(t, 3),
                        str(rng.choice(KINDS)),
                        session_id=f"{user}-{s}",
                        category=rng.choice(["shoes", "hats", "bags", None]),
                        price=float(rng.integers(1, 50)),
                        quantity=int(rng.integers(1, 3)),
                    )
                )
    exposures = [
        exposure(
            str(rng.choice(users)),
            float(rng.uniform(1000, 200_000)),
            str(rng.choice(["p1", "p2"])),
            str(rng.choice(["treatment", "holdout"])),
        )
        for _ in range(120)
    ]
    # Exposures at the very instant of one of the user's clicks.
    exposures += [exposure(c.user_id, (c.ts - T0).total_seconds(), "p1") for c in clicks[5:300:25]]
    return promotions, profiles, exposures, clicks


def _stream_rows(
    promotions: list[PromotionEvent],
    profiles: list[UserProfileEvent],
    exposures: list[ExposureEvent],
    clicks: list[ClickEvent],
    topics: tuple[str, ...],
    config: FeatureConfig,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """What the Faust agents do: one event at a time, every table value a JSON document.

    Events go in event-time order; `topics` orders events of equal time.
    """
    order = {topic: rank for rank, topic in enumerate(topics)}
    timeline = sorted(
        [
            (e.ts, order[topic], i, topic, e)
            for topic, evs in (
                ("promotions", promotions),
                ("profiles", profiles),
                ("exposures", exposures),
                ("clicks", clicks),
            )
            for i, e in enumerate(evs)
        ],
        key=lambda item: item[:3],
    )
    user_table: dict[str, bytes] = {}
    profile_table: dict[str, bytes] = {}
    registry: dict[str, PromoInfo] = {}
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    batch: list[tuple[str, UserState, np.ndarray, frozenset[int], PromoInfo, float]] = []

    def load(user: str) -> UserState:
        return UserState.from_json(orjson.loads(user_table[user])) if user in user_table else EMPTY

    for *_, topic, event in timeline:
        event = INPUT_EVENTS[topic].model_validate_json(event.model_dump_json())  # the Kafka hop
        if topic == "promotions":
            if event.action != "stop":
                registry[event.promotion_id] = promo_info(event)
        elif topic == "profiles":
            doc = {"v": profile_vector(event).tolist(), "i": sorted(profile_interests(event))}
            profile_table[event.user_id] = orjson.dumps(doc)
        elif topic == "clicks":
            state, _ = apply_click(load(event.user_id), click_row(event), config)
            user_table[event.user_id] = orjson.dumps(state.to_json())
        else:
            state = load(event.user_id)
            doc: dict[str, Any] = orjson.loads(profile_table.get(event.user_id, b'{"v": null, "i": []}'))
            vec = profile_vector(None) if doc["v"] is None else np.array(doc["v"], dtype=np.float32)
            interests, promo, now = frozenset(doc["i"]), registry[event.promotion_id], event.ts.timestamp()
            rows[event.event_id] = (user_features(state, vec, now), promo_attrs(promo, interests, state, now))
            batch.append((event.event_id, state, vec, interests, promo, now))
            state, _ = apply_exposure(state, exposure_row(event), config)
            user_table[event.user_id] = orjson.dumps(state.to_json())

    ids, states, vecs, interests_, promos, nows = zip(*batch, strict=True)
    users, attrs = exposure_matrices(list(states), list(vecs), list(interests_), list(promos), np.array(nows))
    for i, event_id in enumerate(ids):
        assert np.array_equal(users[i], rows[event_id][0]) and np.array_equal(attrs[i], rows[event_id][1])
    return rows


# Replaying the history into Kafka gives its own tie order; a live stream may deliver a click before an
# exposure of the same instant, which changes nothing while the user's rows are under the cap.
CLICKS_FIRST = ("promotions", "profiles", "clicks", "exposures")


@pytest.mark.parametrize(("topics", "config"), [(TOPICS, CONFIG), (CLICKS_FIRST, FeatureConfig())])
def test_stream_path_and_dataset_builder_agree(
    tmp_path: Path, topics: tuple[str, ...], config: FeatureConfig
) -> None:
    promotions, profiles, exposures, clicks = _events()
    write_history(
        tmp_path,
        promotions,
        profiles,
        exposures,
        clicks,
        None,
        {"source": "test", "attribution_window_s": 3600},
    )
    ds = build_dataset(tmp_path, config=config)
    streamed = _stream_rows(promotions, profiles, exposures, clicks, topics, config)

    assert len(ds) == len(exposures) == len(streamed)
    assert sorted(ds.event_ids.tolist()) == sorted(streamed)
    for i, event_id in enumerate(ds.event_ids):
        user_row, attr_row = streamed[event_id]
        assert np.array_equal(ds.user_features[i], user_row), event_id
        assert np.array_equal(ds.promo_attrs[i], attr_row), event_id
    # The history exercises what it is meant to: windows, sessions, profiles, repeated exposures, ties.
    col = {name: ds.user_features[:, i] for i, name in enumerate(USER_FEATURES)}
    assert (col["5m_view_count"] > 0).any() and (col["session_events"] > 1).any()
    assert set(col["profile_known"].tolist()) == {0.0, 1.0}
    assert (col["distinct_promotions_24h"] > 1).any()
    assert ds.meta["applied"] == {"clicks_applied": len(clicks), "exposures_applied": len(exposures)}
