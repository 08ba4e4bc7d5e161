from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from stream.events.models import INPUT_EVENTS, OUTPUT_EVENTS, CampaignEffect, ClickEvent

pytestmark = pytest.mark.unit

TOPICS = [*INPUT_EVENTS, *OUTPUT_EVENTS]


def test_samples_cover_every_topic(events: dict[str, BaseModel]) -> None:
    assert {topic: type(event) for topic, event in events.items()} == {**INPUT_EVENTS, **OUTPUT_EVENTS}


@pytest.mark.parametrize("topic", TOPICS)
def test_round_trips_through_json(topic: str, events: dict[str, BaseModel]) -> None:
    event = events[topic]
    wire = event.model_dump_json()
    again = type(event).model_validate_json(wire, strict=True)
    assert again == event
    assert again.model_dump_json() == wire


@pytest.mark.parametrize("topic", TOPICS)
def test_models_are_frozen_and_closed(topic: str, events: dict[str, BaseModel]) -> None:
    event = events[topic]
    with pytest.raises(ValidationError):
        type(event).model_validate({**event.model_dump(), "unexpected": 1})
    with pytest.raises(ValidationError):
        event.schema_version = 2  # type: ignore[attr-defined]


def test_timestamps_are_normalised_to_utc() -> None:
    ts = datetime(2024, 6, 1, 14, 0, tzinfo=UTC).astimezone(tz=None).isoformat()
    event = ClickEvent.model_validate_json(
        f'{{"event_id":"e","user_id":"u","session_id":"s","ts":"{ts}","kind":"view"}}'
    )
    assert event.ts.tzinfo is UTC
    assert event.ts == datetime(2024, 6, 1, 14, 0, tzinfo=UTC)


def test_event_time_may_lead_by_less_than_a_day() -> None:
    ts = datetime.now(UTC) + timedelta(hours=23)
    event = ClickEvent(event_id="e", user_id="u", session_id="s", ts=ts, kind="view")  # type: ignore[arg-type]
    assert event.ts == ts


def test_output_timestamps_outside_datetime_range_fail_validation(events: dict[str, BaseModel]) -> None:
    fields = events["campaign-effects"].model_dump(mode="json")
    fields["emitted_at"] = "0001-01-01T00:00:00+05:00"
    with pytest.raises(ValidationError, match="out of range"):
        CampaignEffect.model_validate(fields)
