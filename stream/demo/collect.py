"""Reads a demo run's output topics back into plain rows for the report."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.settings import Settings


@dataclass
class Outputs:
    predictions: list[dict] = field(default_factory=list)
    effects: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    drift: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)


async def read_outputs(settings: Settings, timeout_s: float = 30.0) -> Outputs:
    """Everything currently in the output topics, from the beginning (no consumer group, nothing committed)."""
    t = settings.topics
    targets = {
        t.predictions: "predictions",
        t.campaign_effects: "effects",
        t.alerts: "alerts",
        t.drift: "drift",
        t.dead_letter: "dead_letters",
    }
    out = Outputs()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        available = await consumer.topics()
        parts = [TopicPartition(topic, p) for topic in targets if topic in available
                 for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            return out
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        async with asyncio.timeout(timeout_s):
            while any(await consumer.position(tp) < end for tp, end in ends.items()):
                for tp, records in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
                    rows = getattr(out, targets[tp.topic])
                    rows.extend(orjson.loads(r.value) for r in records if r.value)
    finally:
        await consumer.stop()
    return out
