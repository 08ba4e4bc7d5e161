from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from stream.errors import DecodeError
from stream.events import gate
from stream.events.gate import REASONS, dead_letter, decode, decode_batch, encode
from stream.events.models import INPUT_EVENTS, MAX_MESSAGE_BYTES, DeadLetter

from .samples import sample_events
from .strategies import event_fields

pytestmark = pytest.mark.unit

NOW = datetime(2024, 6, 2, tzinfo=UTC)


def _fields(topic: str) -> dict[str, object]:
    return sample_events()[topic].model_dump(mode="json")


def _changed(topic: str = "clicks", **changes: object) -> bytes:
    return json.dumps({**_fields(topic), **changes}, allow_nan=True).encode()


def _without(name: str, topic: str = "clicks") -> bytes:
    return json.dumps({k: v for k, v in _fields(topic).items() if k != name}).encode()


def _good(topic: str = "clicks") -> bytes:
    return encode(sample_events()[topic])


# One message per dead-letter reason; together they must cover the whole vocabulary.
REASON_CASES: dict[str, tuple[str, Callable[[], bytes | None]]] = {
    gate.OVERSIZED: ("clicks", lambda: _good() + b" " * MAX_MESSAGE_BYTES),
    gate.MALFORMED_JSON: ("clicks", lambda: _good()[:-3]),
    gate.INVALID_UTF8: ("clicks", lambda: _good().replace(b'"u1"', b'"u\xc3\x281"')),
    gate.NOT_AN_OBJECT: ("exposures", lambda: b'["x-1", "u1"]'),
    gate.UNKNOWN_SCHEMA_VERSION: ("profiles", lambda: _changed("profiles", schema_version=2)),
    gate.MISSING_FIELD: ("exposures", lambda: _without("arm", "exposures")),
    gate.WRONG_TYPE: ("clicks", lambda: _changed(price="59.90")),
    gate.OUT_OF_RANGE: ("promotions", lambda: _changed("promotions", holdout_fraction=1.5)),
    gate.UNKNOWN_ENUM: ("promotions", lambda: _changed("promotions", discount_type="half_price")),
    gate.NON_FINITE: ("clicks", lambda: _changed(price=float("inf"))),
    gate.FUTURE_TIMESTAMP: ("exposures", lambda: _changed("exposures", ts="2999-01-01T00:00:00Z")),
    gate.UNKNOWN_TOPIC: ("predictions", _good),
    gate.INVALID: ("clicks", lambda: _changed(user_id="user one")),
}


def test_reason_cases_cover_the_vocabulary() -> None:
    assert set(REASON_CASES) == REASONS


@pytest.mark.parametrize("reason", sorted(REASON_CASES))
def test_each_reason(reason: str) -> None:
    topic, build = REASON_CASES[reason]
    with pytest.raises(DecodeError) as caught:
        decode(topic, build())
    assert caught.value.reason == reason
    assert caught.value.detail


