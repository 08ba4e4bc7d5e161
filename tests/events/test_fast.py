"""The msgspec Structs read a message only as the pydantic models do: the same values of the same types.

A Struct may refuse what pydantic reads (the gate then asks pydantic); it must never read what pydantic
refuses, nor read a message to other values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from stream.events import fast, gate
from stream.events.bench import valid_payloads
from stream.events.models import INPUT_EVENTS
from stream.features.declaration import Attribute
from stream.scoring import signature

from .samples import sample_events
from .strategies import JSON_VALUES, MUTANTS, ODD, WIRE_TIMES, event_fields

pytestmark = pytest.mark.unit

USER_TOPICS = ("clicks", "exposures", "profiles")
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SAMPLES = {topic: sample_events()[topic].model_dump(mode="json") for topic in USER_TOPICS}
DECLARED = (
    Attribute(name="points", kind="numeric", transform="log1p"),
    Attribute(name="tier", kind="categorical", vocabulary=("gold", "silver")),
    Attribute(name="tags", kind="multi"),
    Attribute(name="score", kind="numeric"),
)


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiles may carry the attributes of DECLARED (the process's declaration is fixed at import)."""
    monkeypatch.setattr(signature, "DECLARATION", DECLARED)


def _agree(topic: str, raw: bytes, ignore_extra: bool = False) -> str:
    """Checks that msgspec reads `raw` only as pydantic does; says who read it, for hypothesis' events."""
    struct = fast.decode(topic, raw, ignore_extra=ignore_extra)
    try:
        model = INPUT_EVENTS[topic].model_validate_json(
            raw, strict=True, extra="ignore" if ignore_extra else None
        )
    except ValidationError:
        model = None
    if struct is not None:
        assert model is not None, f"msgspec reads what pydantic refuses: {raw[:300]!r}"
        assert event_fields(struct) == event_fields(model)
    return f"msgspec {'reads' if struct else 'refuses'}, pydantic {'reads' if model else 'refuses'}"


def _json(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, allow_nan=True).encode()


@pytest.mark.parametrize("topic", USER_TOPICS)
def test_valid_events_take_the_fast_path(topic: str) -> None:
    for raw in [gate.encode(sample_events()[topic]), *valid_payloads(topic, 50)]:
        assert isinstance(gate.decode(topic, raw), fast.Click | fast.Exposure | fast.Profile)
        _agree(topic, raw)


def test_promotions_stay_pydantic() -> None:
    assert fast.decode("promotions", gate.encode(sample_events()["promotions"])) is None


@FUZZ
@given(topic=st.sampled_from(USER_TOPICS), data=st.data(), ignore_extra=st.booleans())
def test_mutated_fields(topic: str, data: st.DataObject, ignore_extra: bool) -> None:
    fields = dict(SAMPLES[topic])
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(sorted(fields)) | st.text(max_size=12))
        if data.draw(st.booleans()):
            fields.pop(name, None)
        else:
            fields[name] = data.draw(ODD | MUTANTS)
    event(_agree(topic, _json(fields), ignore_extra))


@FUZZ
@given(topic=st.sampled_from(USER_TOPICS), ts=WIRE_TIMES)
def test_any_event_time(topic: str, ts: str) -> None:
    event(_agree(topic, _json({**SAMPLES[topic], "ts": ts})))


@FUZZ
@given(value=JSON_VALUES, ignore_extra=st.booleans())
def test_arbitrary_json(value: object, ignore_extra: bool) -> None:
    for topic in USER_TOPICS:
        event(_agree(topic, _json(value), ignore_extra))


@FUZZ
@given(topic=st.sampled_from(USER_TOPICS), data=st.data(), ignore_extra=st.booleans())
def test_byte_edits(topic: str, data: st.DataObject, ignore_extra: bool) -> None:
    raw = bytearray(_json(SAMPLES[topic]))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        cut = data.draw(st.integers(0, 3))
        raw[at : at + cut] = data.draw(st.binary(max_size=4))
    event(_agree(topic, bytes(raw), ignore_extra))


@pytest.mark.usefixtures("declared")
@FUZZ
@given(attributes=st.dictionaries(st.sampled_from(["points", "tier", "tags", "score", "x", "Bad"]), ODD))
def test_declared_attributes(attributes: dict[str, object]) -> None:
    event(_agree("profiles", _json({**SAMPLES["profiles"], "attributes": attributes})))


@pytest.mark.parametrize(
    "raw",
    [
        # Digits past the microsecond: truncated, as pydantic does (msgspec's datetime would round).
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T00:00:00.9999999Z","kind":"view"}',
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T23:30:00-02:30","kind":"view"}',
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T00:00:00\\u002e5Z","kind":"view"}',
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T00:00:00","kind":"view"}',
        b'{"event_id":"x","user_id":"u\\n","session_id":"s","ts":"2024-06-01T00:00:00Z","kind":"view"}',
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T00:00:00Z","kind":"view","item_id":""}',
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T00:00:00Z","kind":"view","item_id":null}',
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T00:00:00Z","kind":"view","price":5}',
        b'{"event_id":"x","user_id":"u","user_id":"v","session_id":"s","ts":"2024-06-01T00:00:00Z","kind":"view"}',
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T00:00:00Z","kind":"view","quantity":2.0}',
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T00:00:00Z","kind":"view","quantity":true}',
        b'{"event_id":"x","user_id":"u","session_id":"s","ts":"2024-06-01T00:00:00Z","kind":"view","price":1e400}',
        b'{"schema_version":true,"user_id":"u","ts":"2024-06-01T00:00:00Z"}',
        b'{"user_id":"u","ts":"2024-06-01T00:00:00Z","segment":"a\\u0000b\\ud800"}',
        b'{"user_id":"u","ts":"0001-01-01T00:00:00+05:00"}',
        b'{"user_id":"u","ts":"9999-12-31T23:59:59-05:00"}',
    ],
)
@pytest.mark.parametrize("ignore_extra", [False, True])
def test_odd_messages(raw: bytes, ignore_extra: bool) -> None:
    _agree("profiles" if b"session_id" not in raw else "clicks", raw, ignore_extra)


def test_far_future_is_left_to_pydantic() -> None:
    soon, late = (datetime.now(UTC) + timedelta(hours=h) for h in (23, 25))
    assert fast.decode("exposures", _json({**SAMPLES["exposures"], "ts": soon.isoformat()})) is not None
    assert fast.decode("exposures", _json({**SAMPLES["exposures"], "ts": late.isoformat()})) is None


@pytest.mark.parametrize("ignore_extra", [False, True])
def test_extra_fields_follow_the_policy(ignore_extra: bool) -> None:
    raw = _json({**SAMPLES["clicks"], "colour": "red"})
    assert (fast.decode("clicks", raw, ignore_extra=ignore_extra) is not None) is ignore_extra
    _agree("clicks", raw, ignore_extra)
