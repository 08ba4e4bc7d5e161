"""Hypothesis strategies of odd wire input, and a comparison of decoded events of either kind."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
from hypothesis import strategies as st
from pydantic import BaseModel

# Any wall time with any whole-hour offset, Z, or none: the edges of the datetime range live here.
TIMESTAMPS = st.builds(
    lambda at, offset: at.isoformat() + offset,
    st.datetimes()
    | st.datetimes(max_value=datetime(1, 1, 2))
    | st.datetimes(min_value=datetime(9999, 12, 30)),
    st.sampled_from(["", "Z"]) | st.integers(-23, 23).map(lambda h: f"{h:+03d}:00"),
)
SCALARS = (
    st.none()
    | TIMESTAMPS
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["view", "purchase", "treatment", "bogo", "stop", "mobile", ""])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Replacement field values: timestamps and scalars as often as nested structures.
MUTANTS = st.one_of(TIMESTAMPS, SCALARS, JSON_VALUES)


def event_fields(event: object) -> dict[str, tuple[type, str]]:
    """Field → (type, repr) of a pydantic model or a Struct: equal only for the same values of the same
    types (repr tells -0.0 from 0.0, an int from a float, and shows a datetime's tzinfo)."""
    values: dict[str, Any] = (
        dict(event) if isinstance(event, BaseModel) else msgspec.structs.asdict(event)  # type: ignore[arg-type]
    )
    return {name: (type(value), repr(value)) for name, value in values.items()}


# RFC 3339 and its neighbours: any separator, 0 to 12 fraction digits, odd offsets, years at the edges.
def _stamp(at: datetime, sep: str, digits: int, fraction: str, offset: str) -> str:
    return at.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{fraction[:digits]}" if digits else "") + offset


WIRE_TIMES = st.builds(
    _stamp,
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31))
    | st.datetimes(
        min_value=datetime.now() - timedelta(days=3), max_value=datetime.now() + timedelta(days=3)
    ),
    st.sampled_from(["T", "t", " ", "_", "X"]),
    st.integers(0, 12),
    st.text("0123456789", min_size=12, max_size=12),
    st.sampled_from(
        ["Z", "z", "", "+00:00", "-00:00", "+0100", "+01", "+23:59", "-23:59", "+24:00", "+05:60"]
    )
    | st.builds(lambda h, m: f"{h:+03d}:{m:02d}", st.integers(-25, 25), st.integers(0, 61)),
)
IDS = st.text(
    st.sampled_from("aZ09_.:-") | st.sampled_from(["\n", "\t", " ", "\x00", "é", "ß", "\u2028", "٣"]),
    max_size=130,
) | st.text("abc", min_size=126, max_size=130)
ODD = st.one_of(
    WIRE_TIMES,
    IDS,
    st.integers(-(2**70), 2**70) | st.sampled_from([2**63, -(2**63) - 1, 10**400, 0, -1, 1000, 1001]),
    st.floats() | st.sampled_from([-0.0, 1e7, 1e7 + 1e-9, 5e-324, 1e308]),
    st.text(max_size=70) | st.text(st.characters(codec="utf-8"), max_size=70),
    st.lists(st.text(max_size=66), max_size=34),
)
