"""Small event factories for feature tests: times are seconds after a fixed UTC instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from stream.events.models import ClickEvent, ExposureEvent, PromotionEvent, UserProfileEvent

T0 = datetime(2024, 3, 1, tzinfo=UTC)
_ids = count()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def click(user: str, t: float, kind: str = "view", **fields: object) -> ClickEvent:
    values: dict[str, object] = {"session_id": f"{user}-s1", "category": "shoes", "price": 10.0} | fields
    return ClickEvent(event_id=f"c{next(_ids)}", user_id=user, ts=at(t), kind=kind, **values)  # type: ignore[arg-type]


def exposure(user: str, t: float, promo: str = "p1", arm: str = "treatment") -> ExposureEvent:
    return ExposureEvent(
        event_id=f"x{next(_ids)}",
        user_id=user,
        promotion_id=promo,
        campaign_id=f"camp-{promo}",
        ts=at(t),
        arm=arm,  # type: ignore[arg-type]
    )


def promotion(promo: str, t: float, **fields: object) -> PromotionEvent:
    values: dict[str, object] = {
        "action": "start",
        "title": f"Deal {promo}",
        "description": "Ten percent off shoes",
        "discount_type": "percent",
        "discount_value": 10.0,
        "categories": ["shoes"],
    } | fields
    return PromotionEvent(promotion_id=promo, campaign_id=f"camp-{promo}", ts=at(t), **values)  # type: ignore[arg-type]


def profile(user: str, t: float, **fields: object) -> UserProfileEvent:
    values: dict[str, object] = {
        "tenure_days": 100,
        "lifetime_spend": 250.0,
        "orders": 3,
        "recency_days": 7,
        "channel": "mobile",
        "region": "rural",
        "interests": ["shoes"],
    } | fields
    return UserProfileEvent(user_id=user, ts=at(t), **values)  # type: ignore[arg-type]
