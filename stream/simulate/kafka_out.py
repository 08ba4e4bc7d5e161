"""Producing to the input topics: connection from Settings, topic creation, batched sends, pacing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from stream.agents.topic_policy import TopicSpec
from stream.errors import ServiceError
from stream.history import TOPICS
from stream.kafka_options import client_options
from stream.settings import Settings, load_settings

log = logging.getLogger(__name__)

BATCH = 500  # messages handed to the producer before waiting for their acknowledgements


@dataclass(frozen=True)
class Progress:
    sent: int
    malformed: int
    elapsed_s: float


ProgressCallback = Callable[[Progress], None]


def resolve_settings(target: Settings | str) -> Settings:
    """Settings as given, or the environment's settings pointed at a `host:port` bootstrap."""
    if isinstance(target, Settings):
        return target
    return load_settings(kafka={"bootstrap": target})


def topic_names(settings: Settings) -> dict[str, str]:
    """Logical topic (clicks, promotions, exposures, profiles) → configured Kafka topic name."""
    return {topic: getattr(settings.topics, topic) for topic in TOPICS}


async def ensure_topics(settings: Settings) -> None:
    """Creates the input topics that do not exist yet, with the configured partition count, under the topic
    policy (in modes verify and none the topics are the cluster owner's: nothing is created)."""
    if settings.topic_policy.mode != "create":
        return
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [name for name in topic_names(settings).values() if name not in existing]
        if missing:
            policy, partitions = settings.topic_policy, settings.topics.partitions
            new = [TopicSpec(name, None).new_topic(policy, partitions) for name in missing]
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by someone else: fine
                await admin.create_topics(new)
            log.info("created topics %s", ", ".join(missing))
    except KafkaError as exc:
        raise ServiceError(f"Kafka at {settings.kafka.bootstrap} is not usable: {exc}") from exc
    finally:
        await admin.close()


@asynccontextmanager
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """An idempotent producer waiting for all in-sync replicas; errors become ServiceError."""
    client = AIOKafkaProducer(
        acks="all", enable_idempotence=True, linger_ms=10, max_batch_size=256 * 1024,
        max_request_size=2 * 1024 * 1024, **client_options(settings.kafka),
    )  # fmt: skip
    try:
        await client.start()
        yield client
        await client.flush()
    except KafkaError as exc:
        raise ServiceError(f"producing to Kafka at {settings.kafka.bootstrap} failed: {exc}") from exc
    finally:
        await client.stop()


async def send_batch(client: AIOKafkaProducer, batch: Sequence[tuple[str, bytes | None, bytes]]) -> None:
    """Enqueues every (topic, key, value) before awaiting any acknowledgement, so sends are batched."""
    pending = [await client.send(topic, value=value, key=key) for topic, key, value in batch]
    await asyncio.gather(*pending)


class Pacer:
    """Holds a sender to `rate` messages per second on average (None: as fast as possible)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.began = time.monotonic()

    async def wait(self, sent: int) -> None:
        """Sleeps until `sent` messages are due."""
        if self.rate is not None:
            await self.sleep_until(sent / self.rate)

    async def sleep_until(self, offset_s: float) -> None:
        ahead = self.began + offset_s - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.began
