"""Every Kafka auth mode against a real broker with TLS, SASL and ACLs (tests/integration/secure_kafka.py):
clients of each mode work, the worker runs end to end over SASL_SSL, and a wrong password or a missing ACL
stops it at start-up with one clear line."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.kafka_options import client_options, let_tls_close
from stream.settings import Kafka, Settings
from stream.simulate.config import SimConfig
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
    kafka_env,
    secure_kafka,
)
from tests.stream.workers import Outputs, engine_settings, produce, report, start_worker, stop_worker, world

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

C = SimConfig(seed=43, users=150, days=0.5)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    with secure_kafka(tmp_path_factory.mktemp("secure")) as cluster:
        yield cluster


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


async def _allow_prefix(secured: SecureKafka, prefix: str) -> None:
    """The user may do anything with the topics and groups whose names start with `prefix`."""
    acls = [(TOPIC, prefix, PREFIXED, ALL, ALLOW), (GROUP, prefix, PREFIXED, ALL, ALLOW)]
    await grant(secured.plain(ADMIN), acls)


async def _round_trip(k: Kafka, prefix: str) -> bytes:
    topic = f"{prefix}-round-trip"
    admin = AIOKafkaAdminClient(**client_options(k))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**client_options(k), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, **client_options(k), group_id=prefix, auto_offset_reset="earliest")
    await consumer.start()
    try:
        return (await consumer.getone()).value or b""
    finally:
        await consumer.stop()
        await let_tls_close()


@pytest.mark.parametrize("mode", ["plain", "scram", "mtls", "oauth"])
def test_each_auth_mode_creates_produces_and_consumes_under_acls(secured: SecureKafka, mode: str) -> None:
    prefix = _prefix()
    asyncio.run(_allow_prefix(secured, prefix))
    assert asyncio.run(_round_trip(getattr(secured, mode)(), prefix)) == b"hello"


def _worker_settings(test_settings: Settings, k: Kafka, tmp_path: Path) -> Settings:
    base = engine_settings(test_settings, _prefix(), tmp_path / "run")
    return base.model_copy(update={"kafka": k})


def test_the_worker_predicts_every_exposure_over_sasl_ssl_with_acls(
    secured: SecureKafka, test_settings: Settings, served_model: Path, tmp_path: Path
) -> None:
    settings = _worker_settings(test_settings, secured.scram(), tmp_path)
    asyncio.run(_allow_prefix(secured, settings.app_id))
    log = tmp_path / "worker.log"
    proc = start_worker(settings, log, **kafka_env(settings.kafka))
    try:
        w = world(C)

        async def drive() -> None:
            async with Outputs(settings) as out:
                await produce(settings, w)
                done = lambda o: {p["event_id"] for p in o.seen["predictions"]} >= w.exposure_ids  # noqa: E731
                await out.until(done, 180, lambda: proc.poll() is None)
            await let_tls_close()

        asyncio.run(drive())
    except AssertionError as exc:
        raise report(exc, [log], [proc]) from exc
    finally:
        stop_worker(proc)


def _failed_start(settings: Settings, tmp_path: Path) -> tuple[int, list[str], float]:
    """Exit status, output lines and seconds of a worker expected to stop at start-up."""
    log = tmp_path / "worker.log"
    began = time.monotonic()
    proc = start_worker(settings, log, **kafka_env(settings.kafka))
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the worker kept running:\n{log.read_text()[-3000:]}") from None
    return code, log.read_text().splitlines(), time.monotonic() - began


def test_a_wrong_password_ends_the_worker_with_one_clear_line(
    secured: SecureKafka, test_settings: Settings, served_model: Path, tmp_path: Path
) -> None:
    settings = _worker_settings(test_settings, secured.scram(password="wrong"), tmp_path)
    code, lines, _ = _failed_start(settings, tmp_path)
    assert code != 0
    assert not [line for line in lines if "Traceback" in line], "\n".join(lines)
    assert lines[-1].startswith(f"liftstream: error: Kafka at {settings.kafka.bootstrap} refused"), lines
    assert "refused the credentials (SCRAM-SHA-256, user alice)" in lines[-1], lines


def test_a_missing_write_acl_on_an_output_topic_is_a_clear_start_up_error(
    secured: SecureKafka, test_settings: Settings, served_model: Path, tmp_path: Path
) -> None:
    settings = _worker_settings(test_settings, secured.scram(), tmp_path)
    asyncio.run(_allow_prefix(secured, settings.app_id))
    asyncio.run(grant(secured.plain(ADMIN), [(TOPIC, settings.topics.predictions, LITERAL, WRITE, DENY)]))
    code, lines, _ = _failed_start(settings, tmp_path)
    assert code != 0
    assert not [line for line in lines if "Traceback" in line], "\n".join(lines)
    assert lines[-1] == (
        "liftstream: error: the Kafka principal of this worker lacks ACLs: "
        f"WRITE on topic {settings.topics.predictions}"
    ), lines
