"""Decoding gate: raw Kafka bytes → a valid input event, or a `DeadLetter` that says why not.

The hot path is one msgspec decode of the bytes into a Struct (stream/events/fast.py) for user events.
A message it refuses, and every promotion, goes to one `model_validate_json` call in strict mode (no
dict round trip, no coercion of strings to numbers or booleans to integers); only a failure there pays
for classifying the pydantic errors into the small fixed vocabulary of dead-letter reasons below.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from pydantic import BaseModel, ValidationError

from stream.errors import DecodeError
from stream.events import fast
from stream.events.models import (
    INPUT_EVENTS,
    MAX_MESSAGE_BYTES,
    ClickEvent,
    DeadLetter,
    ExposureEvent,
    PromotionEvent,
    UserProfileEvent,
)

# A user event is a Struct of stream/events/fast.py where it read the message, else the pydantic model:
# dispatch on these (isinstance accepts them), not on the model classes alone. The Structs mirror the
# models field for field (tests/events/test_fast.py), so to the type checker they are the models.
if TYPE_CHECKING:
    AnyClick: TypeAlias = ClickEvent
    AnyExposure: TypeAlias = ExposureEvent
    AnyProfile: TypeAlias = UserProfileEvent
else:
    AnyClick = ClickEvent | fast.Click
    AnyExposure = ExposureEvent | fast.Exposure
    AnyProfile = UserProfileEvent | fast.Profile
Event: TypeAlias = AnyClick | AnyExposure | AnyProfile | PromotionEvent
Record: TypeAlias = tuple[int, int, bytes | None, bytes | None]
"""(partition, offset, key, value) of one consumed message."""

OVERSIZED = "oversized"
MALFORMED_JSON = "malformed_json"
INVALID_UTF8 = "invalid_utf8"
NOT_AN_OBJECT = "not_an_object"
UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
UNKNOWN_ENUM = "unknown_enum"
NON_FINITE = "non_finite"
FUTURE_TIMESTAMP = "future_timestamp"
UNKNOWN_TOPIC = "unknown_topic"
INVALID = "invalid"

# When a message breaks several rules, the reason reported is the most fundamental one: a message of an
# unknown schema version is not judged by this version's field rules at all.
_PRIORITY = (
    UNKNOWN_SCHEMA_VERSION,
    NOT_AN_OBJECT,
    NON_FINITE,
    MISSING_FIELD,
    WRONG_TYPE,
    UNKNOWN_ENUM,
    OUT_OF_RANGE,
    FUTURE_TIMESTAMP,
    INVALID,
)
REASONS = frozenset(
    (OVERSIZED, MALFORMED_JSON, INVALID_UTF8, UNKNOWN_TOPIC, *_PRIORITY),
)

_ERROR_TYPES = {
    "missing": MISSING_FIELD,
    "finite_number": NON_FINITE,
    "enum": UNKNOWN_ENUM,
    "literal_error": UNKNOWN_ENUM,
    "future_timestamp": FUTURE_TIMESTAMP,
    "timezone_aware": WRONG_TYPE,
    "int_from_float": WRONG_TYPE,
    "greater_than": OUT_OF_RANGE,
    "greater_than_equal": OUT_OF_RANGE,
    "less_than": OUT_OF_RANGE,
    "less_than_equal": OUT_OF_RANGE,
    "string_too_long": OUT_OF_RANGE,
    "string_too_short": OUT_OF_RANGE,
    "too_long": OUT_OF_RANGE,
    "too_short": OUT_OF_RANGE,
    "datetime_out_of_range": OUT_OF_RANGE,
}
_MAX_DETAILS = 3
_MAX_ERROR_CHARS = 4096
# A dead letter must itself fit in a Kafka message (1 MiB by default) after base64's 4/3 growth.
MAX_DEAD_LETTER_PAYLOAD_BYTES = 4 * MAX_MESSAGE_BYTES


def decode(topic: str, raw: bytes | None, *, ignore_extra: bool = False) -> Event:
    """Validates one message of the input topic `topic` (a key of `INPUT_EVENTS`); raises `DecodeError`.

    Fields no model names are refused (reason `invalid`) unless `ignore_extra` (`events.extra_fields`)."""
    model = INPUT_EVENTS.get(topic)
    if model is None:
        raise DecodeError(UNKNOWN_TOPIC, f"no input event is published on topic {topic[:64]!r}")
    if raw is None:
        raise DecodeError(MALFORMED_JSON, "empty message (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise DecodeError(OVERSIZED, f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    event = fast.decode(topic, raw, ignore_extra=ignore_extra)
    if event is not None:
        return cast(Event, event)
    try:
        extra: Literal["ignore"] | None = "ignore" if ignore_extra else None
        return cast(Event, model.model_validate_json(raw, strict=True, extra=extra))
    except ValidationError as exc:
        raise _classify(raw, exc) from exc


def encode(event: BaseModel) -> bytes:
    """Wire bytes of an event: exactly `model_dump_json()`, the format history files and producers share."""
    return event.model_dump_json().encode()


def dead_letter(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    raw: bytes | None,
    error: DecodeError,
    now: datetime,
) -> DeadLetter:
    """The dead-letter record of a message `decode` rejected; `topic` is the real source topic name."""
    payload = raw or b""
    text = str(error)
    if len(payload) > MAX_DEAD_LETTER_PAYLOAD_BYTES:
        text += f" (payload truncated to the first {MAX_DEAD_LETTER_PAYLOAD_BYTES} of {len(payload)} bytes)"
        payload = payload[:MAX_DEAD_LETTER_PAYLOAD_BYTES]
    return DeadLetter(
        reason=error.reason,
        error=text[:_MAX_ERROR_CHARS],
        source_topic=topic[:249],
        partition=max(partition, -1),
        offset=max(offset, -1),
        key_b64=None if key is None else base64.b64encode(key).decode("ascii"),
        payload_b64=base64.b64encode(payload).decode("ascii"),
        received_at=now,
    )


def decode_batch(
    topic: str,
    records: Iterable[Record],
    *,
    source_topic: str | None = None,
    now: datetime | None = None,
) -> tuple[list[Event], list[DeadLetter]]:
    """Splits a batch into valid events and dead letters, both in input order.

    `topic` names the event type (a key of `INPUT_EVENTS`); `source_topic` is the real Kafka topic the
    records came from when deployments rename topics (defaults to `topic`).
    """
    events: list[Event] = []
    dead: list[DeadLetter] = []
    for partition, offset, key, value in records:
        try:
            events.append(decode(topic, value))
        except DecodeError as exc:
            now = now or datetime.now(UTC)
            dead.append(dead_letter(source_topic or topic, partition, offset, key, value, exc, now))
    return events, dead


def _classify(raw: bytes, exc: ValidationError) -> DecodeError:
    errors = exc.errors(include_url=False, include_context=False)
    if errors[0]["type"] == "json_invalid":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return DecodeError(INVALID_UTF8, f"byte {bad.start}: {bad.reason}")
        return DecodeError(MALFORMED_JSON, errors[0]["msg"])
    reasons = [_reason(error) for error in errors]
    reason = min(reasons, key=_PRIORITY.index)
    shown = [error for error, r in zip(errors, reasons, strict=True) if r == reason][:_MAX_DETAILS]
    detail = "; ".join(f"{_path(error['loc'])}: {error['msg']}" for error in shown)
    if len(errors) > len(shown):
        detail += f" (+{len(errors) - len(shown)} more errors)"
    return DecodeError(reason, detail)


def _reason(error: Any) -> str:
    kind, loc, value = error["type"], error["loc"], error.get("input")
    if loc == ("schema_version",):
        # A version this code does not know is not a field error: the message follows another contract.
        return UNKNOWN_SCHEMA_VERSION
    if isinstance(value, float) and not math.isfinite(value):
        return NON_FINITE
    if not loc and kind in ("model_type", "model_attributes_type", "dict_type"):
        return NOT_AN_OBJECT
    if kind in _ERROR_TYPES:
        return _ERROR_TYPES[kind]
    if kind.endswith(("_type", "_parsing")):
        return WRONG_TYPE
    return INVALID


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(message)"
