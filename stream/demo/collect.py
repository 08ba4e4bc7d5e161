"""Reads a demo run's output topics back into plain rows for the report."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer

from stream.settings import Settings


@dataclass
class Outputs:
    predictions: list[dict] = field(default_factory=list)
    effects: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)
    drift: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)


async def read_outputs(settings: Settings, timeout_s: float = 30.0) -> Outputs:
    """Everything now in the output topics, from the beginning (no consumer group, nothing committed)."""
    t = settings.topics
    targets = {
        t.predictions: "predictions",
        t.campaign_effects: "effects",
        t.alerts: "alerts",
        t.drift: "drift",
        t.dead_letter: "dead_letters",
    }
    out = Outputs()
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap)
    await probe.start()
    try:
        present = [topic for topic in targets if topic in await probe.topics()]
    finally:
        await probe.stop()
    if not present:
        return out
    consumer = AIOKafkaConsumer(
        *present,
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(timeout_s):
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            while not consumer.assignment():
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            ends = await consumer.end_offsets(list(consumer.assignment()))
            while True:
                for tp, records in batch.items():
                    getattr(out, targets[tp.topic]).extend(orjson.loads(r.value) for r in records if r.value)
                if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                    break
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
    finally:
        await consumer.stop()
    return out
