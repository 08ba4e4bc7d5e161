"""The user-events loop: clicks, exposures and profiles → state, scoring, predictions, rankings, totals.

Input arrives in per-partition chunks (stream/agents/adapter.py: bulk input; stream/batching/intake.py).
Per batch: decode, assemble state changes (staged), and build one scoring request;
then, in the pipeline, score it (at most `batching.max_in_flight` batches in flight) and, in input
order, `send` (hand outputs to the producer, count predictions) and `settle` (once the outputs are
delivered, flush the user values, then the batch's partials, then mark the input settled, each after the
previous one is delivered: stream/batching/checkpoint.py); the next batch is sent while this one settles.
Why user values go before partials: stream/batching/outbox.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from stream.agents.adapter import bulk_input
from stream.agents.engine import COMMIT_INTERVAL_S, Engine
from stream.agents.topics import USER_INPUTS
from stream.batching.assemble import ExposureItem
from stream.batching.checkpoint import Settling
from stream.batching.contract import enforce
from stream.batching.covariate import Change, batch_blocks, covariate
from stream.batching.intake import Chunk
from stream.batching.outbox import Outbox, aggregate
from stream.batching.partials import Partial, partial_key
from stream.batching.pending import UNKNOWN_PROMOTION
from stream.batching.pipeline import Settle
from stream.batching.records import Record
from stream.batching.request import ScoreRequest, build_request
from stream.batching.scoring import Scored
from stream.batching.users import stamp
from stream.batching.working import assemble_working
from stream.effects.attribution import Delta
from stream.errors import DecodeError
from stream.events.gate import dead_letter, encode
from stream.events.models import DeadLetter
from stream.features.state import stable_hash
from stream.outputs import Output
from stream.outputs.predictions import effect_predictions, latencies_s, prediction_outputs
from stream.outputs.rankings import ranking_outputs
from stream.scoring.signature import ENCODER, SCORER

log = logging.getLogger(__name__)

PENDING_TICK_S = 0.25


@dataclass(frozen=True)
class Batch:
    id: int
    """Its id in the commit ledger (stream/batching/commits.py)."""
    epoch: int
    """The fence epoch it was taken in (stream/batching/fence.py)."""
    dead: list[DeadLetter]
    user_writes: list[tuple[str, int, Any]]
    partials: dict[str, Partial | None]
    """The partials the batch changes or counts predictions in, realised totals as of the batch."""
    released: list[Record]
    """Held records of earlier batches that this batch settles (exposures whose promotion arrived)."""
    last: dict[tuple[str, int], int]
    """(logical topic, partition) → its highest offset in the batch, for the lag gauge."""
    size: int
    taken: float
    wall: float
    changes: list[Change]
    learned: dict[tuple[str, int], tuple[float, ...]] = field(default_factory=dict)
    """Covariates of exposures that earlier batches stamped after this one was taken (covariate.py)."""


def register(engine: Engine) -> None:
    s = engine.settings
    app = engine.app
    bulk_input(app, [engine.topics[t] for t in USER_INPUTS], engine.intake.put, engine.assigned)

    @app.task
    async def user_events() -> None:
        try:
            while True:
                chunks = await engine.intake.take(s.batching.max_size, s.batching.max_wait_s)
                # The epoch they were taken in: a revoke from now on drops them (a seek fetches them again).
                await submit(engine, chunks, engine.fence.epoch)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("the user-events loop failed")
            await app.crash(exc)

    @app.timer(PENDING_TICK_S, name="pending-exposures")
    async def pending_exposures() -> None:
        # Held exposures resolve (or expire) at the next batch; when input stops — the end of a burst,
        # or a rebalance waiting for them to settle — an empty batch releases them.
        if len(engine.pending) and engine.intake.open:
            await submit(engine, [], engine.fence.epoch)

    @app.timer(COMMIT_INTERVAL_S, name="commit-inputs")
    async def commit_inputs() -> None:
        await engine.checkpoint.commit()


async def submit(engine: Engine, chunks: list[Chunk], epoch: int) -> None:
    records = engine.records(chunks)
    await engine.resolve_schema_ids(records)
    taken = take(engine, records, epoch)
    if taken is not None:
        batch, request = taken
        await engine.pipeline.submit(engine.batch_scorer.score(request), partial(send, engine, batch))


def take(engine: Engine, records: list[Record], epoch: int) -> tuple[Batch, ScoreRequest] | None:
    """Assembles a batch (None when a revoke came since its records were taken from the intake)."""
    if epoch != engine.fence.epoch or not engine.intake.open:
        return None
    now, wall = datetime.now(UTC), time.time()
    batch_id, fresh = engine.commits.take((r.tp, r.offset) for r in records)
    if not all(fresh):
        log.info("left out %d messages delivered again", len(fresh) - sum(fresh))
        records = [r for r, new in zip(records, fresh, strict=True) if new]
    decoded = enforce(
        engine.decode(records, now),
        input_partitions(engine),
        engine.settings.windows.allowed_lateness_s,
        engine.names,
        now,
    )
    # With no active promotion yet (their texts may still be encoding) a ranking would be empty: leave the
    # session unranked so one of its next clicks ranks it.
    rankable = bool(engine.registry.active())
    asm = assemble_working(
        decoded.valid, engine.user_value, engine.partials.get, engine.config, rankable=rankable
    )
    for uid, (_, value) in asm.users.items():
        engine.users.stage(uid, value)
    for key, p in asm.partials.items():
        engine.partials.stage(key, p)

    registry = engine.registry
    ready, expired = engine.pending.release(registry.known, wall)
    known = [i for i in asm.exposures if registry.known(i.event.promotion_id)]
    unknown = [i for i in asm.exposures if not registry.known(i.event.promotion_id)]
    expired += engine.pending.hold(unknown, wall)
    for item in unknown:
        engine.commits.hold(item.record.tp, item.record.offset)
    promos = {i.event.promotion_id: registry.get(i.event.promotion_id) for i in ready + known}
    exposures = [(i, promo) for i in ready + known if (promo := promos[i.event.promotion_id]) is not None]
    request = build_request(exposures, list(asm.rankings.values()), engine.user_value, registry.active())

    m = engine.metrics
    for topic in USER_INPUTS:
        outcomes = {o: asm.outcomes[topic, o] for o in ("ok", "late", "duplicate")}
        m.observe_input(topic, **outcomes)
    for (topic, reason), n in decoded.reasons.items():
        m.dead_letter(topic, reason, n)
    if decoded.reasons:
        log.info("dead letters: %s", ", ".join(f"{t} {r} {n}" for (t, r), n in decoded.reasons.items()))
    dead = decoded.dead + [_unknown(engine, i, now) for i in expired]
    if expired:
        m.dead_letter("exposures", UNKNOWN_PROMOTION, len(expired))
    released = [i.record for i in ready + expired]
    writes = [(uid, part, value) for uid, (part, value) in asm.users.items()]
    keys = {partial_key(promo.promotion_id, item.record.partition) for item, promo in exposures}
    partials = {key: engine.partials.get(key) for key in keys | set(asm.partials)}
    last = {r.tp: r.offset for r in records}
    batch = Batch(
        batch_id,
        epoch,
        dead,
        writes,
        partials,
        released,
        last,
        len(records),
        time.perf_counter(),
        wall,
        asm.changes,
    )
    engine.unsent.append(batch)
    return batch, request


def input_partitions(engine: Engine) -> dict[str, int]:
    """Logical user input topic → its partition count, as the consumer's group metadata has it (the
    configured count until the group's first assignment)."""
    counts = engine.app.consumer.topic_partitions
    return {t: counts(engine.names[t]) or engine.settings.topics.partitions for t in USER_INPUTS}


