"""Every use of faust-streaming's private API, in one place (faust-streaming is pinned to 0.15.3 in
pyproject.toml: each override below names the upstream behaviour it answers, and must be rechecked when
the pin moves).

- `LiftstreamApp` builds its own transport: a producer with idempotence, a consumer with the pass-through
  client options, the bulk input path, the seek gate and the active-partition snapshot.
- **Bulk input.** Upstream's fetch loop (`Consumer._drain_messages`) awaits
  `wait_first(callback(message), …)` for every message (four tasks and three cancellations, ≈40–60 µs) and
  then the stream makes an `Event` per message and tracks its ack. For the topics in `bulk_topics` the loop
  here hands each fetched partition's record list, with the consumer generation, to `bulk_sink` in one
  call; every other topic goes the upstream way. Back-pressure holds partitions out of the fetch request
  (`hold`), never blocks the loop: table recovery shares it.
- `in_partition`: Faust's tables take a write's partition from the event being processed.
- `raw_producer`: the aiokafka producer under Faust's, whose batch API the engine produces with.
- `rejoin`: a worker whose loop stood still past its session asks for a new assignment.
- `commit`: offsets committed under Faust's one-commit-at-a-time future, through its commit path (producer
  flush, the tables' persisted offsets, its committed-offset bookkeeping).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, cast

import aiokafka
import faust
from faust.exceptions import ImproperlyConfigured
from faust.streams import _current_event
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

log = logging.getLogger(__name__)

BulkSink = Callable[[TP, list[Any], int], None]
"""(partition, its fetched `aiokafka.ConsumerRecord`s in offset order, consumer generation)."""


class _IdempotentProducer(driver.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        # faust enables idempotence only inside transactions.
        extra = cast(LiftstreamApp, self.app).client_extra
        return {**super()._settings_extra(), **extra, "enable_idempotence": True}


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        """Upstream's group consumer (`_create_worker_consumer`, aiokafka >= 0.13 without api_version),
        plus the pass-through client options (`kafka.client_options`): upstream builds the consumer from
        Faust's settings and credentials only, so they would reach every client but this."""
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


