"""The Faust app of a liftstream worker, built from Settings.

Broker connection (SASL/SSL from `settings.kafka`), table store, partitions, and a producer that waits
for all in-sync replicas and is idempotent (faust only enables idempotence inside transactions, so the
app brings its own transport). Input and output topics carry raw bytes: decoding is the engine's job,
so an invalid message becomes a dead letter instead of an error inside Faust.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, cast

import aiokafka
import faust
from aiokafka.admin import NewTopic
from faust.exceptions import ImproperlyConfigured
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from mode.types.signals import BaseSignalT
from prometheus_client import CollectorRegistry

from stream.agents import effects, promotions, timers, users
from stream.agents import health as health_timers
from stream.agents.engine import Engine
from stream.agents.topics import USER_INPUTS
from stream.batching.contract import user_partition
from stream.health import Health
from stream.kafka_options import broker_credentials
from stream.metrics import Metrics
from stream.scoring.protocol import Scorer
from stream.scoring.triton import TritonScorer
from stream.settings import Settings

log = logging.getLogger(__name__)

COMMIT_EVERY = 1000
COMMIT_INTERVAL_S = 1.0


class _IdempotentProducer(driver.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        extra = cast(LiftstreamApp, self.app).client_extra
        return {**super()._settings_extra(), **extra, "enable_idempotence": True}


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        """Upstream's group consumer (faust-streaming 0.15.3, `_create_worker_consumer`, aiokafka >= 0.13
        without api_version), plus the pass-through client options (`kafka.client_options`): upstream builds
        the consumer from Faust's settings and credentials only, so they would reach every client but this."""
        conf = self.app.conf
        self._assignor = self.app.assignor  # the app has changelog tables: upstream picks Faust's assignor
        if conf.broker_session_timeout > conf.broker_request_timeout:
            raise ImproperlyConfigured(
                f"broker_session_timeout={conf.broker_session_timeout} exceeds "
                f"broker_request_timeout={conf.broker_request_timeout}"
            )
        options: dict[str, Any] = {
            "client_id": conf.broker_client_id,
            "group_id": conf.id,
            "group_instance_id": conf.consumer_group_instance_id,
            "bootstrap_servers": driver.server_list(transport.url, transport.default_port),
            "partition_assignment_strategy": [self._assignor],
            "enable_auto_commit": False,
            "auto_offset_reset": conf.consumer_auto_offset_reset,
            "max_poll_records": conf.broker_max_poll_records,
            "max_poll_interval_ms": int((conf.broker_max_poll_interval or 0) * 1000.0),
            "max_partition_fetch_bytes": conf.consumer_max_fetch_size,
            "fetch_max_wait_ms": 1500,
            "request_timeout_ms": int(conf.broker_request_timeout * 1000.0),
            "check_crcs": conf.broker_check_crcs,
            "session_timeout_ms": int(conf.broker_session_timeout * 1000.0),
            "rebalance_timeout_ms": int(conf.broker_rebalance_timeout * 1000.0),
            "heartbeat_interval_ms": int(conf.broker_heartbeat_interval * 1000.0),
            "isolation_level": "read_committed" if self.consumer.in_transaction else "read_uncommitted",
            "metadata_max_age_ms": conf.consumer_metadata_max_age_ms,
            "connections_max_idle_ms": conf.consumer_connections_max_idle_ms,
            **driver.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
        }
        return aiokafka.AIOKafkaConsumer(**{**options, **cast(LiftstreamApp, self.app).client_extra})


class SeekGate:
    """Which input partitions may resume fetching: after a (re)assignment, none before the seek.

    faust-streaming's recovery resumes the stream partitions and only then seeks them to their committed
    offsets (`Recovery.on_recovery_completed`); in between, the fetcher can hand out messages from the
    position the consumer had before the rebalance, ahead of the committed offset. A rebalance 1 → 2 → 1
    under load delivered offset 88 of a partition, then 87 from the seek. The gate holds such a partition
    back until the seek is done.
    """

    def __init__(self) -> None:
        self.unsought: set[TP] = set()
        self.held: set[TP] = set()

    def assigned(self, inputs: set[TP]) -> None:
        self.unsought, self.held = set(inputs), set()

    def resume(self, tps: set[TP]) -> set[TP]:
        """The partitions of `tps` to resume now; the others wait for the seek."""
        wait = tps & self.unsought
        self.held |= wait
        return tps - wait

    def hold(self, tp: TP) -> bool:
        """Holds `tp` back for the seek if it waits for one; whether it does."""
        if tp in self.unsought:
            self.held.add(tp)
        return tp in self.unsought

    def sought(self) -> set[TP]:
        """After a seek to the committed offsets: the partitions held back, to resume now."""
        held, self.held, self.unsought = self.held, set(), set()
        return held


class _SeekFirstConsumer(driver.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = SeekGate()

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self.gate.assigned({tp for tp in assigned if not self._is_changelog_tp(tp)})
        await super().on_partitions_assigned(assigned, generation_id)

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        super().resume_partitions(self.gate.resume(set(tps)))

    def on_buffer_drop(self, tp: TP) -> None:
        if self.gate.hold(tp):  # a full buffer from before the rebalance must not resume it
            self._buffered_partitions.discard(tp)
            return
        super().on_buffer_drop(tp)

    async def perform_seek(self) -> None:
        await super().perform_seek()  # if it fails, the partitions wait for the next seek or rebalance
        held = self.gate.sought()
        if held:
            log.info("resuming %d input partitions after the seek to their committed offsets", len(held))
            super().resume_partitions(held)

    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        # faust hands its live set of active partitions to the consumer thread. When recovery pauses the
        # changelogs while that fetch waits, the set is empty by the time aiokafka reads it, and aiokafka
        # reads an empty set as every assigned partition: it hands out input records, moving its position
        # past them, and faust drops them as inactive. A restarted worker then never processed the first
        # messages of a partition, yet committed past them. A snapshot keeps the fetch to what was active.
        snapshot = None if active_partitions is None else set(active_partitions)
        return await super()._getmany(snapshot, timeout)


class _Transport(driver.Transport):
    Consumer = _SeekFirstConsumer
    Producer = _IdempotentProducer


class LiftstreamApp(faust.App):
    engine: Engine
    health: Health
    client_extra: Mapping[str, Any] = MappingProxyType({})
    """The pass-through aiokafka options (`kafka.client_options`) of the app's consumer and producer
    (none for an app not built by `create_app`)."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return _Transport(self.conf.broker_producer, self)


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
        revoked: set[TP] = args[0]  # the signal is sent as on_partitions_revoked.send(revoked)
        gone = {(engine.logical.get(tp.topic, tp.topic), tp.partition) for tp in revoked}
        engine.ledger.forget(gone)
        engine.pending.forget(lambda item: item.record.tp not in gone)
        lost = {partition for topic, partition in gone if topic in USER_INPUTS}
        if lost:
            count = users.input_partitions(engine)["profiles"]
            engine.users.forget(lambda user_id, _: user_partition(user_id, count) in lost)
            engine.partials.forget(lambda _, partial: partial.partition in lost)

    return app
