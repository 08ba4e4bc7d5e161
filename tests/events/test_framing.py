"""The Schema Registry wire format at the gate: framed input passes, a wrong id or header is dead-lettered,
the registry is asked once per new id per batch, and an outage makes the batch wait, not dead-letter.

The registry is `tests/events/fake_registry.py`, a fake of the REST protocol (no registry program runs
offline); Confluent's own JSON Schema serializer writes the framed messages of one test.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient as ConfluentClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from stream.batching.records import Decoded, Record, decode_records
from stream.errors import DecodeError
from stream.events import framing
from stream.events.framing import MALFORMED_FRAME, UNKNOWN_SCHEMA_ID, Framing, framing_for, split
from stream.events.gate import encode
from stream.events.models import ClickEvent
from stream.events.schema_registry import SchemaRegistryClient
from stream.events.schemas import topic_schema
from stream.settings import load_settings

from .fake_registry import serve
from .samples import sample_events
from .strategies import event_fields

pytestmark = pytest.mark.unit

NOW = datetime(2024, 6, 2, tzinfo=UTC)
NAMES = {"clicks": "clicks", "exposures": "exposures", "profiles": "profiles", "promotions": "promotions"}
SUBJECTS = {topic: f"{name}-value" for topic, name in NAMES.items()}
CLICK = encode(sample_events()["clicks"])
CLICK_SCHEMA = json.dumps(topic_schema("clicks"))


def frame(schema_id: int, payload: bytes) -> bytes:
    """`payload` in the wire format, as Confluent's serializers write it."""
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def _records(*values: bytes, topic: str = "clicks") -> list[Record]:
    return [Record(topic, 0, i, b"u1", v, 0.0) for i, v in enumerate(values)]


def _decode(records: list[Record], with_framing: Framing = framing.UNCHECKED) -> Decoded:
    return decode_records(records, NAMES, NOW, framing=with_framing)


def test_split_tells_framed_from_plain() -> None:
    assert split(CLICK) == (None, CLICK)
    assert split(frame(7, CLICK)) == (7, CLICK)
    assert split(frame(2**32 - 1, b"{}")) == (2**32 - 1, b"{}")
    with pytest.raises(DecodeError) as bad:
        split(b"\x00\x00\x01")
    assert bad.value.reason == MALFORMED_FRAME


def test_without_a_registry_a_framed_message_passes_the_gate_unchecked() -> None:
    decoded = _decode(_records(frame(42, CLICK), CLICK))
    assert [event_fields(event) for _, event in decoded.valid] == [
        event_fields(sample_events()["clicks"])
    ] * 2
    assert decoded.dead == []


def test_a_bad_frame_is_a_dead_letter_with_the_message_as_it_came() -> None:
    short, broken = b"\x00\x00\x00", frame(1, CLICK[:-2])
    decoded = _decode(_records(short, broken))
    assert [d.reason for d in decoded.dead] == [MALFORMED_FRAME, "malformed_json"]
    assert [base64.b64decode(d.payload_b64) for d in decoded.dead] == [short, broken]


async def test_a_framed_message_with_the_subjects_id_passes_and_a_wrong_id_is_a_dead_letter() -> None:
    with serve() as (url, registry):
        good = registry.register("clicks-value", CLICK_SCHEMA)
        other = registry.register("exposures-value", json.dumps(topic_schema("exposures")))
        checked = Framing(SUBJECTS, SchemaRegistryClient(url))
        records = _records(frame(good, CLICK), frame(other, CLICK), frame(999, CLICK), CLICK)
        await checked.resolve((r.topic, r.value) for r in records)
        decoded = _decode(records, checked)
    assert [r.offset for r, _ in decoded.valid] == [0, 3]
    assert [(d.offset, d.reason) for d in decoded.dead] == [(1, UNKNOWN_SCHEMA_ID), (2, UNKNOWN_SCHEMA_ID)]
    assert "schema id 999 is not registered under subject 'clicks-value'" in decoded.dead[1].error


async def test_confluents_json_schema_serializer_output_passes_the_gate() -> None:
    """The framing Confluent's producers really write: their serializer registers the schema (auto.register)
    and frames the event; the worker checks the id against the same registry."""
    event = sample_events()["clicks"]
    with serve() as (url, _):
        serializer = JSONSerializer(CLICK_SCHEMA, ConfluentClient({"url": url}))
        raw = serializer(event.model_dump(mode="json"), SerializationContext("clicks", MessageField.VALUE))
        assert raw is not None
        checked = framing_for(load_settings(schema_registry={"url": url}), NAMES)
        await checked.resolve([("clicks", raw)])
        decoded = _decode(_records(raw), checked)
    assert raw[0] == 0
    assert [event_fields(e) for _, e in decoded.valid] == [event_fields(event)] and decoded.dead == []