class _Consumer(driver.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = SeekGate()
        self.bulk_topics: frozenset[str] = frozenset()
        self.bulk_sink: BulkSink | None = None
        self.bulk_assigned: Callable[[], None] | None = None
        self.held_back: set[TP] = set()
        """Bulk partitions left out of fetch requests while the engine's intake is full."""

    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self.gate.assigned({tp for tp in assigned if not self._is_changelog_tp(tp)})
        self.held_back.clear()
        # Before upstream's assignment steps: its recovery may seek and resume the inputs before it sends
        # the app's on_partitions_assigned signal, and records fetched after the seek must not be dropped
        # (nothing would fetch them again). Records fetched before the seek are held back by the gate.
        if self.bulk_assigned is not None:
            self.bulk_assigned()
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
        # aiokafka's `seek_to_committed` leaves alone a partition whose committed offset is None or 0
        # (`if offset and offset > 0`), so its position stays where the last fetch left it: records the
        # engine left out (fetched in the generation before, or waiting in its intake at the revoke) would
        # never come again, and a partition's first records were lost at the first rebalance. Such a
        # partition is sought to its beginning, what its committed offset means.
        fresh = [
            driver.ensure_aiokafka_TP(tp)
            for tp in self.assignment()
            if tp.topic in self.bulk_topics and self._committed_offset[tp] is None
        ]
        if fresh:
            await cast(Any, self._thread).seek_to_beginning(*fresh)
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
        if active_partitions is None:
            return await super()._getmany(None, timeout)
        snapshot = set(active_partitions) - self.held_back
        if not snapshot:
            await asyncio.sleep(min(timeout, 0.05))
            return {}
        return await super()._getmany(snapshot, timeout)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - runs inside the worker
        """Upstream's fetch loop (`Consumer._drain_messages`), with the records of `bulk_topics` handed on
        per partition; the rest is upstream's per-message path (read offsets, gaps, commit_every)."""
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                # The generation before the fetch: a fetch that spans a rebalance hands out records from
                # the position before it, which must count as the old generation's (the seek after the
                # rebalance fetches them again); tagged with the new one they would be taken ahead of the
                # lower offsets the seek brings, and those left out as copies.
                generation = self.app.consumer_generation_id
                records, active = await self._wait_next_records(1.0)
                await asyncio.sleep(0)
                if not records or self.should_stop or not self.flow_active:
                    continue
                for tp, batch in records.items():
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if tp.topic in self.bulk_topics and self.bulk_sink is not None:
                        self.bulk_sink(tp, batch, generation)
                    else:
                        await self._deliver(tp, batch)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _deliver(self, tp: TP, batch: list[Any]) -> None:  # pragma: no cover - as above
        for record in batch:
            r_offset = self._read_offset[tp]
            offset = record.offset
            if r_offset is not None and offset < r_offset:
                continue
            if r_offset and offset - r_offset > 1 and self.app.topics.acks_enabled_for(record.topic):
                await self._add_gap(tp, r_offset + 1, offset)
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            await self.wait_first(self.callback(self._to_message(tp, record)), self.suspend_flow.wait())
            self._read_offset[tp] = offset


class _Transport(driver.Transport):
    Consumer = _Consumer
    Producer = _IdempotentProducer


class LiftstreamApp(faust.App):
    engine: Any
    health: Any
    client_extra: Mapping[str, Any] = MappingProxyType({})
    """The pass-through aiokafka options (`kafka.client_options`) of the app's consumer and producer
    (none for an app not built by `create_app`)."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return _Transport(self.conf.broker_producer, self)


def bulk_input(
    app: faust.App, topics: Iterable[faust.TopicT], sink: BulkSink, assigned: Callable[[], None]
) -> None:
    """Subscribes `topics` (so the assignor co-partitions them like an agent's) and sends their records to
    `sink` in per-partition chunks instead of through Faust's streams; `assigned` is called at each new
    assignment, before anything of it can be fetched."""
    consumer = cast(_Consumer, app.consumer)
    for topic in topics:
        app.topics.add(topic)
    consumer.bulk_topics = frozenset(name for topic in topics for name in cast(Any, topic).topics)
    consumer.bulk_sink = sink
    consumer.bulk_assigned = assigned


def hold(app: faust.App, tps: set[TP]) -> None:
    """Leaves bulk partitions `tps` out of the fetch requests (all of them again: `tps` replaces the set)."""
    consumer = cast(_Consumer, app.consumer)
    consumer.held_back = set(tps)


async def commit(app: faust.App, offsets: Mapping[TP, int], *, revoking: bool = False) -> bool:
    """Commits `offsets` (the next offset to read, per partition) unless a commit is in flight or the group
    is rebalancing (the commit inside the revoke, `revoking`, excepted); whether it did. Partitions no
    longer assigned are left out."""
    consumer = cast(Any, app.consumer)
    if not offsets or (app.rebalancing and not revoking) or consumer._commit_fut is not None:
        return False
    consumer._commit_fut = asyncio.get_running_loop().create_future()
    try:
        return bool(await consumer._commit_offsets(dict(offsets)))
    finally:
        fut, consumer._commit_fut = consumer._commit_fut, None
        fut.set_result(None)


def rejoin(app: faust.App) -> None:
    """Asks the group coordinator for a rejoin (a revoke and a new assignment follow), from the consumer
    thread's loop, where aiokafka's coordinator lives."""
    thread = cast(Any, app.consumer)._thread
    coordinator = thread._ensure_consumer()._coordinator
    thread.thread_loop.call_soon_threadsafe(coordinator.request_rejoin)


class _Message:
    __slots__ = ("partition",)

    def __init__(self, partition: int) -> None:
        self.partition = partition


class _PartitionEvent:
    __slots__ = ("__weakref__", "message")

    def __init__(self, partition: int) -> None:
        self.message = _Message(partition)


@contextmanager
def in_partition(partition: int | None) -> Iterator[None]:
    """Runs a table access as if processing an event of `partition` (None: outside any event).

    Faust's tables and stores take the partition of a write (and, for RocksDB, of a read) from the event
    being processed (`faust.streams._current_event`); a batch spans partitions."""
    stand_in = None if partition is None else _PartitionEvent(partition)
    token = _current_event.set(None if stand_in is None else weakref.ref(stand_in))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)


def raw_producer(app: faust.App) -> aiokafka.AIOKafkaProducer:
    """The app producer's aiokafka producer (faust-streaming `Producer._producer`), for its batch API."""
    producer = cast(Any, app.producer)._producer
    if producer is None:
        raise RuntimeError("the app's producer has not started")
    return cast(aiokafka.AIOKafkaProducer, producer)
