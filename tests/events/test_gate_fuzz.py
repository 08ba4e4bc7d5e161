"""No input makes the gate raise anything but a DecodeError with a reason from the vocabulary."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from stream.errors import DecodeError
from stream.events.gate import REASONS, dead_letter, decode, encode
from stream.events.models import INPUT_EVENTS, DeadLetter

from .samples import sample_events
from .strategies import JSON_VALUES, MUTANTS, TIMESTAMPS, event_fields

pytestmark = pytest.mark.unit

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
TOPICS = st.sampled_from(sorted(INPUT_EVENTS))
SAMPLES = {topic: sample_events()[topic] for topic in INPUT_EVENTS}
TIME_FIELDS = {
    topic: [name for name, field in model.model_fields.items() if "datetime" in str(field.annotation)]
    for topic, model in INPUT_EVENTS.items()
}


def _check(topic: str, raw: bytes) -> None:
    try:
        decoded = decode(topic, raw)
    except DecodeError as exc:
        event(exc.reason)
        assert exc.reason in REASONS
        letter = dead_letter(topic, 0, 1, None, raw, exc, datetime.now(UTC))
        assert DeadLetter.model_validate_json(encode(letter), strict=True) == letter
    else:
        event("valid")
        model = INPUT_EVENTS[topic]
        again = model.model_validate_json(raw, strict=True)
        assert event_fields(decoded) == event_fields(again)
        assert event_fields(decode(topic, encode(again))) == event_fields(again)


@FUZZ
@given(topic=TOPICS, raw=st.binary(max_size=512))
def test_arbitrary_bytes(topic: str, raw: bytes) -> None:
    _check(topic, raw)


@FUZZ
@given(topic=TOPICS, value=JSON_VALUES)
def test_arbitrary_json_values(topic: str, value: object) -> None:
    _check(topic, json.dumps(value, allow_nan=True).encode())


@FUZZ
@given(topic=TOPICS, data=st.data())
def test_mutated_valid_events(topic: str, data: st.DataObject) -> None:
    fields = SAMPLES[topic].model_dump(mode="json")
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(sorted(fields)) | st.text(max_size=12))
        if data.draw(st.booleans()):
            fields.pop(name, None)
        else:
            fields[name] = data.draw(MUTANTS)
    _check(topic, json.dumps(fields, allow_nan=True).encode())


@FUZZ
@given(topic=TOPICS, data=st.data())
def test_any_timestamp(topic: str, data: st.DataObject) -> None:
    fields = SAMPLES[topic].model_dump(mode="json")
    name = data.draw(st.sampled_from(TIME_FIELDS[topic]))
    fields[name] = data.draw(TIMESTAMPS)
    _check(topic, json.dumps(fields).encode())


@FUZZ
@given(topic=TOPICS, data=st.data())
def test_byte_edits_of_valid_events(topic: str, data: st.DataObject) -> None:
    raw = bytearray(encode(SAMPLES[topic]))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        cut = data.draw(st.integers(0, 3))
        raw[at : at + cut] = data.draw(st.binary(max_size=4))
    _check(topic, bytes(raw))
