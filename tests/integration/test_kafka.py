from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.integration


async def test_produce_then_consume(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}-roundtrip"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(100):
            await producer.send(topic, key=f"k{i % 7}".encode(), value=f"v{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic_prefix}-g",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        async with asyncio.timeout(30):
            while len(got) < 100:
                batch = await consumer.getmany(timeout_ms=500)
                got += [rec.value for recs in batch.values() for rec in recs]
        await consumer.commit()
        committed = await consumer.committed(next(iter(consumer.assignment())))
    finally:
        await consumer.stop()
    assert sorted(got) == sorted(f"v{i}".encode() for i in range(100))
    assert committed == 100
