"""`liftstream doctor`'s ACL lines against a real broker with an authorizer
(tests/integration/secure_kafka.py): the bindings are counted for a principal that may describe them, and a
denied operation is one FAIL line."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.doctor.acls import acl_bindings
from stream.doctor.kafka import kafka_lines
from stream.kafka_options import client_options
from stream.settings import Kafka, Settings
from tests.integration.secure_kafka import (
    ADMIN,
    ALL,
    ALLOW,
    DENY,
    GROUP,
    LITERAL,
    PREFIXED,
    TOPIC,
    WRITE,
    SecureKafka,
    grant,
    secure_kafka,
)
from tests.stream.workers import engine_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    with secure_kafka(tmp_path_factory.mktemp("secure")) as cluster:
        yield cluster


async def _bindings(k: Kafka) -> int | None:
    admin = AIOKafkaAdminClient(**client_options(k))
    await admin.start()
    try:
        return await acl_bindings(admin)
    finally:
        await admin.close()


def test_a_denied_write_is_a_fail_line_and_the_bindings_are_described(
    secured: SecureKafka, test_settings: Settings, topic_prefix: str, tmp_path: Path
) -> None:
    base = engine_settings(test_settings, topic_prefix, tmp_path / "run")
    settings = base.model_copy(update={"kafka": secured.scram()})
    leader = NewTopic(f"{settings.app_id}-__assignor-__leader", 1, 1)
    acls = [(TOPIC, topic_prefix, PREFIXED, ALL, ALLOW), (GROUP, topic_prefix, PREFIXED, ALL, ALLOW),
            (TOPIC, settings.topics.predictions, LITERAL, WRITE, DENY)]
    asyncio.run(grant(secured.plain(ADMIN), acls))
    assert (asyncio.run(_bindings(secured.plain(ADMIN))) or 0) >= 3  # the super user may describe them

    lines = [str(line) for line in asyncio.run(kafka_lines(settings, [leader]))]
    connected = f"ok   kafka: connected to {secured.sasl_bootstrap} over SASL_SSL SCRAM-SHA-256"
    assert lines[0].startswith(connected), lines
    acl = [line for line in lines if line.split()[1] == "acls:"]
    assert acl == [
        "FAIL acls: the principal may not describe the cluster's ACLs (ClusterAuthorizationFailedError); "
        f"the principal lacks WRITE on topic {settings.topics.predictions}"
    ], lines
