"""Reads the output topics for the monitor: no consumer group, no commits, from the end or the beginning."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ValidationError

from stream.errors import ServiceError
from stream.kafka_options import client_options
from stream.monitor.state import MonitorState
from stream.settings import Kafka

log = logging.getLogger(__name__)

# Topics the worker creates after the monitor started are found by the next metadata refresh.
_METADATA_MAX_AGE_MS = 5000
_CATCH_UP_TIMEOUT_S = 60.0


class OutputReader:
    """Folds the messages of `topics` (Kafka topic name → event model) into a `MonitorState`.

    Without a consumer group every partition of every topic is read, and nothing is committed, so any
    number of monitors can watch side by side without disturbing each other or the worker.
    """

    def __init__(self, kafka: Kafka, topics: Mapping[str, type[BaseModel]], state: MonitorState,
                 *, from_beginning: bool) -> None:
        self.topics = dict(topics)
        self.state = state
        self._consumer = AIOKafkaConsumer(
            **client_options(kafka), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            metadata_max_age_ms=_METADATA_MAX_AGE_MS,
        )
        self._initial: set[str] = set()
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._next: dict[TopicPartition, int] = {}

    async def __aenter__(self) -> OutputReader:
        try:
            await self._consumer.start()
            self._initial = set(self.topics) & await self._consumer.topics()
        except KafkaError as exc:
            await self._consumer.stop()
            raise ServiceError(f"cannot reach Kafka to read the output topics: {exc}") from exc
        # A pattern, not a topic list: naming a missing topic in a metadata request would make the broker
        # auto-create it with default settings before the worker declares it.
        self._consumer.subscribe(pattern="^(" + "|".join(re.escape(t) for t in self.topics) + ")$")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    @property
    def missing(self) -> list[str]:
        """Topics not being read (yet): they do not exist or their metadata has not arrived."""
        return sorted(set(self.topics) - {tp.topic for tp in self._consumer.assignment()})

    async def poll(self, timeout_s: float) -> int:
        """Applies what arrives within `timeout_s`; returns the number of messages read."""
        await self._follow_assignment()
        if not self._assigned:
            # getmany would wait for an assignment without a timeout, and none comes before a topic exists.
            await asyncio.sleep(timeout_s)
            await self._follow_assignment()
            return 0
        batches = await self._consumer.getmany(timeout_ms=max(int(timeout_s * 1000), 0))
        records = [r for rs in batches.values() for r in rs]
        for record in records:
            self._apply(record)
            self._next[TopicPartition(record.topic, record.partition)] = record.offset + 1
        await self._follow_assignment()
        return len(records)

    async def catch_up(self) -> None:
        """Reads every existing topic up to its log end as of now (the `--once` view)."""
        deadline = time.monotonic() + _CATCH_UP_TIMEOUT_S
        while self._initial - {tp.topic for tp in self._consumer.assignment()}:
            if time.monotonic() > deadline:
                missing = sorted(self._initial)
                raise ServiceError(f"got no partitions of {missing} in {_CATCH_UP_TIMEOUT_S:.0f} s")
            await self.poll(0.1)
        partitions = list(self._consumer.assignment())
        end = await self._consumer.end_offsets(partitions) if partitions else {}
        while [tp for tp in partitions
               if tp in self._consumer.assignment() and await self._consumer.position(tp) < end[tp]]:
            if time.monotonic() > deadline:
                log.warning("stopped catching up with the output topics after %.0f s", _CATCH_UP_TIMEOUT_S)
                return
            await self.poll(0.2)

    async def _follow_assignment(self) -> None:
        """Keeps positions across assignment changes, and reads topics created after the start from offset 0.

        Without a group, aiokafka rebuilds the whole assignment when a new topic appears, which would send
        every partition back to the reset policy: seen ones would skip ahead, new ones would lose their start.
        """
        current = frozenset(self._consumer.assignment())
        if current == self._assigned:
            return
        created = [tp for tp in current if tp not in self._next and tp.topic not in self._initial]
        # Explicit offsets, not seek_to_beginning: a reset request still in flight would win over that one.
        starts = await self._consumer.beginning_offsets(created) if created else {}
        for tp in current:
            offset = self._next.get(tp, starts.get(tp))
            if offset is not None:
                self._consumer.seek(tp, offset)
        self._assigned = current

    def _apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        model = self.topics[record.topic]
        try:
            self.state.apply(model.model_validate_json(record.value or b""))
        except ValidationError as exc:
            # Told apart from garbage: after an upgrade the topics still hold the previous version's events.
            if any(error["loc"] == ("schema_version",) for error in exc.errors()):
                self.state.other_schema += 1
            else:
                self.state.undecodable += 1
