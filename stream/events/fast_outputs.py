"""msgspec twins of the hot outputs, `EffectPrediction` and `PromotionRanking`: built and encoded per batch.

Building the pydantic model validates what the engine already validated (the exposure at the gate, the
scores in stream/scoring/validate.py) and dominates the cost of an output. These Structs name the same
fields in the same order, so `encode` writes the bytes `model_dump_json()` writes for UTC times and for
floats under 1e16 in magnitude; a larger float is written `1e16` where pydantic writes `1e+16`, the same
number (tests/events/test_fast_outputs.py). The pydantic models stay the schema consumers validate against.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from stream.events.models import SCHEMA_VERSION, Arm


class OutcomeScores(msgspec.Struct, frozen=True, gc=False):
    p_treated: float
    p_control: float
    uplift: float


class EffectPrediction(msgspec.Struct, frozen=True, kw_only=True):
    schema_version: int = SCHEMA_VERSION
    event_id: str
    user_id: str
    promotion_id: str
    campaign_id: str
    arm: Arm
    model_version: int
    visit: OutcomeScores
    conversion: OutcomeScores
    revenue: OutcomeScores
    expected_incremental_revenue: float
    event_ts: datetime
    scored_at: datetime
    latency_ms: float


class RankedPromotion(msgspec.Struct, frozen=True, gc=False):
    promotion_id: str
    campaign_id: str
    expected_incremental_revenue: float
    uplift_conversion: float


class PromotionRanking(msgspec.Struct, frozen=True, kw_only=True):
    schema_version: int = SCHEMA_VERSION
    user_id: str
    session_id: str
    model_version: int
    ranked: list[RankedPromotion]
    scored_at: datetime


encode = msgspec.json.Encoder().encode
"""The wire bytes of a Struct of this module."""