def _unknown(engine: Engine, item: ExposureItem, now: datetime) -> DeadLetter:
    r = item.record
    wait = engine.settings.windows.unknown_promotion_wait_s
    error = DecodeError(UNKNOWN_PROMOTION, f"promotion {item.event.promotion_id} unknown after {wait:g}s")
    return dead_letter(engine.names[r.topic], r.partition, r.offset, r.key, r.value, error, now)


async def send(engine: Engine, batch: Batch, scored: Scored) -> Settle:
    """Hands the batch's outputs to the producer and counts its predictions; `settle` finishes the batch.
    A batch taken before a revoke does neither: its input is replayed."""
    if not engine.fence.allows(batch.epoch):
        return _abandoned
    k = engine.settings.windows.ranking_top_k
    predictions = effect_predictions(scored)
    outputs = [*prediction_outputs(predictions), *ranking_outputs(scored, k)]
    outputs += [Output("dead-letter", None, encode(d)) for d in (*batch.dead, *_unscored(engine, scored))]
    sent = await engine.publish(outputs)
    _count_predictions(engine, scored)
    _count_covariates(engine, batch, scored)
    # The partials as of this batch: its realised totals, the predictions and covariates counted up to it.
    partials = [
        (key, counted.partition, (realised or _fresh(counted)).with_predictions_of(counted))
        for key, realised in sorted(batch.partials.items())
        if (counted := engine.partials.get(key)) is not None
    ]
    return partial(settle, engine, batch, scored, sent, partials, len(outputs))


