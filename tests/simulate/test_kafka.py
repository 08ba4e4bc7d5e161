from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from stream.events.models import INPUT_EVENTS, ClickEvent
from stream.history import TOPICS, iter_malformed, iter_raw, write_history
from stream.settings import Settings, load_settings
from stream.simulate.config import SimConfig
from stream.simulate.history_mode import write_simulation
from stream.simulate.live import produce_live
from stream.simulate.replay import raw_key, replay_history

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Received = dict[
    str, list[tuple[int, bytes | None, bytes]]
]  # topic -> (partition, key, value) in offset order


def _settings(bootstrap: str, prefix: str) -> Settings:
    return load_settings(kafka={"bootstrap": bootstrap}, topics={t: f"{prefix}-{t}" for t in TOPICS})


async def _consume(settings: Settings, expected: int, timeout_s: float = 30.0) -> Received:
    names = {getattr(settings.topics, t): t for t in TOPICS}
    consumer = AIOKafkaConsumer(
        *names,
        bootstrap_servers=settings.kafka.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got: Received = defaultdict(list)
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while sum(map(len, got.values())) < expected and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                got[names[tp.topic]].extend((tp.partition, r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return got


async def test_replay_round_trips_every_byte(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    write_simulation(SimConfig(seed=2, users=60, days=1.0, malformed_rate=0.05), tmp_path)
    settings = _settings(kafka_bootstrap, topic_prefix)
    stats = await replay_history(settings, tmp_path, include_malformed=True)
    files = {t: list(iter_raw(tmp_path, t)) for t in TOPICS}
    bad = list(iter_malformed(tmp_path))
    assert stats.sent == sum(map(len, files.values())) + len(bad) and stats.malformed == len(bad) > 0

    got = await _consume(settings, stats.sent)
    for topic in TOPICS:
        valid = [(k, v) for _, k, v in got[topic] if k is not None]
        assert sorted(v for _, v in valid) == sorted(files[topic]), topic
        assert all(k == raw_key(topic, v) for k, v in valid)
        by_partition: dict[int, list[datetime]] = defaultdict(list)
        for partition, key, value in got[topic]:
            if key is not None:
                by_partition[partition].append(datetime.fromisoformat(orjson.loads(value)["ts"]))
        assert all(ts == sorted(ts) for ts in by_partition.values())  # event-time order within a partition
    received_bad = sorted(v for topic in TOPICS for _, k, v in got[topic] if k is None)
    assert received_bad == sorted(r.payload for r in bad)


async def test_replay_speed_compresses_event_time(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    clicks = [ClickEvent(event_id=f"c{i}", user_id="u", session_id="s", ts=t0 + timedelta(seconds=10 * i),
                         kind="view") for i in range(3)]  # fmt: skip
    write_history(tmp_path, [], [], [], clicks, None, {})
    stats = await replay_history(_settings(kafka_bootstrap, topic_prefix), tmp_path, speed=20.0)
    assert stats.sent == 3 and 0.95 <= stats.elapsed_s < 5.0


async def test_live_mode_produces_n_valid_and_malformed_messages(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = _settings(kafka_bootstrap, topic_prefix)
    config = SimConfig(seed=4, users=400, days=1.0, malformed_rate=0.1)
    began = datetime.now(UTC)
    stats = await produce_live(settings, config, rate=None, events=1500)
    assert stats.sent == 1500 and sum(stats.by_topic.values()) == 1500

    got = await _consume(settings, 1500)
    assert sum(map(len, got.values())) == 1500
    valid, invalid = 0, 0
    for topic, records in got.items():
        for _, key, value in records:
            try:
                event = INPUT_EVENTS[topic].model_validate_json(value)
            except ValueError:
                invalid += 1
                continue
            valid += 1
            assert key == raw_key(topic, value)
            assert began - timedelta(days=3) < event.ts <= datetime.now(UTC)  # recent, never in the future
    assert (valid, invalid) == (1500 - stats.malformed, stats.malformed) and stats.malformed > 0
