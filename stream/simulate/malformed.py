"""Invalid payloads derived from valid events: what a careless or hostile producer puts on a topic.

Every kind breaks exactly one rule the decoding gate enforces, so the dead-letter reasons can be checked.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import orjson

from stream.events.models import MAX_MESSAGE_BYTES

KINDS: tuple[str, ...] = (
    "bad_json", "wrong_type", "missing_field", "nan",
    "unknown_enum", "far_future", "oversized", "unknown_schema",
)  # fmt: skip
_ENUM = {"clicks": "kind", "promotions": "action", "exposures": "arm", "profiles": "channel"}
_NUMBER = {"clicks": "price", "promotions": "discount_value", "exposures": "schema_version",
           "profiles": "lifetime_spend"}  # fmt: skip
_REQUIRED = {"clicks": "session_id", "promotions": "campaign_id", "exposures": "arm", "profiles": "user_id"}
_STRING = {"clicks": "user_id", "promotions": "promotion_id", "exposures": "user_id", "profiles": "user_id"}


def corrupt(rng: np.random.Generator, topic: str, value: bytes) -> bytes:
    """A payload for `topic` that must be rejected, made from the valid message `value`."""
    kind = KINDS[int(rng.integers(len(KINDS)))]
    if kind == "bad_json":
        return value[: int(rng.integers(1, len(value)))]
    doc = orjson.loads(value)
    if kind == "wrong_type":
        doc[_STRING[topic]] = int(rng.integers(1, 1_000_000))
    elif kind == "missing_field":
        del doc[_REQUIRED[topic]]
    elif kind == "nan":
        doc[_NUMBER[topic]] = float("nan")
    elif kind == "unknown_enum":
        doc[_ENUM[topic]] = "teleport"
    elif kind == "far_future":
        doc["ts"] = (datetime.fromisoformat(doc["ts"]) + timedelta(days=3650)).isoformat()
    elif kind == "oversized":
        doc[_STRING[topic]] = "x" * (MAX_MESSAGE_BYTES + 1024)
    else:
        doc["schema_version"] = 99
    return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()
