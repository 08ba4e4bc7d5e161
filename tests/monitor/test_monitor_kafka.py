from __future__ import annotations

import asyncio
from io import StringIO

import pytest
import typer
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel
from rich.console import Console
from typer.testing import CliRunner

from stream.events.models import Alert, CampaignEffect, CampaignStatus
from stream.monitor.cli import register, watch
from stream.monitor.state import MonitorState
from stream.settings import Kafka

from .factories import alert, drift, effect

pytestmark = pytest.mark.integration


class _Raw:
    def __init__(self, value: bytes) -> None:
        self.value = value


async def produce(bootstrap: str, messages: list[tuple[str, BaseModel | _Raw]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, event in messages:
            value = event.value if isinstance(event, _Raw) else event.model_dump_json().encode()
            await producer.send(topic, value)
        await producer.flush()
    finally:
        await producer.stop()


def monitor(bootstrap: str, prefix: str, *args: str) -> str:
    app = typer.Typer()
    register(app)
    env = {
        "LIFTSTREAM_KAFKA__BOOTSTRAP": bootstrap,
        "LIFTSTREAM_TOPICS__CAMPAIGN_EFFECTS": f"{prefix}-effects",
        "LIFTSTREAM_TOPICS__ALERTS": f"{prefix}-alerts",
        "LIFTSTREAM_TOPICS__DRIFT": f"{prefix}-drift",
        "COLUMNS": "220",
    }
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def test_once_shows_what_the_topics_hold(kafka_bootstrap: str, topic_prefix: str) -> None:
    message = "promotion promo-dud of campaign c1 is below its goal"
    under = CampaignStatus.underperforming
    await produce(kafka_bootstrap, [
        (f"{topic_prefix}-effects", effect("promo-strong", minute=0, realised=0.01)),
        (f"{topic_prefix}-effects", effect("promo-strong", minute=1, realised=0.03)),
        (f"{topic_prefix}-effects", effect("promo-dud", realised=-0.002, status=under)),
        (f"{topic_prefix}-alerts", alert("a-1", message=message)),
        (f"{topic_prefix}-drift", drift("holdout", psi=0.7)),
        (f"{topic_prefix}-drift", _Raw(b"not json")),
        (f"{topic_prefix}-alerts", _Raw(b'{"schema_version": 1, "alert_id": "a-0"}')),
    ])
    out = await asyncio.to_thread(monitor, kafka_bootstrap, topic_prefix, "--from-beginning", "--once")
    for expected in ("promo-strong", "+3.00 pp", "promo-dud", "underperforming", message, "holdout", "DRIFT",
                     "24h_spend 0.70", "1 messages could not be decoded",
                     "1 messages of another schema_version were skipped"):
        assert expected in out, expected
    assert out.index("promo-dud") < out.index("promo-strong")


async def test_from_now_on_skips_history_and_names_missing_topics(kafka_bootstrap: str,
                                                                  topic_prefix: str) -> None:
    await produce(kafka_bootstrap, [(f"{topic_prefix}-effects", effect("promo-old"))])
    out = await asyncio.to_thread(monitor, kafka_bootstrap, topic_prefix, "--once")
    assert "promo-old" not in out
    assert "no campaign effects yet" in out
    assert f"not created yet: {topic_prefix}-alerts, {topic_prefix}-drift" in out


async def test_live_view_for_a_duration(kafka_bootstrap: str, topic_prefix: str) -> None:
    await produce(kafka_bootstrap, [(f"{topic_prefix}-effects", effect("promo-live"))])
    args = ("--from-beginning", "--duration", "3", "--refresh", "0.5")
    out = await asyncio.to_thread(monitor, kafka_bootstrap, topic_prefix, *args)
    assert "promo-live" in out


async def test_a_topic_created_while_watching_is_read_from_its_start(kafka_bootstrap: str,
                                                                      topic_prefix: str) -> None:
    await produce(kafka_bootstrap, [(f"{topic_prefix}-effects", effect("promo-before"))])
    topics: dict[str, type[BaseModel]] = {f"{topic_prefix}-effects": CampaignEffect,
                                          f"{topic_prefix}-alerts": Alert}
    out = StringIO()

    async def later() -> None:
        await asyncio.sleep(1.0)
        await produce(kafka_bootstrap, [
            (f"{topic_prefix}-alerts", alert("a-new", message="first alert on a new topic")),
            (f"{topic_prefix}-effects", effect("promo-after")),
        ])

    producing = asyncio.create_task(later())
    await watch(Kafka(bootstrap=kafka_bootstrap), topics, MonitorState(), Console(file=out, width=200),
                from_beginning=False, once=False, duration=8.0, refresh=0.5)
    await producing
    text = out.getvalue()
    assert "first alert on a new topic" in text
    assert "promo-after" in text
    assert "promo-before" not in text


async def test_watching_topics_that_do_not_exist_neither_blocks_nor_creates_them(
        kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}-alerts"
    out = StringIO()
    console = Console(file=out, width=200)
    async with asyncio.timeout(30):
        await watch(Kafka(bootstrap=kafka_bootstrap), {topic: Alert}, MonitorState(), console,
                    from_beginning=False, once=False, duration=2.0, refresh=0.5)
    assert f"not created yet: {topic}" in out.getvalue()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert topic not in await admin.list_topics()
    finally:
        await admin.close()
