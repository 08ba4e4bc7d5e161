"""Everything the agents share, built once per worker from Settings."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust
from faust.types import TP as KafkaTP

from stream.agents import adapter
from stream.agents.adapter import in_partition
from stream.agents.produce import BatchSender
from stream.agents.tables import TableView
from stream.agents.topics import USER_INPUTS, topic_names
from stream.alerts import AlertGate
from stream.batching.checkpoint import Checkpoint
from stream.batching.commits import Commits
from stream.batching.fence import Fence
from stream.batching.intake import Chunk, Intake
from stream.batching.partials import Partial
from stream.batching.pending import PendingExposures
from stream.batching.pipeline import Pipeline
from stream.batching.records import TP, Decoded, Record, decode_records
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
COMMIT_INTERVAL_S = 1.0
INTAKE_BATCHES = 4
"""Batches' worth of records waiting in the intake before their partitions are held out of fetches."""


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
    sender: BatchSender = field(init=False)
    users: TableView[UserValue] = field(init=False)
    partials: TableView[Partial] = field(init=False)
    merged: TableView[dict[str, Any]] = field(init=False)
    registry: Registry = field(init=False)
    encoder: PromoTextEncoder = field(init=False)
    batch_scorer: BatchScorer = field(init=False)
    config: UserConfig = field(init=False)
    intake: Intake = field(init=False)
    commits: Commits = field(init=False, default_factory=Commits)
    fence: Fence = field(init=False)
    checkpoint: Checkpoint = field(init=False)
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
        self.sender = BatchSender(app)
        n = s.topics.partitions
        self.users = TableView(
            app.Table("users", partitions=n, key_type=str),
            UserValue.from_json,
            UserValue.to_json,
            self.sender,
            keep_objects=keep,
        )
        self.partials = TableView(
            app.Table("partials", partitions=n, key_type=str),
            Partial.from_json,
            Partial.to_json,
            self.sender,
            keep_objects=keep,
            snapshots=True,
        )
        self.merged = TableView(
            app.Table("campaign-totals", partitions=n, key_type=str),
            dict,
            dict,
            self.sender,
            keep_objects=False,
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
        self.intake = Intake(INTAKE_BATCHES * b.max_size, lambda tps: adapter.hold(app, tps))
        g = s.group
        self.fence = Fence(stall_s=g.session_timeout_s - g.heartbeat_interval_s)
        self.checkpoint = Checkpoint(
            self.commits,
            self.fence,
            self.users,
            self.partials,
            self._commit,
            self.pipeline.drain,
            g.revoke_drain_s,
        )
        self.drift = DriftMonitor(s.model_repo, s.drift)
        self.alert_gate = AlertGate(s.alert_cooldown_s)
        d = s.decisions
        self.policy = Policy(d.alpha, d.min_exposures_per_arm, d.min_purchases_per_arm)

    def user_value(self, user_id: str) -> UserValue:
        return self.users.get(user_id) or EMPTY

    def record(self, event: Any) -> Record:
        """A Faust event's message (the promotions agent) as a record."""
        m = event.message
        return Record(self.logical.get(m.topic, m.topic), m.partition, m.offset, m.key, m.value, m.timestamp)

    def records(self, chunks: Iterable[Chunk]) -> list[Record]:
        """The records of the chunks fetched in the current generation, of partitions this worker owns.

        Left out: records fetched in an earlier consumer generation (after a rebalance the partition is
        sought to its committed offset and they come again, in order) and those of a partition this worker
        no longer owns (its new owner's)."""
        generation = self.app.consumer_generation_id
        owned = self.owned_partitions()
        logical = self.logical
        out = []
        for tp, batch, fetched_in in chunks:
            if fetched_in != generation or tp.partition not in owned:
                log.info(
                    "left out offsets %d..%d of %s (fetched in generation %d, now %d; owned: %s)",
                    batch[0].offset,
                    batch[-1].offset,
                    tp,
                    fetched_in,
                    generation,
                    tp.partition in owned,
                )
                continue
            topic = logical[tp.topic]
            out += [Record(topic, r.partition, r.offset, r.key, r.value, r.timestamp / 1000.0) for r in batch]
        return out

    async def resolve_schema_ids(self, records: Iterable[Record]) -> None:
        """Asks the schema registry about the new schema ids of consumed `records`, before `decode`."""
        await self.framing.resolve((r.topic, r.value) for r in records)

    def decode(self, records: Iterable[Record], now: datetime) -> Decoded:
        """Input records through the gate, under the input policy (Schema Registry framing, extra fields)."""
        ignore = self.settings.events.extra_fields == "ignore"
        return decode_records(records, self.names, now, framing=self.framing, ignore_extra=ignore)

    def _write_registry(self, key: str, value: dict[str, Any]) -> Any:
        with in_partition(REGISTRY_PARTITION):
            self._registry_table.data[key] = value
        return self._registry_table.send_changelog(REGISTRY_PARTITION, key, value)

    async def publish(self, outputs: Iterable[Output]) -> list[Any]:
        """Hands every output to the producer without waiting (one batch per partition); returns the
        batches' delivery futures."""
        counts: dict[str, int] = {}
        names = self.names
        records = []
        for out in outputs:
            records.append((names[out.topic], None, out.key, out.value))
            counts[out.topic] = counts.get(out.topic, 0) + 1
        for topic, n in counts.items():
            if topic in TOPICS:
                self.metrics.published(topic, n)
        return [future for *_, future in await self.sender.send(records)]

    def owned_partitions(self) -> set[int]:
        """Partitions of the user inputs this worker processes now."""
        exposures = self.names["exposures"]
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == exposures}

    def user_topics(self) -> list[str]:
        return [self.names[t] for t in USER_INPUTS]

    async def _commit(self, offsets: Mapping[TP, int], revoking: bool) -> bool:
        names = self.names
        return await adapter.commit(
            self.app, {KafkaTP(names[t], p): o for (t, p), o in offsets.items()}, revoking=revoking
        )

    async def revoke(self) -> None:
        """The rebalance step (Faust's rebalances are eager: every partition is revoked, the kept ones
        assigned again): stop taking, drain or abandon the batches in flight, commit, fence, flush."""
        self.intake.close()
        in_flight = len(self.commits)
        await self.checkpoint.revoke()
        self._forget()
        await self.app.producer.flush()
        log.info("revoke: %d batches were in flight; committed what settled, the rest is fenced", in_flight)

    def assigned(self) -> None:
        """A new assignment, before anything of it is fetched (stream/agents/adapter.py). Also a new epoch of
        the fence: should a generation ever begin without the revoke step, nothing of the last one writes."""
        if self.intake.open:
            log.warning("a new assignment came without a revoke: the batches in flight are fenced")
        self.fence.revoke()
        self.commits.reset()
        self._forget()
        self.intake.reopen()

    def _forget(self) -> None:
        self.pending.forget(lambda item: False)
        self.users.forget(lambda user_id, value: True)
        self.partials.forget(lambda key, partial: True)
        self.unsent.clear()

    def _crash(self, exc: BaseException) -> None:
        asyncio.ensure_future(self.app.crash(exc))
