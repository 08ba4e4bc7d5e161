"""Event → prediction latency of a caught-up worker fed live traffic at a steady rate.

Each exposure's Kafka timestamp is its producer's send time; the worker reports `latency_ms` from it to
`scored_at`, so `scored_at - latency_ms` recovers the send time and the arrival of the prediction at
this consumer closes the interval. Exposures sent during the first seconds (the rate ramping up from
idle) are left out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson
from aiokafka import AIOKafkaConsumer

from stream.bench.kafka_io import new_producer, send_paced
from stream.bench.stats import end_to_end_ms
from stream.bench.workload import Message, exposure_ids
from stream.errors import ServiceError
from stream.history import TOPICS

WARMUP_S = 2.0
SETTLE_S = 1.0
DRAIN_S = 60.0


@dataclass(frozen=True)
class LatencyPhase:
    rate: float
    sent: int
    seconds: float
    latencies_ms: list[float]
    """End to end: send → prediction consumed."""
    scored_ms: list[float]
    """The worker's own figure: send → scored."""


async def measure_latency(
    bootstrap: str, names: dict[str, str], consumer: AIOKafkaConsumer, live: list[Message], rate: float,
    seconds: float, alive: Callable[[], None],
) -> LatencyPhase:  # fmt: skip
    await asyncio.sleep(SETTLE_S)
    messages = live[: max(1, min(len(live), int(rate * seconds)))]
    remaining = set(exposure_ids(messages))
    inputs = {t: names[t] for t in TOPICS}
    producer = new_producer(bootstrap, linger_ms=0)
    await producer.start()
    try:
        began = time.time()
        sender = asyncio.create_task(send_paced(producer, inputs, messages, rate))
        e2e, scored = await _collect(consumer, remaining, began + WARMUP_S, sender, alive)
        sent_s = await sender
    finally:
        await producer.stop()
    return LatencyPhase(rate, len(messages), sent_s, e2e, scored)


async def _collect(
    consumer: AIOKafkaConsumer, remaining: set[str], counted_from: float, sender: asyncio.Task[float],
    alive: Callable[[], None],
) -> tuple[list[float], list[float]]:  # fmt: skip
    e2e: list[float] = []
    scored: list[float] = []
    drain_deadline: float | None = None
    while remaining:
        alive()
        if sender.done():
            sender.result()  # a failed send surfaces here
            drain_deadline = drain_deadline or time.monotonic() + DRAIN_S
            if time.monotonic() > drain_deadline:
                raise ServiceError(f"{len(remaining)} live exposures got no prediction within {DRAIN_S:g}s")
        batches = await consumer.getmany(timeout_ms=20)
        arrived = time.time()
        for records in batches.values():
            for record in records:
                p = orjson.loads(record.value)
                if p["event_id"] not in remaining:
                    continue
                remaining.discard(p["event_id"])
                at = datetime.fromisoformat(p["scored_at"]).timestamp()
                if at - p["latency_ms"] / 1000.0 >= counted_from:
                    e2e.append(end_to_end_ms(arrived, at, p["latency_ms"]))
                    scored.append(p["latency_ms"])
    return e2e, scored
