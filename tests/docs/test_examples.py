"""The examples of docs/integrate.md (docs/examples/*.py), run against the real local Kafka.

The examples are what a producer or consumer team would copy, so they import nothing of liftstream; the
tests check them with liftstream's own rules (the partitioner the worker enforces, the gate, the models).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Producer

from stream.batching.contract import partition_for
from stream.batching.records import Record, decode_records
from stream.events.framing import framing_for
from stream.events.gate import encode
from stream.events.models import EffectPrediction, PromotionRanking, RankedPromotion
from stream.settings import load_settings
from tests.events.fake_registry import serve
from tests.events.samples import sample_events
from tests.events.strategies import event_fields

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
PARTITIONS = 4


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _create(bootstrap: str, *topics: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
    finally:
        await admin.close()


async def _read(bootstrap: str, topic: str, n: int) -> list[Any]:
    """The first `n` messages of `topic` (all partitions), read without a group."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        got: list[Any] = []
        async with asyncio.timeout(30):
            while len(got) < n:
                got += [m for ms in (await consumer.getmany(timeout_ms=500)).values() for m in ms]
        return got
    finally:
        await consumer.stop()


async def _publish(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Publishes (key, value) pairs as the worker does: aiokafka, its default (murmur2) partitioner."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(topic, value, key=key) for key, value in messages])
    finally:
        await producer.stop()


async def _flush(producer: Producer) -> None:
    assert await asyncio.to_thread(producer.flush, 30) == 0


async def test_the_producer_example_places_every_user_where_the_worker_expects(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    example = _example("produce_events")
    ours, default = f"{topic_prefix}-clicks", f"{topic_prefix}-default-clicks"
    await _create(kafka_bootstrap, ours, default, f"{topic_prefix}.promotions", f"{topic_prefix}.exposures",
                  f"{topic_prefix}.clicks")  # fmt: skip
    clicks = [
        {"event_id": f"k-{i}", "user_id": f"user-{i % 20}", "session_id": "s", "ts": "2026-03-01T10:00:00Z",
         "kind": "view"}
        for i in range(60)
    ]  # fmt: skip
    producer = example.event_producer(kafka_bootstrap)
    librdkafka_default = Producer({"bootstrap.servers": kafka_bootstrap})
    for click in clicks:
        example.send(producer, "clicks", click, topic=ours)
        example.send(librdkafka_default, "clicks", click, topic=default)
    await _flush(producer)
    await _flush(librdkafka_default)

    placed = await _read(kafka_bootstrap, ours, len(clicks))
    assert all(m.partition == partition_for(m.key, PARTITIONS) for m in placed)
    assert {json.loads(m.value)["user_id"] for m in placed} == {c["user_id"] for c in clicks}
    elsewhere = await _read(kafka_bootstrap, default, len(clicks))
    assert any(m.partition != partition_for(m.key, PARTITIONS) for m in elsewhere)

    # The script's own events, keyed by user (the exposure, the click) and by promotion.
    await asyncio.to_thread(example.main, kafka_bootstrap, f"{topic_prefix}.")
    for kind, key in (("promotions", b"p-spring"), ("exposures", b"u1"), ("clicks", b"u1")):
        [message] = await _read(kafka_bootstrap, f"{topic_prefix}.{kind}", 1)
        assert message.key == key and message.partition == partition_for(key, PARTITIONS)
        decoded = decode_records([Record(kind, 0, 0, key, message.value, 0.0)], {}, datetime.now(UTC))
        assert decoded.dead == []


async def test_a_framed_event_through_kafka_passes_the_checked_gate(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    example = _example("produce_events")
    topic = f"{topic_prefix}-exposures"
    event = sample_events()["exposures"].model_dump(mode="json")
    with serve() as (url, registry):
        raw = example.framed(example.json_schema_serializer(url, "exposures"), topic, event)
        producer = example.event_producer(kafka_bootstrap)
        example.send(producer, "exposures", event, topic=topic, value=raw)
        await _flush(producer)
        [message] = await _read(kafka_bootstrap, topic, 1)

        framing = framing_for(load_settings(schema_registry={"url": url}), {"exposures": topic})
        await framing.resolve([("exposures", message.value)])
        record = Record("exposures", message.partition, message.offset, message.key, message.value, 0.0)
        decoded = decode_records([record], {"exposures": topic}, datetime.now(UTC), framing=framing)
    assert message.value[0] == 0 and f"{topic}-value" in registry.subjects
    assert decoded.dead == []
    assert [event_fields(e) for _, e in decoded.valid] == [event_fields(sample_events()["exposures"])]


def _prediction(i: int, model_version: int = 1) -> EffectPrediction:
    sample = sample_events()["predictions"]
    assert isinstance(sample, EffectPrediction)
    return sample.model_copy(
        update={"event_id": f"x-{i}", "user_id": f"u{i % 7}", "model_version": model_version}
    )


async def _first(stream: AsyncIterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [await anext(stream) for _ in range(n)]


async def test_the_predictions_example_yields_each_event_id_once(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    example = _example("consume_predictions")
    topic = f"{topic_prefix}-predictions"
    await _create(kafka_bootstrap, topic)
    originals = [_prediction(i) for i in range(20)]
    replayed = [_prediction(i, model_version=2) for i in range(12, 20)]  # a replay after a crash
    await _publish(kafka_bootstrap, topic, [(p.user_id.encode(), encode(p)) for p in originals + replayed])

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=f"{topic_prefix}-g", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        stream = example.unique_predictions(consumer)
        got = await asyncio.wait_for(_first(stream, len(originals)), 30)
        with pytest.raises(TimeoutError):  # the copies are read and left out
            await asyncio.wait_for(anext(stream), 3)
    finally:
        await consumer.stop()
    assert sorted(p["event_id"] for p in got) == sorted(p.event_id for p in originals)
    assert {p["model_version"] for p in got} == {1}  # the first copy wins


def _ranking(user: str, session: str, best: str) -> PromotionRanking:
    ranked = [
        RankedPromotion(
            promotion_id=pid, campaign_id="c", expected_incremental_revenue=r, uplift_conversion=0.01
        )
        for pid, r in ((best, 2.0), ("p-other", 1.0))
    ]
    sample = sample_events()["promotion-rankings"]
    assert isinstance(sample, PromotionRanking)
    return sample.model_copy(update={"user_id": user, "session_id": session, "ranked": ranked})


async def test_the_rankings_example_keeps_the_latest_per_user(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    example = _example("latest_rankings")
    topic = f"{topic_prefix}-promotion-rankings"
    await _create(kafka_bootstrap, topic)
    rankings = [_ranking(f"u{u}", f"s{s}", f"p-{u}-{s}") for s in range(3) for u in range(10)]
    await _publish(kafka_bootstrap, topic, [(r.user_id.encode(), encode(r)) for r in rankings])

    view = await example.catch_up(kafka_bootstrap, topic)
    assert sorted(view.latest) == sorted(f"u{u}" for u in range(10))
    assert all(view.latest[f"u{u}"]["session_id"] == "s2" for u in range(10))
    assert [view.best(f"u{u}") for u in range(3)] == ["p-0-2", "p-1-2", "p-2-2"]
    assert view.best("nobody") is None
