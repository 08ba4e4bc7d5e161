"""The Faust app of a liftstream worker, built from Settings.

Broker connection (SASL/SSL from `settings.kafka`), table store, partitions, and a producer that waits
for all in-sync replicas and is idempotent (faust only enables idempotence inside transactions, so the
app brings its own transport). Input and output topics carry raw bytes: decoding is the engine's job,
so an invalid message becomes a dead letter instead of an error inside Faust.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from aiokafka.admin import NewTopic
from mode.types.signals import BaseSignalT
from prometheus_client import CollectorRegistry

from stream.agents import effects, promotions, timers, users
from stream.agents import health as health_timers
from stream.agents.adapter import LiftstreamApp
from stream.agents.engine import COMMIT_INTERVAL_S, Engine
from stream.health import Health
from stream.kafka_options import broker_credentials
from stream.metrics import Metrics
from stream.scoring.protocol import Scorer
from stream.scoring.triton import TritonScorer
from stream.settings import Settings

log = logging.getLogger(__name__)

COMMIT_EVERY = 1000


def internal_topics(app: faust.App) -> list[NewTopic]:
    """The changelogs of the app's tables and Faust's leader topic, as Faust would declare them.

    Workers create them (under the topic policy, stream/agents/topics.py) before they join the group:
    when two workers start together, Faust's own declaration races the first assignment, which then
    leaves a changelog out and stalls recovery.
    """
    replicas = app.conf.topic_replication_factor
    topics = [NewTopic(f"{app.conf.id}-__assignor-__leader", 1, replicas)]
    for table in app.tables.values():
        changelog = table.changelog_topic
        topics.append(
            NewTopic(
                changelog.get_topic_name(),
                table.partitions or app.conf.topic_partitions,
                replicas,
                topic_configs={"cleanup.policy": "compact"},
            )
        )
    return topics


def create_app(
    settings: Settings,
    *,
    scorer: Scorer | None = None,
    metrics: Metrics | None = None,
    health: Health | None = None,
) -> LiftstreamApp:
    """`health`: what the worker's /live and /ready report, kept up to date by the app's health timers."""
    metrics = metrics or Metrics(CollectorRegistry())
    datadir = settings.local.run_dir / "workers" / settings.app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = LiftstreamApp(
        settings.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka.bootstrap.split(",")],
        broker_credentials=broker_credentials(settings.kafka),
        broker_session_timeout=settings.group.session_timeout_s,
        broker_heartbeat_interval=settings.group.heartbeat_interval_s,
        broker_rebalance_timeout=settings.group.rebalance_timeout_s,
        consumer_group_instance_id=settings.group.instance_id,
        store=settings.store,
        datadir=str(datadir),
        topic_partitions=settings.topics.partitions,
        # Faust's own declarations (changelogs, leader) follow the topic policy; outside mode create the
        # topics are the cluster owner's, so Faust must not create any.
        topic_replication_factor=settings.topic_policy.replication_factor,
        topic_allow_declare=settings.topic_policy.mode == "create",
        producer_acks=-1,
        producer_linger=settings.batching.producer_linger_s,
        broker_commit_every=COMMIT_EVERY,
        broker_commit_interval=COMMIT_INTERVAL_S,
        consumer_auto_offset_reset="earliest",
        # Room for a few batches per partition ahead of the agent; beyond it Faust stops fetching the
        # partition (the consumer keeps polling, so the worker stays in its group).
        stream_buffer_maxsize=max(4096, 4 * settings.batching.max_size),
        web_enabled=False,
    )
    app.client_extra = dict(settings.kafka.client_options)
    # Table writes of a batch go through the producer's send-soon buffer; let a batch's worth in before
    # Faust holds the stream back for it to drain.
    app.producer.buffer.max_messages = max(app.producer.buffer.max_messages, 4 * settings.batching.max_size)
    scorer = scorer or TritonScorer.from_settings(settings, observer=metrics)
    engine = Engine(settings, app, scorer, metrics)
    app.engine = engine
    for agents in (users, promotions, effects, timers):
        agents.register(engine)
    app.health = health or Health(settings.health_stale_s)
    health_timers.register(engine, app.health)

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        await engine.revoke()

    return app