def _fresh(p: Partial) -> Partial:
    return Partial(p.promotion_id, p.campaign_id, p.partition)


def _unscored(engine: Engine, scored: Scored) -> list[DeadLetter]:
    """Dead letters of the exposures the batch left unscored (stream/batching/scoring.py). They settle
    with the batch, and still count in the realised totals (they were exposed); not in the predictions
    nor in the covariate sample, like an exposure whose promotion was unknown when it opened."""
    now = datetime.now(UTC)
    out = []
    reasons: Counter[str] = Counter()
    for item, failure in scored.unscored():
        r = item.record
        error = DecodeError(failure.reason, failure.error)
        out.append(dead_letter(engine.names[r.topic], r.partition, r.offset, r.key, r.value, error, now))
        reasons[failure.reason] += 1
    for reason, n in reasons.items():
        engine.metrics.dead_letter("exposures", reason, n)
    return out


async def _abandoned() -> None:
    pass


async def settle(
    engine: Engine,
    batch: Batch,
    scored: Scored,
    sent: list[Any],
    partials: list[tuple[str, int, Partial]],
    outputs: int,
) -> None:
    """Once the outputs are delivered: flushes the user values, then the partials, then marks the input
    settled (stream/batching/checkpoint.py; a replayed click ranks nobody, so the rankings must be in
    Kafka before the user values that make the click a replay)."""
    settling = Settling(batch.id, batch.epoch, sent, batch.user_writes, partials, batch.released)
    if not await engine.checkpoint.settle(settling):
        log.info("batch of %d events abandoned: taken before a revoke", batch.size)
        return
    engine.dirty_partials |= {key for key, _, _ in partials}
    engine.progress.update(batch.last)
    _observe(engine, scored)
    log.debug(
        "batch: %d events, %d rows scored at v%d, %d outputs, %.1f ms since taken (scored %.1f ms)",
        batch.size,
        len(scored.request),
        scored.version,
        outputs,
        (time.perf_counter() - batch.taken) * 1e3,
        (scored.scored_at.timestamp() - batch.wall) * 1e3,
    )


