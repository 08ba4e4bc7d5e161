"""Faust against the real broker: a windowed table keeps its exact values across a worker restart."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.stream.workers import log_tail, stop_worker

pytestmark = pytest.mark.integration
APP = Path(__file__).with_name("faust_counter.py")


def _worker(bootstrap: str, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "COUNTER_PREFIX": prefix,
        "COUNTER_BROKER": bootstrap,
        "COUNTER_DATADIR": str(log.parent / "faust-data"),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(APP), "worker", "-l", "info", "--without-web"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _produce(bootstrap: str, topic: str, items: list[tuple[str, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in items:
            await producer.send(topic, key=key.encode(), value=value.encode())
    finally:
        await producer.stop()


async def _read(consumer: AIOKafkaConsumer, n: int, timeout_s: float) -> dict[str, str]:
    """Outputs by input value, until `n` distinct ones or the timeout: what was seen by then."""
    seen: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(seen) < n and loop.time() < deadline:
        for recs in (await consumer.getmany(timeout_ms=500)).values():
            for rec in recs:
                value = rec.value.decode()
                seen[value.rsplit(":", 1)[0]] = value.rsplit(":", 1)[1]
    return seen


async def _positions(bootstrap: str, prefix: str) -> str:
    """End offsets of the input and output topics and the committed input offset, for a failure report."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(f"{prefix}-{t}", 0) for t in ("in", "out")])
        committed = await admin.list_consumer_group_offsets(f"{prefix}-app")
    finally:
        await consumer.stop()
        await admin.close()
    return f"end offsets {ends}, committed {committed}"


@pytest.mark.timeout(420)
async def test_windowed_table_survives_restart(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    consumer = AIOKafkaConsumer(
        f"{topic_prefix}-out",
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        metadata_max_age_ms=1000,
    )
    await consumer.start()
    worker = _worker(kafka_bootstrap, topic_prefix, log)
    try:
        await _produce(kafka_bootstrap, f"{topic_prefix}-in", [(f"u{i % 3}", f"a{i}") for i in range(30)])
        first = await _read(consumer, 30, timeout_s=120)
        assert {first.get(f"a{i}") for i in range(27, 30)} == {"10"}, (first, log_tail(log))
        stop_worker(worker)

        worker = _worker(kafka_bootstrap, topic_prefix, log)
        await _produce(kafka_bootstrap, f"{topic_prefix}-in", [(f"u{i}", f"b{i}") for i in range(3)])
        second = await _read(consumer, 3, timeout_s=180)
        positions = await _positions(kafka_bootstrap, topic_prefix)
    finally:
        stop_worker(worker)
        await consumer.stop()
    # Counts continue from the changelog-recovered state: 10 before the restart, 11 after.
    assert second == {f"b{i}": "11" for i in range(3)}, (second, positions, log_tail(log))
