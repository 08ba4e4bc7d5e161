"""Topic names, and the topic policy applied to the cluster: create (`topic_policy.mode`), then verify.

Inputs keyed by user (clicks, exposures, profiles) must have the partition count of the engine's per-user
tables (`topics.partitions`): the tables are co-partitioned with them, and Faust assigns partition p of
each to one worker. The rules themselves are pure (stream/agents/topic_policy.py); this module talks to
the cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from stream.agents.topic_policy import TopicSpec, TopicState, problems, spec_of
from stream.errors import ConfigError, ServiceError
from stream.events.models import INPUT_EVENTS, OUTPUT_EVENTS
from stream.kafka_options import client_options
from stream.outputs.partials import PARTIALS
from stream.settings import Settings

log = logging.getLogger(__name__)

USER_INPUTS = ("clicks", "exposures", "profiles")
LISTED_WAIT_S = 10.0


def topic_names(settings: Settings) -> dict[str, str]:
    """Logical topic → Kafka topic, for every input, output and internal topic."""
    names = {t: getattr(settings.topics, t.replace("-", "_")) for t in (*INPUT_EVENTS, *OUTPUT_EVENTS)}
    names[PARTIALS] = f"{settings.app_id}-{PARTIALS}"
    return names


def topic_specs(settings: Settings, internal: Sequence[NewTopic] = ()) -> list[TopicSpec]:
    """Every topic the engine uses: its inputs and outputs, and `internal` (changelogs, Faust's leader)."""
    specs = [
        TopicSpec(name, None, copartitioned=logical in USER_INPUTS)
        for logical, name in topic_names(settings).items()
    ]
    return specs + [spec_of(topic) for topic in internal]


async def ensure_topics(settings: Settings, internal: Sequence[NewTopic] = ()) -> None:
    """Applies the topic policy: in mode create, creates the missing topics (inputs and outputs with
    `topics.partitions` partitions, `internal` ones as given); in create and verify, raises ConfigError
    with one line per problem unless every topic meets the policy. Mode none does nothing."""
    policy = settings.topic_policy
    if policy.mode == "none":
        return
    specs = topic_specs(settings, internal)
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    try:
        await admin.start()
        if policy.mode == "create":
            await _create_missing(admin, settings, specs)
        found = await described(admin, [s.name for s in specs], wait=policy.mode == "create")
    except KafkaError as exc:
        raise ServiceError(f"Kafka at {settings.kafka.bootstrap} is not usable: {exc}") from exc
    finally:
        await admin.close()
    wrong = problems(specs, found, policy, settings.topics.partitions)
    if wrong:
        raise ConfigError("\n".join(f"topic policy: {line}" for line in wrong))


async def _create_missing(admin: AIOKafkaAdminClient, settings: Settings, specs: Sequence[TopicSpec]) -> None:
    existing = set(await admin.list_topics())
    policy, partitions = settings.topic_policy, settings.topics.partitions
    missing = [s.new_topic(policy, partitions) for s in specs if s.name not in existing]
    if not missing:
        return
    response = await admin.create_topics(missing)
    # The broker answers per topic (aiokafka raises nothing); one created meanwhile by another worker is fine.
    refused = [
        f"topic policy: cannot create topic {name}: {for_code(code).__name__}{f' ({why[0]})' if why else ''}"
        for name, code, *why in response.topic_errors
        if code not in (0, TopicAlreadyExistsError.errno)
    ]
    if refused:
        raise ConfigError("\n".join(refused))
    log.info("created topics %s", ", ".join(t.name for t in missing))


async def described(admin: AIOKafkaAdminClient, names: Sequence[str], *, wait: bool) -> dict[str, TopicState]:
    """`describe_topics`, asked again (bounded) while `wait` and a topic is missing: the controller creates a
    topic before every broker knows it, and each request may go to another broker, so a topic just created
    (by this worker or another) must not be called missing."""
    deadline = time.monotonic() + LISTED_WAIT_S
    found = await describe_topics(admin, names)
    while wait and not set(names) <= found.keys() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        found = await describe_topics(admin, names)
    return found


async def describe_topics(admin: AIOKafkaAdminClient, names: Sequence[str]) -> dict[str, TopicState]:
    """The partition count, smallest replica set and configs of each of `names` that exists."""
    listed = set(await admin.list_topics())
    existing = [n for n in names if n in listed]
    if not existing:
        return {}
    described = await admin.describe_topics(existing)
    configs: dict[str, dict[str, str]] = {}
    for response in await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n) for n in existing]
    ):
        for _code, _message, _type, name, entries in response.resources:
            configs[name] = {entry[0]: entry[1] for entry in entries}
    return {
        d["topic"]: TopicState(
            d["topic"],
            len(d["partitions"]),
            min((len(p["replicas"]) for p in d["partitions"]), default=0),
            configs.get(d["topic"], {}),
        )
        for d in described
    }