def _count_predictions(engine: Engine, scored: Scored) -> None:
    """Counts each exposure's prediction in its partial (once: the partial's mark skips replays)."""
    groups: dict[str, tuple[Partial, list[int], list[list[float]]]] = {}
    exposures = scored.exposures()
    uplift = scored.uplift[[i for i, _, _ in exposures]].tolist()
    for (_, item, promo), row in zip(exposures, uplift, strict=True):
        key = partial_key(promo.promotion_id, item.record.partition)
        if key not in groups:
            fresh = Partial(promo.promotion_id, promo.campaign_id, item.record.partition)
            groups[key] = (engine.partials.get(key) or fresh, [], [])
        groups[key][1].append(item.record.offset)
        groups[key][2].append(row)
    for key, (current, offsets, rows) in groups.items():
        order = sorted(range(len(offsets)), key=offsets.__getitem__)
        engine.partials.stage(
            key, current.add_predictions([offsets[i] for i in order], [rows[i] for i in order])
        )


def _count_covariates(engine: Engine, batch: Batch, scored: Scored) -> None:
    """Stages the batch's covariate blocks on its partials and in its users' outboxes, and stamps the
    exposures it scored into its own and every later taken batch's user values (batching/covariate.py)."""
    if engine.unsent and engine.unsent[0] is batch:
        engine.unsent.popleft()
    exposures = scored.exposures()
    rows = [i for i, _, _ in exposures]
    p_t, p_c = scored.p_treated[rows].tolist(), scored.p_control[rows].tolist()
    xs = {
        (item.event.user_id, stable_hash(item.event.event_id)): covariate(t, c)
        for (_, item, _), t, c in zip(exposures, p_t, p_c, strict=True)
    }
    blocks = batch_blocks(
        batch.changes, lambda uid, h: xs.get((uid, h)), lambda uid, h: batch.learned.get((uid, h))
    )
    for (pid, cid, partition), (treatment, holdout) in blocks.partials.items():
        key = partial_key(pid, partition)
        current = engine.partials.get(key) or Partial(pid, cid, partition)
        engine.partials.stage(key, replace(current, totals=current.totals.add_scored(treatment, holdout)))
    by_user: dict[str, list[tuple[int, tuple[float, ...]]]] = {}
    for (uid, h), x in blocks.stamps.items():
        by_user.setdefault(uid, []).append((h, x))
    for later in engine.unsent:
        later.learned.update(blocks.stamps)
    for b in (batch, *engine.unsent):
        _patch_writes(engine, b, by_user, blocks.users if b is batch else {})


def _patch_writes(
    engine: Engine,
    batch: Batch,
    stamps: dict[str, list[tuple[int, tuple[float, ...]]]],
    outboxes: dict[str, list[Delta]],
) -> None:
    """Stamps and outbox covariate deltas into a batch's user writes (and the staged value, when it is one
    of them, so that later batches read it and its flush ends the staging)."""
    writes = batch.user_writes
    for i, (uid, partition, value) in enumerate(writes):
        if uid not in stamps and uid not in outboxes:
            continue
        new = stamp(value, stamps.get(uid, ()))
        if uid in outboxes and new.outbox is not None:
            box = new.outbox
            new = replace(new, outbox=Outbox(box.position, aggregate((*box.deltas, *outboxes[uid]))))
        writes[i] = (uid, partition, new)
        engine.users.restage(uid, value, new)


def _observe(engine: Engine, scored: Scored) -> None:
    exposures = scored.exposures()
    rows = [i for i, _, _ in exposures]
    items = [item for _, item, _ in exposures]
    if items:
        engine.metrics.observe_batch(len(items), latencies_s(items, scored))
        arms = np.asarray([i.event.arm.value for i in items])
        engine.drift.update(
            scored.version,
            scored.request.user_features[rows],
            scored.request.promo_attrs[rows],
            arms,
            scored.uplift[rows],
        )
    if scored.version != engine.model_version and len(scored.request):
        engine.model_version = scored.version
        engine.metrics.set_model_version(SCORER, scored.version)
        engine.metrics.set_model_version(ENCODER, scored.version)
        log.info("scoring with model version %d", scored.version)
