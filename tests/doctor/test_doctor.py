"""`liftstream doctor` against the real Kafka and Triton: a healthy deployment, and one with faults."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.agents.topics import described, ensure_topics, topic_names
from stream.app import create_app, internal_topics
from stream.doctor.cli import run
from stream.local.triton import free_ports
from stream.settings import Settings
from tests.stream.workers import ROOT, engine_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _settings(test_settings: Settings, topic_prefix: str, tmp_path: Path, **overrides: object) -> Settings:
    return engine_settings(test_settings, topic_prefix, tmp_path / "run", **overrides)


def test_a_healthy_deployment_is_all_ok(
    test_settings: Settings, served_model: Path, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    created = _settings(test_settings, topic_prefix, tmp_path)
    asyncio.run(ensure_topics(created, internal_topics(create_app(created))))
    lines = run(_settings(test_settings, topic_prefix, tmp_path, topic_policy={"mode": "verify"}))
    printed = capsys.readouterr().out.splitlines()
    assert printed == [str(line) for line in lines]
    assert [line for line in lines if line.status != "ok"] == []
    checks = [line.check for line in lines]
    assert checks[0] == "kafka" and checks.count("topic") == len(topic_names(created)) + 5
    assert "acls: no authorizer on the cluster" in "\n".join(printed)
    assert {"triton", "model", "models"} <= set(checks)
    assert any(f"{created.topics.clicks}: 4 partitions, replication factor 1" in p for p in printed)


async def _make_wrong_clicks(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.topics.clicks, 2, 1)])
        await described(admin, [settings.topics.clicks], wait=True)
    finally:
        await admin.close()


def test_a_wrong_partition_count_and_a_triton_that_is_down_fail_with_a_line_each(
    test_settings: Settings, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    (down,) = free_ports(1)
    settings = _settings(test_settings, topic_prefix, tmp_path).model_copy(
        update={"triton_url": f"127.0.0.1:{down}"})
    asyncio.run(_make_wrong_clicks(settings))
    env = {
        **os.environ,
        "LIFTSTREAM_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
        "LIFTSTREAM_TRITON_URL": settings.triton_url,
        "LIFTSTREAM_APP_ID": settings.app_id,
        "LIFTSTREAM_TOPICS__CLICKS": settings.topics.clicks,
        "LIFTSTREAM_LOCAL__RUN_DIR": str(tmp_path),
    }
    done = subprocess.run([sys.executable, "-m", "stream", "doctor"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert failed == [
        f"FAIL topic: {settings.topics.clicks} has 2 partitions; the co-partitioned inputs and tables need "
        "topics.partitions = 4",
        f"FAIL triton: not reachable at 127.0.0.1:{down}: StatusCode.UNAVAILABLE",
    ], done.stdout
    # Mode create: the topics that do not exist yet are the worker's to make, not faults.
    assert "does not exist yet; the worker creates it (mode create)" in done.stdout
