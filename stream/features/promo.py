"""Promotion registry entries: the text the encoder reads and the user-independent promotion attributes."""

from __future__ import annotations

import math
from dataclasses import dataclass

from stream.events.models import PromotionEvent
from stream.features.state import stable_hash
from stream.scoring.signature import DISCOUNT_TYPES, PROMO_ATTRS

# The first STATIC_ATTRS columns of PROMO_ATTRS depend on the promotion only; the rest on the user too.
STATIC_ATTRS = PROMO_ATTRS.index("interest_match")


@dataclass(frozen=True, slots=True)
class PromoInfo:
    promotion_id: str
    campaign_id: str
    version: int
    text: str
    categories: frozenset[int]
    static_attrs: tuple[float, ...]


def promo_text(promotion: PromotionEvent) -> str:
    """What the promotion encoder reads, the same in training and in the stream."""
    return f"{promotion.title}. {promotion.description}"


def promo_info(promotion: PromotionEvent) -> PromoInfo:
    values = {
        **{f"discount_{d}": float(promotion.discount_type.value == d) for d in DISCOUNT_TYPES},
        "discount_value_log": math.log1p(promotion.discount_value),
        "n_categories": float(len(set(promotion.categories))),
    }
    return PromoInfo(
        promotion_id=promotion.promotion_id,
        campaign_id=promotion.campaign_id,
        version=promotion.version,
        text=promo_text(promotion),
        categories=frozenset(stable_hash(c) for c in promotion.categories),
        static_attrs=tuple(values[name] for name in PROMO_ATTRS[:STATIC_ATTRS]),
    )
