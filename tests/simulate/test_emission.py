from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from stream.events.models import INPUT_EVENTS
from stream.simulate.clock import RHYTHM, Clock
from stream.simulate.config import DEFAULT_START, SimConfig
from stream.simulate.live import live_messages

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 28, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def messages() -> list:
    return live_messages(SimConfig(seed=9, users=300, days=1.0, malformed_rate=0.02), NOW)


def test_live_time_ends_at_now_and_never_later(messages: list) -> None:
    ts = [m.ts_ms for m in messages if m.valid]
    assert max(ts) <= NOW.timestamp() * 1000
    assert NOW.timestamp() * 1000 - max(ts) < 6 * 3600 * 1000  # the world runs up to (nearly) now


def test_arrival_order_has_a_few_late_events_within_the_allowed_lateness(messages: list) -> None:
    valid = [m for m in messages if m.valid]
    ts = np.array([m.ts_ms for m in valid])
    behind = np.maximum.accumulate(ts) - ts
    assert 0.002 < np.mean(behind > 0) < 0.05
    assert behind.max() <= 300_000
    for m in valid[:50]:
        assert int(datetime.fromisoformat(orjson.loads(m.value)["ts"]).timestamp() * 1000) == m.ts_ms


def test_keys_and_malformed_messages(messages: list) -> None:
    for m in messages:
        if m.valid:
            event = INPUT_EVENTS[m.topic].model_validate_json(m.value)
            expected = event.promotion_id if m.topic == "promotions" else event.user_id
            assert m.key == expected.encode()
    bad = [m for m in messages if not m.valid]
    assert 0.005 < len(bad) / len(messages) < 0.04


def test_same_seed_same_live_bytes(messages: list) -> None:
    again = live_messages(SimConfig(seed=9, users=300, days=1.0, malformed_rate=0.02), NOW)
    assert [(m.topic, m.key, m.value) for m in again] == [(m.topic, m.key, m.value) for m in messages]


@pytest.mark.parametrize("start", [DEFAULT_START, datetime(2026, 3, 1, 17, 45, 30, tzinfo=UTC)])
def test_clock_follows_the_daily_rhythm_from_any_start(start: datetime) -> None:
    clock = Clock(start)
    ms = np.array([0, 1, 3_599_999, 86_400_000 * 2 + 12_345])
    assert np.array_equal(clock.inverse(clock.cumulative(ms)), ms)
    times = clock.sample(
        np.random.default_rng(0), np.zeros(100_000, np.int64), np.full(100_000, 86_400_000 * 7)
    )
    hours = np.bincount(((times + clock.phase_ms) // 3_600_000) % 24, minlength=24) / len(times) * 24
    assert np.allclose(hours, RHYTHM, atol=0.1)