@pytest.mark.parametrize(
    ("topic", "raw", "reason"),
    [
        ("clicks", None, gate.MALFORMED_JSON),
        ("clicks", b"", gate.MALFORMED_JSON),
        ("clicks", b"42", gate.NOT_AN_OBJECT),
        ("clicks", _changed(quantity=True), gate.WRONG_TYPE),
        ("clicks", _changed(quantity=2.0), gate.WRONG_TYPE),
        ("clicks", _changed(quantity=2.5), gate.WRONG_TYPE),
        ("clicks", _changed(ts=1717243815), gate.WRONG_TYPE),
        ("clicks", _changed(ts="2024-06-01T12:30:15"), gate.WRONG_TYPE),
        ("clicks", _changed(ts="0001-01-01T00:00:00+05:00"), gate.OUT_OF_RANGE),
        ("clicks", _changed(quantity=10**30), gate.OUT_OF_RANGE),
        ("clicks", _changed(category="x" * 65), gate.OUT_OF_RANGE),
        ("clicks", _changed(price=1e400), gate.NON_FINITE),
        ("clicks", _changed(category=float("nan")), gate.NON_FINITE),
        ("clicks", _good().replace(b'"price":59.9', b'"price":-Infinity'), gate.NON_FINITE),
        ("clicks", _changed(schema_version="1"), gate.UNKNOWN_SCHEMA_VERSION),
        ("clicks", _changed(schema_version=2, kind="teleport", price="free"), gate.UNKNOWN_SCHEMA_VERSION),
        ("clicks", _changed(kind="teleport", price="free"), gate.WRONG_TYPE),
        ("promotions", _changed("promotions", goal={"outcome": "happiness"}), gate.UNKNOWN_ENUM),
        ("promotions", _changed("promotions", categories="shoes"), gate.WRONG_TYPE),
        ("profiles", _changed("profiles", is_new=1), gate.WRONG_TYPE),
        ("profiles", _changed("profiles", extra_field=1), gate.INVALID),
        ("exposures", b"[" * 5000, gate.MALFORMED_JSON),
    ],
)
def test_classification(topic: str, raw: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(topic, raw)
    assert caught.value.reason == reason


def test_detail_names_the_fields() -> None:
    with pytest.raises(DecodeError) as caught:
        decode("clicks", _changed(price="1", quantity="2", session_id=3, user_id=4, item_id=5))
    assert caught.value.reason == gate.WRONG_TYPE
    assert caught.value.detail.count(": Input should be") == 3
    assert caught.value.detail.endswith("(+2 more errors)")


@pytest.mark.parametrize("topic", list(INPUT_EVENTS))
def test_valid_events_decode_to_equal_models(topic: str, events: dict[str, BaseModel]) -> None:
    assert event_fields(decode(topic, encode(events[topic]))) == event_fields(events[topic])


def test_encode_is_the_history_wire_format(events: dict[str, BaseModel]) -> None:
    assert encode(events["clicks"]) == events["clicks"].model_dump_json().encode()


def test_absent_schema_version_means_the_current_one() -> None:
    assert decode("clicks", _without("schema_version")).schema_version == 1


def test_message_at_the_size_limit_is_accepted() -> None:
    good = _good()
    assert decode("clicks", good + b" " * (MAX_MESSAGE_BYTES - len(good))).event_id == "c-1"


def test_dead_letter_carries_everything_and_round_trips() -> None:
    raw = _good()[:-1]
    with pytest.raises(DecodeError) as caught:
        decode("clicks", raw)
    letter = dead_letter("prod.clicks", 3, 1234, b"u1", raw, caught.value, NOW)
    assert letter.reason == gate.MALFORMED_JSON
    assert letter.error == str(caught.value)
    assert (letter.source_topic, letter.partition, letter.offset, letter.received_at) == (
        "prod.clicks",
        3,
        1234,
        NOW,
    )
    assert base64.b64decode(letter.payload_b64) == raw
    assert base64.b64decode(letter.key_b64 or "") == b"u1"
    assert DeadLetter.model_validate_json(encode(letter), strict=True) == letter


def test_dead_letter_of_a_tombstone_without_key() -> None:
    letter = dead_letter("clicks", 0, 7, None, None, DecodeError(gate.MALFORMED_JSON, "empty"), NOW)
    assert letter.key_b64 is None
    assert letter.payload_b64 == ""


def test_dead_letter_of_a_huge_message_is_bounded() -> None:
    raw = b"x" * (gate.MAX_DEAD_LETTER_PAYLOAD_BYTES + 10)
    letter = dead_letter("clicks", 0, 7, None, raw, DecodeError(gate.OVERSIZED, "big"), NOW)
    assert base64.b64decode(letter.payload_b64) == raw[: gate.MAX_DEAD_LETTER_PAYLOAD_BYTES]
    assert "truncated" in letter.error
    assert len(encode(letter)) < 1_000_000


def test_decode_batch_splits_in_order() -> None:
    records = [
        (0, 10, b"u1", _good()),
        (0, 11, None, b"{"),
        (1, 5, b"u1", _changed(event_id="c-2")),
        (1, 6, b"k", _changed(kind="teleport")),
    ]
    events, dead = decode_batch("clicks", records, source_topic="prod.clicks", now=NOW)
    assert [e.event_id for e in events] == ["c-1", "c-2"]  # type: ignore[union-attr]
    assert [(d.partition, d.offset, d.reason) for d in dead] == [
        (0, 11, gate.MALFORMED_JSON),
        (1, 6, gate.UNKNOWN_ENUM),
    ]
    assert {d.source_topic for d in dead} == {"prod.clicks"}
    assert {d.received_at for d in dead} == {NOW}


def test_decode_batch_without_dead_letters() -> None:
    events, dead = decode_batch("exposures", [(0, 0, None, _good("exposures"))])
    assert len(events) == 1
    assert dead == []
