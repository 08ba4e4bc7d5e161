"""Everything the agents share, built once per worker from Settings."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust

from stream.agents.tables import TableView, in_partition
from stream.agents.topics import USER_INPUTS, topic_names
from stream.alerts import AlertGate
from stream.batching.acks import AckLedger
from stream.batching.partials import Partial
from stream.batching.pending import PendingExposures
from stream.batching.pipeline import Pipeline
from stream.batching.records import Decoded, Record, decode_records
from stream.batching.scoring import BatchScorer
from stream.batching.users import EMPTY, UserConfig, UserValue
from stream.effects.report import Policy
from stream.events.framing import Framing, framing_for
from stream.metrics import TOPICS, Metrics
from stream.outputs import Output
from stream.outputs.drift import DriftMonitor
from stream.registry.encoder import PromoTextEncoder
from stream.registry.registry import Registry
from stream.scoring.protocol import Scorer
from stream.settings import Settings

log = logging.getLogger(__name__)

REGISTRY_PARTITION = 0


@dataclass
class Engine:
    settings: Settings
    app: faust.App
    scorer: Scorer
    metrics: Metrics
    names: dict[str, str] = field(init=False)
    logical: dict[str, str] = field(init=False)
    topics: dict[str, Any] = field(init=False)
    framing: Framing = field(init=False)
    users: TableView[UserValue] = field(init=False)
    partials: TableView[Partial] = field(init=False)
    merged: TableView[dict[str, Any]] = field(init=False)
    registry: Registry = field(init=False)
    encoder: PromoTextEncoder = field(init=False)
    batch_scorer: BatchScorer = field(init=False)
    config: UserConfig = field(init=False)
    ledger: AckLedger[Any] = field(init=False, default_factory=AckLedger)
    pending: PendingExposures = field(init=False)
    pipeline: Pipeline = field(init=False)
    drift: DriftMonitor = field(init=False)
    alert_gate: AlertGate = field(init=False)
    policy: Policy = field(init=False)
    undecidable: set[str] = field(init=False, default_factory=set)
    """Promotions whose decision.reason was logged (once each)."""
    dirty_partials: set[str] = field(init=False, default_factory=set)
    progress: dict[tuple[str, int], int] = field(init=False, default_factory=dict)
    """(logical topic, partition) → highest offset finished, for the lag gauge."""
    unsent: deque[Any] = field(init=False, default_factory=deque)
    """Batches taken and not yet sent, oldest first (stream/agents/users.py: the covariate stamps)."""
    model_version: int = 0
    user_stream: Any = None
    """The user-events agent's stream, which acknowledges held exposures when they resolve."""

    def __post_init__(self) -> None:
        s, app = self.settings, self.app
        self.names = topic_names(s)
        self.logical = {kafka: logical for logical, kafka in self.names.items()}
        raw: dict[str, Any] = {
            "key_type": bytes,
            "value_type": bytes,
            "key_serializer": "raw",
            "value_serializer": "raw",
        }
        self.topics = {t: app.topic(name, **raw) for t, name in self.names.items()}
        self.framing = framing_for(s, self.names)
        keep = s.store.startswith("memory")
        n = s.topics.partitions
        self.users = TableView(
            app.Table("users", partitions=n, key_type=str),
            UserValue.from_json,
            UserValue.to_json,
            keep_objects=keep,
        )
        self.partials = TableView(
            app.Table("partials", partitions=n, key_type=str),
            Partial.from_json,
            Partial.to_json,
            keep_objects=keep,
            snapshots=True,
        )
        self.merged = TableView(
            app.Table("campaign-totals", partitions=n, key_type=str), dict, dict, keep_objects=False
        )
        # Every worker needs every promotion; the registry is small and always held in memory.
        registry_table = app.GlobalTable(
            "promotion-registry",
            partitions=1,
            key_type=str,
            store="memory://",
            synchronize_all_active_partitions=True,
            recovery_buffer_size=1,
        )
        self._registry_table = registry_table
        self.registry = Registry(registry_table.data, self._write_registry)
        self.encoder = PromoTextEncoder(self.scorer)
        b = s.batching
        self.batch_scorer = BatchScorer(
            self.scorer,
            self.registry,
            self.encoder,
            backoff_base_s=b.backoff_base_s,
            backoff_max_s=b.backoff_max_s,
            inflight=self.metrics.track_inflight,
        )
        self.config = UserConfig.from_settings(s)
        self.pending = PendingExposures(s.windows.unknown_promotion_wait_s)
        self.pipeline = Pipeline(b.max_in_flight, on_error=self._crash)
        self.drift = DriftMonitor(s.model_repo, s.drift)
        self.alert_gate = AlertGate(s.alert_cooldown_s)
        d = s.decisions
        self.policy = Policy(d.alpha, d.min_exposures_per_arm, d.min_purchases_per_arm)

    def user_value(self, user_id: str) -> UserValue:
        return self.users.get(user_id) or EMPTY

    def record(self, event: Any) -> Record:
        m = event.message
        return Record(self.logical.get(m.topic, m.topic), m.partition, m.offset, m.key, m.value, m.timestamp)

    async def resolve_schema_ids(self, events: Iterable[Any]) -> None:
        """Asks the schema registry about the new schema ids of consumed `events`, before `decode`."""
        messages = (e.message for e in events)
        await self.framing.resolve((self.logical.get(m.topic, m.topic), m.value) for m in messages)

    def decode(self, records: Iterable[Record], now: datetime) -> Decoded:
        """Input records through the gate, under the input policy (Schema Registry framing, extra fields)."""
        ignore = self.settings.events.extra_fields == "ignore"
        return decode_records(records, self.names, now, framing=self.framing, ignore_extra=ignore)

    def _write_registry(self, key: str, value: dict[str, Any]) -> Any:
        with in_partition(REGISTRY_PARTITION):
            self._registry_table.data[key] = value
        return self._registry_table.send_changelog(REGISTRY_PARTITION, key, value)

    async def publish(self, outputs: Iterable[Output]) -> list[Any]:
        """Hands every output to the producer without waiting; returns the delivery futures."""
        futures = []
        counts: dict[str, int] = {}
        send = self.app.producer.send  # the raw producer: outputs are bytes already, no per-message wrapping
        for out in outputs:
            name = self.names[out.topic]
            futures.append(await send(name, out.key, out.value, partition=None, timestamp=None, headers=None))
            counts[out.topic] = counts.get(out.topic, 0) + 1
        for topic, n in counts.items():
            if topic in TOPICS:
                self.metrics.published(topic, n)
        return futures

    def owned_partitions(self) -> set[int]:
        """Partitions of the user inputs this worker processes now."""
        exposures = self.names["exposures"]
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == exposures}

    def user_topics(self) -> list[str]:
        return [self.names[t] for t in USER_INPUTS]

    def _crash(self, exc: BaseException) -> None:
        asyncio.ensure_future(self.app.crash(exc))
