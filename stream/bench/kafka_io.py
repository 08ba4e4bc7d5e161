"""Kafka plumbing of the benchmark: per-run topics, preloading a backlog, paced live sends, clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from stream.bench.workload import Message
from stream.errors import ServiceError
from stream.history import TOPICS

log = logging.getLogger(__name__)

PRELOAD_CHUNK = 2000
TICK_S = 0.005  # the live sender's pacing step: sends stay within a few ms of their due time


def input_names(prefix: str) -> dict[str, str]:
    """Logical input topic → this contender's own Kafka topic."""
    return {t: f"{prefix}-{t}" for t in TOPICS}


def new_producer(bootstrap: str, linger_ms: int = 5) -> AIOKafkaProducer:
    """What the engine's producer is: idempotent, waiting for all in-sync replicas, batching."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=linger_ms,
        max_batch_size=256 * 1024, max_request_size=2 * 1024 * 1024,
    )  # fmt: skip


async def check_kafka(bootstrap: str) -> None:
    """One clear error now rather than a timeout later when the broker is not there."""
    await create_topics(bootstrap, [], 1)


async def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(n, partitions, 1) for n in missing])
            await _leaders_elected(admin, missing)
    except KafkaError as exc:
        raise ServiceError(f"Kafka at {bootstrap} is not usable: {exc}") from exc
    finally:
        await admin.close()


async def _leaders_elected(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float = 30.0) -> None:
    """Waits until every partition has a leader, so preloading starts without NotLeader retries."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        described = await admin.describe_topics(names)
        if all(p["leader"] >= 0 for d in described for p in d["partitions"]) and all(
            d["partitions"] for d in described
        ):
            return
        await asyncio.sleep(0.1)


async def delete_topics(bootstrap: str, prefix: str) -> int:
    """Deletes every topic whose name starts with `prefix` (a run's inputs, outputs, changelogs)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        doomed = [n for n in await admin.list_topics() if n.startswith(prefix)]
        if doomed:
            await admin.delete_topics(doomed)
        return len(doomed)
    except KafkaError as exc:
        log.warning("could not delete the run's topics (%s*): %s", prefix, exc)
        return 0
    finally:
        await admin.close()


async def preload(bootstrap: str, names: dict[str, str], messages: Sequence[Message]) -> float:
    """Produces every message to `names[topic]`, acknowledged, before anyone consumes; returns seconds."""
    began = time.monotonic()
    producer = new_producer(bootstrap)
    try:
        await producer.start()
        for i in range(0, len(messages), PRELOAD_CHUNK):
            chunk = messages[i : i + PRELOAD_CHUNK]
            futures = [await producer.send(names[t], value=v, key=k) for t, k, v in chunk]
            await asyncio.gather(*futures)
    except KafkaError as exc:
        raise ServiceError(
            f"preloading {len(messages)} messages into Kafka at {bootstrap} failed: {exc}"
        ) from exc
    finally:
        await producer.stop()
    return time.monotonic() - began


async def send_paced(
    producer: AIOKafkaProducer,
    names: dict[str, str],
    messages: Sequence[Message],
    rate: float,
    on_sent: Callable[[int], None] | None = None,
) -> float:
    """Sends `messages` at `rate` per second, each when due (Kafka timestamp = send time); returns seconds."""
    began = time.monotonic()
    sent = 0
    pending = []
    while sent < len(messages):
        due = min(len(messages), int((time.monotonic() - began) * rate) + 1)
        for topic, key, value in messages[sent:due]:
            pending.append(await producer.send(names[topic], value=value, key=key))
        sent = max(sent, due)
        if on_sent is not None:
            on_sent(sent)
        await asyncio.sleep(TICK_S)
    await asyncio.gather(*pending)
    return time.monotonic() - began