async def test_the_registry_is_asked_once_per_batch_with_new_ids_and_refusals_are_cached() -> None:
    now = [0.0]
    with serve() as (url, registry):
        good = registry.register("clicks-value", CLICK_SCHEMA)
        checked = Framing(SUBJECTS, SchemaRegistryClient(url), clock=lambda: now[0])
        batch = [("clicks", frame(good, CLICK)), ("clicks", frame(77, CLICK)), ("clicks", frame(78, CLICK))]
        await checked.resolve(batch * 100)
        lists = len([r for r in registry.requests if r == ("GET", "/subjects/clicks-value/versions")])
        assert lists == 1
        await checked.resolve(batch)  # every id decided: no request
        assert len(registry.requests) == 2  # the list and version 1

        now[0] += framing.REFUSAL_TTL_S - 1
        await checked.resolve(batch)
        assert len(registry.requests) == 2
        # Registered since: the next lookup after the refusal expires finds it, without re-reading version 1.
        late = registry.register("clicks-value", json.dumps({**topic_schema("clicks"), "title": "v2"}))
        assert late != good
        now[0] += 1
        await checked.resolve([("clicks", frame(late, CLICK))])
        assert registry.requests[2:] == [
            ("GET", "/subjects/clicks-value/versions"),
            ("GET", "/subjects/clicks-value/versions/2"),
        ]
    assert checked.unframe("clicks", frame(late, CLICK)) == CLICK


async def test_an_unreachable_registry_makes_the_batch_wait_then_it_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(framing, "BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(framing, "BACKOFF_MAX_S", 0.05)
    with serve() as (url, registry):
        good = registry.register("clicks-value", CLICK_SCHEMA)
        registry.down = True
        checked = Framing(SUBJECTS, SchemaRegistryClient(url))
        waiting = asyncio.create_task(checked.resolve([("clicks", frame(good, CLICK))]))
        await asyncio.sleep(0.3)
        assert not waiting.done() and len(registry.requests) > 2
        registry.down = False
        await asyncio.wait_for(waiting, 5)
    assert checked.unframe("clicks", frame(good, CLICK)) == CLICK


def test_decoding_a_framed_message_the_registry_was_not_asked_about_is_a_bug() -> None:
    checked = Framing(SUBJECTS, SchemaRegistryClient("http://127.0.0.1:9"))
    with pytest.raises(RuntimeError, match="not resolved"):
        checked.unframe("clicks", frame(1, CLICK))


def test_the_subject_follows_the_topic_name_and_template() -> None:
    settings = load_settings(
        topic_policy={"prefix": "eu."},
        schema_registry={"url": "http://registry:8081", "subject_template": "liftstream.{topic}"},
    )
    names = {t: getattr(settings.topics, t) for t in NAMES}
    subjects = framing_for(settings, names)._subjects
    assert {t: s.name for t, s in subjects.items()} == {t: f"liftstream.eu.{t}" for t in NAMES}


def test_extra_fields_are_dead_lettered_unless_the_policy_ignores_them() -> None:
    extra = json.dumps({**json.loads(CLICK), "coupon": "X", "schema_note": {"a": 1}}).encode()
    refused = decode_records(_records(frame(3, extra)), NAMES, NOW)
    assert [d.reason for d in refused.dead] == ["invalid"]
    assert "coupon" in refused.dead[0].error
    kept = decode_records(_records(frame(3, extra)), NAMES, NOW, ignore_extra=True)
    assert [event_fields(e) for _, e in kept.valid] == [event_fields(ClickEvent.model_validate_json(CLICK))]
    assert load_settings().events.extra_fields == "dead_letter"
    assert load_settings(events={"extra_fields": "ignore"}).events.extra_fields == "ignore"


async def test_the_workers_decode_step_resolves_then_checks_framed_input() -> None:
    """stream/agents/engine.py: the agents resolve a batch's ids, then decode under the input policy."""
    from types import SimpleNamespace

    from stream.agents.engine import Engine

    extra = json.dumps({**json.loads(CLICK), "coupon": "X"}).encode()
    with serve() as (url, registry):
        good = registry.register("eu.clicks-value", CLICK_SCHEMA)
        settings = load_settings(schema_registry={"url": url}, events={"extra_fields": "ignore"})
        names = {**NAMES, "clicks": "eu.clicks"}
        engine: Any = SimpleNamespace(settings=settings, names=names, framing=framing_for(settings, names))
        records = [Record("clicks", 0, 0, b"u1", frame(good, extra), 0.0)]
        records.append(Record("clicks", 0, 1, b"u1", frame(good + 1, CLICK), 0.0))
        await Engine.resolve_schema_ids(engine, records)
        decoded = Engine.decode(engine, records, NOW)
    assert [r.offset for r, _ in decoded.valid] == [0]
    assert [(d.source_topic, d.reason) for d in decoded.dead] == [("eu.clicks", UNKNOWN_SCHEMA_ID)]
