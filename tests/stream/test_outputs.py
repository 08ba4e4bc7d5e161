"""Scoring requests, predictions and rankings built from a scored batch."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from stream.batching.assemble import assemble
from stream.batching.records import Record
from stream.batching.request import build_request
from stream.batching.scoring import Scored
from stream.batching.users import EMPTY, UserConfig, UserValue
from stream.events.models import PromotionRanking
from stream.outputs.predictions import effect_predictions
from stream.outputs.rankings import ranking, top_k
from stream.registry.promos import Promo, apply_event
from stream.scoring.signature import PROMO_ATTRS, USER_FEATURES
from tests.features.builders import at, click, exposure, profile, promotion

pytestmark = pytest.mark.unit


def _promo(pid: str, **fields: object) -> Promo:
    p = apply_event(None, promotion(pid, 0.0, **fields))
    assert p is not None
    return p


def test_top_k_orders_by_expected_incremental_revenue_then_id() -> None:
    assert top_k(["c", "a", "b", "d"], np.array([1.0, 2.0, 1.0, -5.0]), 3) == [1, 2, 0]


def test_request_rows_hold_exposures_then_each_rankings_eligible_candidates() -> None:
    events = [
        (Record("profiles", 0, 0, b"u", b"", 0.0), profile("u", 0.0, interests=["shoes"])),
        (Record("clicks", 0, 0, b"u", b"", 0.0), click("u", 60.0, category="shoes", session_id="s1")),
        (Record("exposures", 0, 0, b"u", b"", 0.0), exposure("u", 90.0, promo="p1")),
    ]
    asm = assemble(events, lambda _: EMPTY, lambda _: None, UserConfig())
    users = {uid: value for uid, (_, value) in asm.users.items()}

    def user(uid: str) -> UserValue:
        return users.get(uid, EMPTY)

    shoes, hats, stopped = _promo("p1", categories=["shoes"]), _promo("p2", categories=["hats"]), _promo("p3")
    stopped = apply_event(stopped, promotion("p3", 1.0, action="stop"))
    assert stopped is not None
    active = [p for p in (shoes, hats, stopped) if p.active]
    request = build_request([(asm.exposures[0], shoes)], list(asm.rankings.values()), user, active)
    assert request.promotion_ids == ["p1", "p1"]  # the exposure, then the one eligible candidate
    assert request.user_features.shape == (2, len(USER_FEATURES))
    assert request.promo_attrs.shape == (2, len(PROMO_ATTRS))
    # Each row is as of its own time: the exposure sees the click at 60 s, the ranking (at that click) not.
    clicks_5m = USER_FEATURES.index("5m_view_count")
    assert request.user_features[:, clicks_5m].tolist() == [1.0, 0.0]

    scored_at = datetime(2026, 1, 1, tzinfo=UTC)
    uplift = np.array([[0.1, 0.05, 2.0], [0.2, 0.1, 3.0]], dtype=np.float32)
    control = np.full((2, 3), 0.5, dtype=np.float32)
    scored = Scored(request, control + uplift, control, 7, scored_at)
    (prediction,) = effect_predictions(scored)
    assert prediction.event_id == events[2][1].event_id  # type: ignore[union-attr]
    assert prediction.model_version == 7 and prediction.expected_incremental_revenue == pytest.approx(2.0)
    assert prediction.visit.uplift == pytest.approx(0.1) and prediction.event_ts == at(90.0)
    assert prediction.latency_ms == pytest.approx(scored_at.timestamp() * 1000.0)
    ranked: PromotionRanking = ranking(request.rankings[0], scored, k=5)
    assert ranked.session_id == "s1" and ranked.model_version == 7
    assert [(r.promotion_id, r.expected_incremental_revenue) for r in ranked.ranked] == [
        ("p1", pytest.approx(3.0))
    ]


def test_an_empty_request_has_no_rows() -> None:
    request = build_request([], [], lambda _: EMPTY, [])
    assert len(request) == 0 and request.user_features.shape == (0, len(USER_FEATURES))
