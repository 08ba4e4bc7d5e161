"""msgspec twins of the user-event wire models: the hot-path decode of clicks, exposures and profiles.

The pydantic models (stream/events/models.py) stay the contract: the JSON Schemas, the dead-letter reasons
and every message these Structs refuse. A message they accept decodes to what the pydantic model would
give, field by field and type by type (tests/events/test_fast.py checks it on arbitrary input); one they
refuse goes to the pydantic gate, which accepts it (a form only pydantic reads) or says why not. So a
Struct may be stricter than its model, never laxer.

Promotions have no twin: they are rare, and the registry keeps and serialises them as pydantic models.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Literal, TypeAlias

import msgspec
from msgspec import Meta
from msgspec.structs import force_setattr

from stream.events.models import (
    MAX_FUTURE,
    SCHEMA_VERSION,
    Arm,
    Channel,
    ClickKind,
    Region,
    _utc,
)

Text64 = Annotated[str, Meta(max_length=64)]
Money = Annotated[float, Meta(ge=0.0, le=1e7)]
Days = Annotated[int, Meta(ge=0, le=36500)]
# pydantic matches patterns with Rust's regex, whose `$` is only the end of the text; Python's also
# matches before a final newline, hence `\Z`.
AttributeName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,47}\Z")]
# No int: pydantic's strict smart union reads a JSON integer as the float member.
AttributeValue = bool | float | Text64 | Annotated[list[Text64], Meta(max_length=32)]

if TYPE_CHECKING:
    EventTime: TypeAlias = datetime
else:
    # Read as text and parsed in __post_init__: msgspec's own datetime rounds digits past the
    # microsecond where pydantic truncates them (Java's Instant writes nanoseconds).
    EventTime = str

# A message's event time and ids, joined by newlines, are checked in one match: a pattern per field costs
# msgspec a Python regex call each, most of the decode. Only RFC 3339 with an offset is read here; any
# other time pydantic may read is left to it. A newline cannot occur in an id, so each is matched whole;
# an absent optional id is left blank.
_ID = r"[A-Za-z0-9_.:\-]{1,128}"
_TIME = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_CLICK = re.compile(rf"{_TIME}(?:\n{_ID}){{3}}(?:\n(?:{_ID})?){{2}}")
_EXPOSURE = re.compile(rf"{_TIME}(?:\n{_ID}){{4}}")
_PROFILE = re.compile(rf"{_TIME}\n{_ID}")
_MAX_FUTURE_S = MAX_FUTURE.total_seconds()


def _event_time(pattern: re.Pattern[str], checked: str, ts: str) -> datetime:
    """The event time `ts`, once `checked` (it, then the ids) matches `pattern`."""
    if pattern.fullmatch(checked) is None:
        raise ValueError("an id or the event time is not in a form read here")
    # fromisoformat truncates digits past the microsecond, as pydantic does.
    at = datetime.fromisoformat(ts)
    if at.tzinfo is not UTC:
        at = _utc(at)
    # The model's rule (`_not_far_future`), on the epoch clock: datetime.now() costs more than the rest.
    if at.timestamp() - time.time() > _MAX_FUTURE_S:
        raise ValueError("timestamp is more than a day in the future")
    return at


class Click(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str
    user_id: str
    session_id: str
    ts: EventTime
    kind: ClickKind
    item_id: str | None = None
    category: Text64 | None = None
    price: Money = 0.0
    quantity: Annotated[int, Meta(ge=0, le=1000)] = 1
    promotion_id: str | None = None

    def __post_init__(self) -> None:
        if self.item_id == "" or self.promotion_id == "":  # blank is how an absent one is checked
            raise ValueError("an optional id is empty")
        item = "" if self.item_id is None else self.item_id
        promotion = "" if self.promotion_id is None else self.promotion_id
        checked = f"{self.ts}\n{self.event_id}\n{self.user_id}\n{self.session_id}\n{item}\n{promotion}"
        force_setattr(self, "ts", _event_time(_CLICK, checked, self.ts))  # type: ignore[arg-type]


class Exposure(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str
    user_id: str
    promotion_id: str
    campaign_id: str
    ts: EventTime
    arm: Arm

    def __post_init__(self) -> None:
        checked = f"{self.ts}\n{self.event_id}\n{self.user_id}\n{self.promotion_id}\n{self.campaign_id}"
        force_setattr(self, "ts", _event_time(_EXPOSURE, checked, self.ts))  # type: ignore[arg-type]


class Profile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    schema_version: Literal[1] = SCHEMA_VERSION
    user_id: str
    ts: EventTime
    tenure_days: Days = 0
    lifetime_spend: Money = 0.0
    orders: Annotated[int, Meta(ge=0, le=1_000_000)] = 0
    recency_days: Days = 0
    channel: Channel = Channel.web
    region: Region = Region.urban
    segment: Text64 = ""
    interests: Annotated[list[Text64], Meta(max_length=32)] = []
    is_new: bool = False
    attributes: Annotated[dict[AttributeName, AttributeValue], Meta(max_length=64)] = {}

    def __post_init__(self) -> None:
        checked = f"{self.ts}\n{self.user_id}"
        force_setattr(self, "ts", _event_time(_PROFILE, checked, self.ts))  # type: ignore[arg-type]
        if self.attributes:
            # Imported here, as in the model: the declaration and the signature import the models.
            from stream.features.declaration import check_attributes
            from stream.scoring.signature import DECLARATION

            check_attributes(self.attributes, DECLARATION)


# `events.extra_fields`: the same Structs, ignoring the fields they do not name.
class _LaxClick(Click, frozen=True, forbid_unknown_fields=False): ...


class _LaxExposure(Exposure, frozen=True, forbid_unknown_fields=False): ...


class _LaxProfile(Profile, frozen=True, forbid_unknown_fields=False): ...


UserEvent: TypeAlias = Click | Exposure | Profile

_DECODERS: dict[tuple[str, bool], msgspec.json.Decoder[UserEvent]] = {
    (topic, ignore_extra): msgspec.json.Decoder(lax if ignore_extra else strict)
    for topic, strict, lax in (
        ("clicks", Click, _LaxClick),
        ("exposures", Exposure, _LaxExposure),
        ("profiles", Profile, _LaxProfile),
    )
    for ignore_extra in (False, True)
}


def decode(topic: str, raw: bytes, *, ignore_extra: bool = False) -> UserEvent | None:
    """The event of message `raw` of input `topic`; None when this topic has no Struct or it refuses
    the message (the pydantic gate then decides, and says why)."""
    decoder = _DECODERS.get((topic, ignore_extra))
    if decoder is None:
        return None
    if ignore_extra and not raw.isascii() and not _utf8(raw):
        return None  # msgspec skips an unknown field unread: bad UTF-8 there is pydantic's to refuse
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError:  # ValidationError too, and __post_init__'s ValueErrors as one
        return None


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
