"""Exact state under at-least-once, against the real Kafka: a worker killed mid-stream, and a rebalance
1 → 2 → 1 workers under load.

After each run the engine's outputs and state are compared with an oracle recomputed from the input:
- every valid exposure has a prediction; a replay may repeat one, only with the exposure's event_id;
- the final user values (the latest record per user in the `users` changelog) equal the engine's own pure
  updates (`assemble`) applied to the input topics' events in per-partition offset order;
- the per-partition totals in the `partials` changelog and the published campaign effects count each
  exposure, visit, conversion and prediction exactly once, as the simulated world says, and so do the
  covariate blocks of the adjusted uplift (each exposure once, with its prediction and its outcomes);
- every open exposure in the stored user values is stamped with the covariate of its prediction.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import os
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from stream.agents.topics import USER_INPUTS, topic_names
from stream.batching.assemble import assemble
from stream.batching.partials import Partial
from stream.batching.records import Record
from stream.batching.users import EMPTY, UserConfig, UserValue
from stream.effects.aggregate import PromotionTotals, merge
from stream.errors import DecodeError
from stream.events.gate import Event, decode
from stream.features.labels import outcome_labels
from stream.features.state import KIND_INDEX, stable_hash
from stream.local.triton import free_ports
from stream.scoring.signature import OUTCOMES
from stream.settings import Settings
from stream.simulate.config import SimConfig
from stream.simulate.emission import Message
from tests.stream.workers import (
    Outputs,
    World,
    assert_covariates,
    consumed,
    covariate_blocks,
    engine_settings,
    is_start,
    log_tail,
    metric,
    report,
    send_messages,
    start_worker,
    stop_worker,
    wait_for_members,
    world,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

# Few promotions with many exposures each, so exposures and the clicks they collect interleave densely.
WORLD = {"users": 400, "days": 1.0, "campaigns": 2, "promotions_per_campaign": 2, "exposure_rate": 3.0}
SEND_S = 50.0
"""How long the paced input lasts, unless it waits for a disruption (`_feed`)."""


class Workers:
    """The worker processes of one test, with their logs for failure messages."""

    def __init__(self, settings: Settings, tmp: Path) -> None:
        self.settings = settings
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.ports: list[int] = []
        self.gone: set[int] = set()
        """Indexes of workers this test stopped or killed on purpose."""

    def start(self, **env: str) -> int:
        log = self.tmp / f"worker{len(self.procs)}.log"
        (port,) = free_ports(1)
        self.procs.append(start_worker(self.settings, log, port, **env))
        self.logs.append(log)
        self.ports.append(port)
        return len(self.procs) - 1

    async def applied(self, i: int, events: int, timeout_s: float) -> None:
        """Waits until worker `i` has applied `events` user events to its state."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(OSError):  # /metrics not up yet
                if self.events(i, "ok") >= events:
                    return
            assert self.alive(), "a worker exited"
            assert time.monotonic() < deadline, f"worker {i} never applied {events} events"
            await asyncio.sleep(0.5)

    def events(self, i: int, outcome: str) -> float:
        """User events worker `i` has consumed with this outcome (ok, duplicate, late, dead_letter)."""
        return sum(
            metric(self.ports[i], "liftstream_events_in_total", topic=t, outcome=outcome) for t in USER_INPUTS
        )

    def kill(self, i: int) -> None:
        self.gone.add(i)
        os.kill(self.procs[i].pid, signal.SIGKILL)
        self.procs[i].wait(timeout=30)

    def stop(self, i: int) -> None:
        self.gone.add(i)
        assert stop_worker(self.procs[i]) == 0, log_tail(self.logs[i])

    def alive(self) -> bool:
        return all(p.poll() is None for i, p in enumerate(self.procs) if i not in self.gone)

    @contextlib.contextmanager
    def running(self) -> Iterator[Workers]:
        try:
            yield self
        except AssertionError as exc:
            raise report(exc, self.logs, self.procs) from exc
        finally:
            for p in self.procs:
                stop_worker(p)


@dataclass
class Run:
    settings: Settings
    world: World
    predictions: list[dict[str, Any]]
    effects: dict[str, dict[str, Any]]
    replayed: float
    """Input the newest running worker recognised as applied before (and left out of its state)."""


