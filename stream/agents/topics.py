"""Topic names, Kafka connection options and the creation of every topic the engine reads or writes.

Inputs keyed by user (clicks, exposures, profiles) must have the same partition count: the engine's
per-user tables are co-partitioned with them, and Faust assigns partition p of each to one worker.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from stream.errors import ConfigError, ServiceError
from stream.events.models import INPUT_EVENTS, OUTPUT_EVENTS
from stream.kafka_options import client_options
from stream.outputs.partials import PARTIALS
from stream.settings import Settings

log = logging.getLogger(__name__)

USER_INPUTS = ("clicks", "exposures", "profiles")


def topic_names(settings: Settings) -> dict[str, str]:
    """Logical topic → Kafka topic, for every input, output and internal topic."""
    names = {t: getattr(settings.topics, t.replace("-", "_")) for t in (*INPUT_EVENTS, *OUTPUT_EVENTS)}
    names[PARTIALS] = f"{settings.app_id}-{PARTIALS}"
    return names


async def ensure_topics(settings: Settings, internal: Sequence[NewTopic] = ()) -> None:
    """Creates missing topics with `topics.partitions` partitions (and `internal` ones as given); checks
    that the user inputs agree on their partition count."""
    names = topic_names(settings)
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        wanted = [NewTopic(n, settings.topics.partitions, 1) for n in names.values()] + list(internal)
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another worker
                await admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
        described = await admin.describe_topics([names[t] for t in USER_INPUTS])
    except KafkaError as exc:
        raise ServiceError(f"Kafka at {settings.kafka.bootstrap} is not usable: {exc}") from exc
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    if len(set(counts.values())) > 1:
        raise ConfigError(
            f"topics {', '.join(counts)} must have the same number of partitions, have {counts}"
        )
