"""Runs the hand-rolled Faust agent (stream.bench.naive_app) over the backlog and times it.

It sends one result per event, so its rate is read off its own output: events over the span between
the first and the last result's Kafka timestamp (set by its producer when it sends). Its CPU time is
read when the first results show up and at the end, and scaled to the whole backlog.
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
from stream.bench.stats import Throughput
from stream.bench.workload import Workload
from stream.errors import ServiceError


async def run_naive(
    bootstrap: str, prefix: str, workload: Workload, partitions: int, timeout_s: float, work_dir: Path
) -> Throughput:
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
        return await _follow(consumer, proc.pid, workload.events, timeout_s,
                             lambda: procs.check_alive(proc, "naive Faust worker", log))  # fmt: skip
    finally:
        await consumer.stop()
        await asyncio.to_thread(procs.stop, proc)


async def _follow(
    consumer: AIOKafkaConsumer, pid: int, events: int, timeout_s: float, check: Callable[[], None]
) -> Throughput:
    deadline = time.monotonic() + timeout_s
    seen, first, last = 0, float("inf"), float("-inf")
    seen_first, cpu_first = 0, 0.0
    while seen < events:
        check()
        if time.monotonic() > deadline:
            raise ServiceError(f"the naive Faust worker sent {seen} of {events} results in {timeout_s:g}s")
        for records in (await consumer.getmany(timeout_ms=100)).values():
            stamps = [r.timestamp / 1000 for r in records]
            seen += len(stamps)
            first, last = min(first, *stamps), max(last, *stamps)
        if seen and not seen_first:
            seen_first, cpu_first = seen, procs.cpu_seconds(pid)
    cpu = procs.cpu_seconds(pid) - cpu_first
    after_first = events - seen_first
    return Throughput(events, last - first, cpu * events / after_first if after_first > 0 else None)