def _settings(test_settings: Settings, tmp: Path, store: str = "memory://") -> Settings:
    return engine_settings(test_settings, f"t{uuid.uuid4().hex[:10]}", tmp / "run", store=store)


def _world(seed: int) -> World:
    return world(SimConfig(seed=seed, **WORLD))  # type: ignore[arg-type]


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_worker_killed_mid_stream_and_restarted_leaves_exact_state(
    store: str, test_settings: Settings, served_model: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    # RocksDB keeps the killed worker's store on disk: the restart recovers from the offsets stored with
    # it, not from the start of the changelog, and must still end exact.
    settings = _settings(test_settings, tmp_path, store)
    w = _world(61)
    with Workers(settings, tmp_path).running() as workers:
        first = workers.start()

        async def kill_and_restart() -> None:
            # A first worker still starting (a loaded machine) has applied nothing a kill could leave
            # uncommitted: it goes once it has taken input.
            await workers.applied(first, 1, timeout_s=180)
            workers.kill(first)
            workers.start()

        run = asyncio.run(_drive(settings, w, workers, [(0.35, 0.35, kill_and_restart)]))
    # The kill left applied input uncommitted (offsets are committed every second): it was read again.
    assert run.replayed > 0
    _check(run)


def test_a_rebalance_from_one_to_two_to_one_worker_under_load_leaves_exact_state(
    test_settings: Settings, served_model: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(test_settings, tmp_path)
    w = _world(62)
    with Workers(settings, tmp_path).running() as workers:
        workers.start()

        async def join() -> None:
            workers.start()
            await wait_for_members(settings, 2, timeout_s=120, alive=workers.alive)

        async def leave() -> None:
            # Once the newcomer has taken a share of the stream it goes: the first worker gets back the
            # partitions it handed over, and must continue from the state the newcomer left in the
            # changelogs, not from what it held itself before.
            await workers.applied(1, 150, timeout_s=120)
            await asyncio.to_thread(workers.stop, 1)

        run = asyncio.run(_drive(settings, w, workers, [(0.2, 0.4, join), (0.4, 0.6, leave)]))
    _check(run)


Step = tuple[float, float, Callable[[], Coroutine[Any, Any, None]]]
"""A disruption: the fraction of the input sent when it starts, and the fraction that may be sent before
it is done (the input waits there, however long a worker takes to start)."""


async def _drive(settings: Settings, w: World, workers: Workers, steps: list[Step]) -> Run:
    messages = w.messages()
    async with Outputs(settings) as out:
        # Promotions registered first, as in the single-worker test: no exposure waits for its promotion.
        await send_messages(settings, [m for m in messages if is_start(m)])
        await consumed(settings, ("promotions",), timeout_s=180)
        await _feed(settings, messages, steps)
        await out.until(lambda o: _ids(o) >= w.exposure_ids, 300, workers.alive)
        await consumed(settings, (*USER_INPUTS, "promotions"), timeout_s=180)
        expected = _effect_counts(w)
        await out.until(lambda o: _counts(o.latest_effects()) == expected, 120, workers.alive)
        replayed = workers.events(max(set(range(len(workers.procs))) - workers.gone), "duplicate")
        return Run(settings, w, list(out.seen["predictions"]), out.latest_effects(), replayed)


async def _feed(settings: Settings, messages: list[Message], steps: list[Step]) -> None:
    """Sends the messages paced over SEND_S, running the steps while they arrive."""
    rate, sent = len(messages) / SEND_S, 0

    async def send_to(fraction: float) -> None:
        nonlocal sent
        end = round(fraction * len(messages))
        await send_messages(settings, messages[sent:end], rate=rate)
        sent = max(sent, end)

    for start, gate, step in steps:
        await send_to(start)
        task = asyncio.create_task(step())
        try:
            await send_to(gate)
            await task
        finally:
            task.cancel()
    await send_to(1.0)


def _ids(out: Outputs) -> set[str]:
    return {p["event_id"] for p in out.seen["predictions"]}


async def _read_all(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` (inputs and changelogs have `topics.partitions`) in partition, offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.topics.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records += batch
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


def _latest(records: list[ConsumerRecord[bytes, bytes]]) -> dict[str, dict[str, Any]]:
    """Latest value per key of a changelog (what a recovering worker ends up with)."""
    latest: dict[str, dict[str, Any]] = {}
    for r in records:
        key = orjson.loads(r.key) if r.key and r.key[:1] == b'"' else (r.key or b"").decode()
        if r.value is None:
            latest.pop(key, None)
        else:
            latest[key] = orjson.loads(r.value)
    return latest


# --- the oracle ---------------------------------------------------------------------------------------


async def _input_events(settings: Settings) -> list[tuple[Record, Event]]:
    """The valid user events of the input topics in one order a worker could have applied them:
    each partition in offset order, partitions interleaved by the time their messages entered Kafka."""
    names = topic_names(settings)
    streams: list[list[Record]] = []
    for logical in USER_INPUTS:
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for r in await _read_all(settings, names[logical]):
            by_partition[r.partition].append(
                Record(logical, r.partition, r.offset, r.key, r.value, r.timestamp / 1000)
            )
        streams += by_partition.values()
    events = []
    for record in heapq.merge(*streams, key=lambda r: r.timestamp):
        with contextlib.suppress(DecodeError):
            events.append((record, decode(record.topic, record.value)))
    return events


def _oracle_users(settings: Settings, events: list[tuple[Record, Event]]) -> dict[str, UserValue]:
    asm = assemble(events, lambda _: EMPTY, lambda _: None, UserConfig.from_settings(settings))
    return {uid: value for uid, (_, value) in asm.users.items()}


def _comparable(value: UserValue) -> dict[str, Any]:
    """A user value as JSON, without the ranking marker (session, ranked_ts) and the outbox.

    The marker records when the user was last *ranked*, and whether a click ranks depends on the
    promotion registry at the moment the batch was taken (no session is marked ranked while no promotion
    is active, stream/agents/users.py), i.e. on processing, not on the input alone. The outbox holds
    what the user's latest batch added to the partials: it depends on how the input was batched. The
    covariate each open exposure was scored with is checked against the predictions (`_check_stamps`).
    """
    data = value.to_json()
    del data["s"], data["rts"], data["ob"]
    data["a"]["x"] = [row[:8] for row in data["a"]["x"]]
    return data


def _check_stamps(stored: dict[str, Any], predictions: list[dict[str, Any]]) -> None:
    """Every open exposure in the stored user values carries the covariate of one of its predictions."""
    x: dict[tuple[str, int], list[tuple[float, ...]]] = defaultdict(list)
    for p in predictions:
        x[p["user_id"], stable_hash(p["event_id"])].append(
            tuple((p[o]["p_treated"] + p[o]["p_control"]) / 2 for o in OUTCOMES)
        )
    values = {uid: UserValue.from_json(raw) for uid, raw in stored.items()}
    rows = [(uid, row) for uid, value in values.items() for row in value.attribution.exposures]
    assert rows
    for uid, row in rows:
        assert row[8], (uid, row)
        assert any(np.allclose(row[8], c, rtol=1e-6) for c in x[uid, row[1]]), (uid, row, x[uid, row[1]])


def _close(a: Any, b: Any) -> bool:
    """Equal, floats within 1e-9: attributed revenue is a sum whose order depends on whether a purchase
    arrived before or after its exposure (clicks and exposures are separate topics)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(_close, a, b))
    return bool(a == b)


def _world_labels(w: World) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per promotion: the outcome labels (visit, conversion, revenue) of its exposures, and their arms."""
    sim = w.sim
    users = {
        u: i
        for i, u in enumerate(sorted({e.user_id for e in sim.exposures} | {c.user_id for c in sim.clicks}))
    }
    labels = outcome_labels(
        np.array([users[e.user_id] for e in sim.exposures]),
        np.array([e.ts.timestamp() for e in sim.exposures]),
        np.array([users[c.user_id] for c in sim.clicks]),
        np.array([c.ts.timestamp() for c in sim.clicks]),
        np.array([KIND_INDEX[c.kind.value] for c in sim.clicks]),
        np.array([c.price * c.quantity for c in sim.clicks]),
        float(w.config.attribution_window_s),
    )
    promotion = np.array([e.promotion_id for e in sim.exposures])
    treated = np.array([e.arm.value == "treatment" for e in sim.exposures])
    return {pid: (labels[promotion == pid], treated[promotion == pid]) for pid in np.unique(promotion)}


def _effect_counts(w: World) -> dict[str, tuple[int, ...]]:
    """Per promotion: (exposures, visits, conversions) of the treatment arm, then of the holdout arm."""
    out = {}
    for pid, (labels, treated) in _world_labels(w).items():
        arms = [labels[treated], labels[~treated]]
        out[pid] = tuple(int(x) for a in arms for x in (len(a), a[:, 0].sum(), a[:, 1].sum()))
    return out


def _counts(effects: dict[str, dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    """The same counts read off published campaign effects (rates × exposures)."""
    out = {}
    for pid, e in effects.items():
        counts: list[int] = []
        for arm in ("treatment", "holdout"):
            n = e[f"exposures_{arm}"]
            rates = e[f"realised_rate_{arm}"]
            counts += [n, round(rates["visit"] * n), round(rates["conversion"] * n)]
        out[pid] = tuple(counts)
    return out


# --- the checks ---------------------------------------------------------------------------------------


def _check(run: Run) -> None:
    asyncio.run(_check_async(run))


async def _check_async(run: Run) -> None:
    settings, w = run.settings, run.world
    _check_predictions(run)
    events = await _input_events(settings)
    assert Counter(r.topic for r, _ in events) == Counter(
        m.topic for m in w.messages() if m.topic != "promotions"
    )

    oracle = _oracle_users(settings, events)
    stored = _latest(await _read_all(settings, f"{settings.app_id}-users-changelog"))
    assert stored.keys() == oracle.keys()
    wrong = [
        uid
        for uid, value in oracle.items()
        if not _close(_comparable(UserValue.from_json(stored[uid])), _comparable(value))
    ]
    assert not wrong, (
        f"{len(wrong)} of {len(oracle)} users differ from the oracle, e.g. {wrong[0]}:\n"
        f"stored {_comparable(UserValue.from_json(stored[wrong[0]]))}\noracle {_comparable(oracle[wrong[0]])}"
    )
    _check_stamps(stored, run.predictions)

    # Totals per promotion in the partials changelog: realised counts and predictions, each once.
    partials = [
        Partial.from_json(v)
        for v in _latest(await _read_all(settings, f"{settings.app_id}-partials-changelog")).values()
    ]
    totals: dict[str, list[PromotionTotals]] = defaultdict(list)
    for p in sorted(partials, key=lambda p: p.partition):
        totals[p.promotion_id].append(p.totals)
    labels = _world_labels(w)
    assert totals.keys() == labels.keys()
    for pid, parts in totals.items():
        t = merge(parts)
        promo_labels, treated = labels[pid]
        for arm, rows in ((t.treatment, promo_labels[treated]), (t.holdout, promo_labels[~treated])):
            assert (arm.exposures, arm.visits, arm.conversions) == (
                len(rows),
                rows[:, 0].sum(),
                rows[:, 1].sum(),
            ), pid
            assert arm.revenue == pytest.approx(rows[:, 2].sum()), pid
        assert t.predictions == len(promo_labels), pid
        exposures = [e for e in w.sim.exposures if e.promotion_id == pid]
        assert_covariates(t, covariate_blocks(exposures, promo_labels, run.predictions), pid)

    # The published effects (waited for in _drive) count the same.
    assert _counts(run.effects) == _effect_counts(w)
    for pid, effect in run.effects.items():
        promo_labels, treated = labels[pid]
        assert effect["realised_rate_treatment"]["revenue"] == pytest.approx(promo_labels[treated, 2].mean())
        assert effect["realised_rate_holdout"]["revenue"] == pytest.approx(promo_labels[~treated, 2].mean())


def _check_predictions(run: Run) -> None:
    exposures = {e.event_id: e for e in run.world.sim.exposures}
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in run.predictions:
        by_id[p["event_id"]].append(p)
    assert by_id.keys() == exposures.keys()
    for event_id, copies in by_id.items():
        e = exposures[event_id]
        identity = {(p["user_id"], p["promotion_id"], p["campaign_id"], p["arm"]) for p in copies}
        assert identity == {(e.user_id, e.promotion_id, e.campaign_id, e.arm.value)}, event_id
