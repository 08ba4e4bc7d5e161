"""Runs the hand-rolled Faust agent (stream.bench.naive_app) over the backlog and times it.

It sends one result per event, so its rate is read off its own output: events over the span between
the first and the last result's Kafka timestamp (set by its producer when it sends).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from stream.bench import procs
from stream.bench.kafka_io import create_topics, input_names, preload
from stream.bench.naive_app import NaiveConfig
from stream.bench.stats import events_per_second
from stream.bench.workload import Workload
from stream.errors import ServiceError


async def run_naive(
    bootstrap: str, prefix: str, workload: Workload, partitions: int, timeout_s: float, work_dir: Path
) -> float:
    names = input_names(prefix)
    config = NaiveConfig(prefix, bootstrap, tuple(names.values()), f"{prefix}-out", partitions,
                         str(work_dir / "naive"))  # fmt: skip
    await create_topics(bootstrap, [*names.values(), config.output], partitions)
    await preload(bootstrap, names, workload.backlog)
    log = work_dir / "naive.log"
    proc = procs.start("stream.bench.naive_app", [], config.to_env(), log)
    consumer = AIOKafkaConsumer(config.output, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    try:
        await consumer.start()
        first, last = await _span(
            consumer, workload.events, timeout_s, lambda: procs.check_alive(proc, "naive Faust worker", log)
        )
    finally:
        await consumer.stop()
        await asyncio.to_thread(procs.stop, proc)
    return events_per_second(workload.events, first, last)


async def _span(
    consumer: AIOKafkaConsumer, events: int, timeout_s: float, check: Callable[[], None]
) -> tuple[float, float]:
    """Kafka timestamps (s) of the first and the last of `events` results."""
    deadline = time.monotonic() + timeout_s
    seen, first, last = 0, float("inf"), float("-inf")
    while seen < events:
        check()
        if time.monotonic() > deadline:
            raise ServiceError(f"the naive Faust worker sent {seen} of {events} results in {timeout_s:g}s")
        for records in (await consumer.getmany(timeout_ms=500)).values():
            stamps = [r.timestamp / 1000 for r in records]
            seen += len(stamps)
            first, last = min(first, *stamps), max(last, *stamps)
    return first, last
