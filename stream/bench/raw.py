"""The ceiling: an aiokafka consumer → producer pass-through of the backlog, in this process.

getmany() takes whatever the fetcher holds; every record of the batch is handed to the producer before
any acknowledgement is awaited, then the batch's offsets are committed (at-least-once, like the others).
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from stream.bench.kafka_io import create_topics, input_names, new_producer, preload
from stream.bench.stats import Throughput
from stream.bench.workload import Workload
from stream.errors import ServiceError

MAX_RECORDS = 4096


async def run_raw(
    bootstrap: str, prefix: str, workload: Workload, partitions: int, timeout_s: float
) -> Throughput:
    """From the first fetched record to the last acknowledged send; CPU time of this process."""
    names = input_names(prefix)
    output = f"{prefix}-out"
    await create_topics(bootstrap, [*names.values(), output], partitions)
    await preload(bootstrap, names, workload.backlog)
    consumer = AIOKafkaConsumer(
        *names.values(), bootstrap_servers=bootstrap, group_id=prefix, auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024,
    )  # fmt: skip
    producer = new_producer(bootstrap)
    try:
        await consumer.start()
        await producer.start()
        return await _pass_through(consumer, producer, output, workload.events, timeout_s)
    except KafkaError as exc:
        raise ServiceError(f"the raw aiokafka contender failed: {exc}") from exc
    finally:
        await consumer.stop()
        await producer.stop()


async def _pass_through(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, output: str, events: int, timeout_s: float
) -> Throughput:
    deadline = time.monotonic() + timeout_s
    done, start, cpu = 0, 0.0, 0.0
    while done < events:
        if time.monotonic() > deadline:
            raise ServiceError(f"the raw contender passed {done} of {events} events in {timeout_s:g}s")
        batches = await consumer.getmany(timeout_ms=100, max_records=MAX_RECORDS)
        if not batches:
            continue
        if not done:
            start, cpu = time.perf_counter(), time.process_time()
        futures = [
            await producer.send(output, value=r.value, key=r.key)
            for records in batches.values()
            for r in records
        ]
        await asyncio.gather(*futures)
        await consumer.commit()
        done += len(futures)
    return Throughput(events, time.perf_counter() - start, time.process_time() - cpu)
