"""Outages and hostile input against the real programs: Triton stopped or overloaded, the broker restarted,
and messages built to hurt (oversized, non-finite, far-future, unknown promotions, one very hot user).

The outage tests start their own Triton or Kafka with the `liftstream local` launchers (the session's are
shared by every other test and must stay up); the hostile-input test uses the session's.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.grpc.aio as grpcaio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from tritonclient.grpc import InferInput
from tritonclient.utils import InferenceServerException

from stream.agents.topics import ensure_topics, topic_names
from stream.events import gate
from stream.features.state import FeatureConfig
from stream.local import kafka, triton
from stream.local.process import Managed
from stream.local.triton import free_ports
from stream.scoring import signature as sig
from stream.scoring.protocol import scorer_inputs
from stream.settings import Settings
from stream.simulate.config import SimConfig
from stream.simulate.emission import Message
from tests.stream.workers import (
    engine_settings,
    group_members,
    metric,
    report,
    start_worker,
    stop_worker,
    wait_for_members,
    world,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

C = SimConfig(seed=61, users=200, days=1.0, exposure_rate=4.0)
OUTAGE_S = 30.0
HOT_EVENTS = 100_000
HOT_EXPOSURE_EVERY = 10
PROBES = 20
MiB = 1024 * 1024


# --- helpers -------------------------------------------------------------------------------------------


class Sent:
    """Where each exposure landed: partition → offset → event_id (filled as the broker acknowledges)."""

    def __init__(self) -> None:
        self.exposures: dict[int, dict[int, str]] = defaultdict(dict)

    def record(self, event_id: str, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            meta = future.result()
            self.exposures[meta.partition][meta.offset] = event_id

    def ids(self) -> set[str]:
        return {e for by_offset in self.exposures.values() for e in by_offset.values()}


async def send_recording(
    settings: Settings, messages: list[Message], rate: float, sent: Sent, **options: Any
) -> None:
    """Sends live-mode messages at `rate` per second with an idempotent acks=all producer."""
    await ensure_topics(settings)
    names = topic_names(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        **options,
    )
    await producer.start()
    began = time.monotonic()
    futures = []
    try:
        for i, m in enumerate(messages):
            ahead = began + i / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
            future = await producer.send(names[m.topic], m.value, key=m.key)
            if m.topic == "exposures":
                future.add_done_callback(partial(sent.record, orjson.loads(m.value)["event_id"]))
            futures.append(future)
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class Tail:
    """Reads logical topics from the beginning; `catch_up` reads everything published before the call."""

    def __init__(self, settings: Settings, *logical: str) -> None:
        names = topic_names(settings)
        self._logical = {names[t]: t for t in logical}
        self._partitions = settings.topics.partitions
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka.bootstrap, auto_offset_reset="earliest", metadata_max_age_ms=1000
        )
        self.seen: dict[str, list[dict[str, Any]]] = defaultdict(list)

    async def __aenter__(self) -> Tail:
        await self._consumer.start()
        # Output topics exist once a worker has started, with `topics.partitions` partitions each.
        parts = [TopicPartition(topic, p) for topic in self._logical for p in range(self._partitions)]
        self._consumer.assign(parts)
        await self._consumer.seek_to_beginning(*parts)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def poll(self) -> None:
        for tp, records in (await self._consumer.getmany(timeout_ms=500)).items():
            self.seen[self._logical[tp.topic]] += [orjson.loads(r.value) for r in records]

    async def catch_up(self) -> None:
        parts = list(self._consumer.assignment())
        end = await self._consumer.end_offsets(parts)
        for tp in parts:
            while await self._consumer.position(tp) < end[tp]:
                await self.poll()

    async def until(self, done: Callable[[], bool], timeout_s: float, alive: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert alive(), "the worker exited"
            assert time.monotonic() < deadline, (
                f"timed out; seen { ({k: len(v) for k, v in self.seen.items()}) }"
            )
            await self.poll()

    def predicted(self) -> set[str]:
        return {p["event_id"] for p in self.seen["predictions"]}


async def committed(settings: Settings, topic: str) -> dict[int, int]:
    """The consumer group's committed offset (the next to read) per partition of `topic`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
    finally:
        await admin.close()
    return {
        tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0
    }


async def wait_committed(
    settings: Settings, topic: str, sent: Sent, timeout_s: float, alive: Callable[[], bool]
) -> None:
    """Waits until the group has committed every exposure sent: commits resumed after the outage."""
    ends = {p: max(by_offset) + 1 for p, by_offset in sent.exposures.items()}
    deadline = time.monotonic() + timeout_s
    while (offsets := await committed(settings, topic)) != ends:
        assert alive(), "the worker exited"
        assert time.monotonic() < deadline, f"committed {offsets}, log ends {ends}"
        await asyncio.sleep(1.0)


def committed_unscored(
    offsets: dict[int, int], sent: Sent, predicted: set[str]
) -> list[tuple[int, int, str]]:
    """Exposures below the committed offset of their partition that have no published prediction."""
    return [
        (p, o, event_id)
        for p, end in offsets.items()
        for o, event_id in sent.exposures.get(p, {}).items()
        if o < end and event_id not in predicted
    ]


def repeated(predictions: list[dict[str, Any]]) -> dict[str, int]:
    """The event ids predicted more than once (empty when each exposure has one prediction)."""
    return {e: n for e, n in Counter(p["event_id"] for p in predictions).items() if n != 1}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def with_backend(
    settings: Settings, *, bootstrap: str | None = None, triton_url: str | None = None
) -> Settings:
    update: dict[str, Any] = {}
    if bootstrap is not None:
        update["kafka"] = settings.kafka.model_copy(update={"bootstrap": bootstrap})
    if triton_url is not None:
        update["triton_url"] = triton_url
    return settings.model_copy(update=update)


def copy_repo(source: Path, target: Path, queue_size: int | None = None) -> Path:
    """A copy of a model repository; with `queue_size`, effect_scorer rejects requests beyond that queue."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    if queue_size is not None:
        for config in (target / sig.SCORER).glob("**/*.pbtxt"):
            text = config.read_text()
            # A long queue delay keeps requests waiting in the queue, so concurrent ones find it full.
            text = text.replace(
                "dynamic_batching {",
                f"dynamic_batching {{\n  default_queue_policy {{ max_queue_size: {queue_size} }}",
            ).replace("max_queue_delay_microseconds: 2000", "max_queue_delay_microseconds: 50000")
            config.write_text(text)
    return target


class OwnTriton:
    """A Triton of this test alone, stoppable and restartable on the same ports and repository."""

    def __init__(self, home: Path, repo: Path) -> None:
        self.home, self.repo = home, repo
        self.http, self.grpc, self.metrics = free_ports(3)
        self.svc: Managed | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.grpc}"

    def start(self) -> None:
        self.svc = triton.start(self.home, self.repo, self.http, self.grpc, self.metrics)

    def stop(self) -> None:
        if self.svc is not None:
            self.svc.stop()


@pytest.fixture
def own_triton(test_settings: Settings, served_model: Path, tmp_path: Path) -> Iterator[OwnTriton]:
    server = OwnTriton(tmp_path / "triton", copy_repo(test_settings.model_repo, tmp_path / "repo"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def members_now(settings: Settings) -> int:
    """Stable members of the group; asked again once, since one describe call can fail on a busy broker."""
    n = await group_members(settings)
    if n != 1:
        await asyncio.sleep(2.0)
        n = await group_members(settings)
    return n


def started_once(log: Path) -> bool:
    """Whether the worker's Faust app became ready exactly once (no restart in or of the process)."""
    return log.read_text(errors="replace").count("[^Worker]: Ready") == 1


def running(proc: subprocess.Popen[bytes]) -> Callable[[], bool]:
    return lambda: proc.poll() is None


# --- Triton stopped for 30 s ----------------------------------------------------------------------------


def test_triton_outage_backs_off_keeps_the_group_and_commits_nothing_unscored(
    test_settings: Settings, own_triton: OwnTriton, kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = engine_settings(
        with_backend(test_settings, triton_url=own_triton.url), prefix, tmp_path / "run"
    )
    (port,) = free_ports(1)
    log = tmp_path / "worker.log"
    proc = start_worker(settings, log, metrics_port=port)
    try:
        figures = asyncio.run(_triton_outage(settings, proc, own_triton, port))
        # One start, one join: the worker neither restarted nor left and rejoined its group.
        assert started_once(log)
        assert log.read_text(errors="replace").count("Joined group") == 1
    except AssertionError as exc:
        raise report(exc, [log, own_triton.home / "triton.log"]) from exc
    finally:
        stop_worker(proc)
    print(f"triton outage: {figures}")


async def _triton_outage(
    settings: Settings, proc: subprocess.Popen[bytes], server: OwnTriton, port: int
) -> dict[str, Any]:
    alive = running(proc)
    await wait_for_members(settings, 1, timeout_s=180, alive=alive)
    w = world(C)
    messages = w.messages()
    sent = Sent()
    exposures = topic_names(settings)["exposures"]
    # Paced so the stream goes on through the whole outage and past the restart.
    sender = asyncio.create_task(send_recording(settings, messages, len(messages) / 75.0, sent))
    async with Tail(settings, "predictions", "alerts") as out:
        await out.until(lambda: len(out.predicted()) >= 10, 180, alive)
        await asyncio.to_thread(server.stop)
        stopped = time.monotonic()
        checks, down = 0, False
        while time.monotonic() - stopped < OUTAGE_S:
            assert alive(), "the worker exited during the outage"
            assert await members_now(settings) == 1, "the worker left its consumer group"
            offsets = await committed(settings, exposures)
            await out.catch_up()
            unscored = committed_unscored(offsets, sent, out.predicted())
            assert not unscored, f"committed past unscored exposures: {unscored[:5]}"
            down = down or metric(port, "liftstream_triton_up") == 0.0
            checks += 1
            await asyncio.sleep(1.0)
        await out.catch_up()
        waiting = sent.ids() - out.predicted()
        offsets = await committed(settings, exposures)
        ends = {p: max(by_offset) + 1 for p, by_offset in sent.exposures.items()}
        # Non-vacuous: exposures arrived during the outage, stayed unscored, and their offsets uncommitted.
        assert waiting, "no exposure waited for Triton"
        assert any(offsets.get(p, 0) < end for p, end in ends.items()), (offsets, ends)
        assert down, "liftstream_triton_up never dropped to 0"
        restart = time.monotonic()
        await asyncio.to_thread(server.start)
        restarted_s = time.monotonic() - restart
        await sender
        await out.until(lambda: out.predicted() >= w.exposure_ids, 300, alive)
        recovered_s = time.monotonic() - restart
        await out.until(lambda: any(a["kind"] == "triton_unavailable" for a in out.seen["alerts"]), 60, alive)
        await wait_committed(settings, exposures, sent, 60, alive)
        assert await group_members(settings) == 1
    assert out.predicted() == w.exposure_ids
    assert not repeated(out.seen["predictions"])
    errors = metric(port, "liftstream_triton_errors_total", model=sig.SCORER, code="UNAVAILABLE")
    assert errors > 0
    return {
        "exposures": len(w.exposure_ids),
        "waited_for_triton": len(waiting),
        "checks_during_outage": checks,
        "triton_restart_s": round(restarted_s, 1),
        "all_predicted_after_restart_s": round(recovered_s, 1),
        "unavailable_errors": errors,
    }


# --- Triton's queue full ---------------------------------------------------------------------------------


def test_triton_queue_full_is_retried_and_nothing_is_lost(
    test_settings: Settings, served_model: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    server = OwnTriton(
        tmp_path / "triton", copy_repo(test_settings.model_repo, tmp_path / "repo", queue_size=1)
    )
    server.start()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = engine_settings(with_backend(test_settings, triton_url=server.url), prefix, tmp_path / "run")
    (port,) = free_ports(1)
    log = tmp_path / "worker.log"
    # Small batches, many in flight, short backoff: the worker's own requests crowd the queue too.
    proc = start_worker(
        settings,
        log,
        metrics_port=port,
        LIFTSTREAM_BATCHING__MAX_SIZE="8",
        LIFTSTREAM_BATCHING__MAX_IN_FLIGHT="8",
        LIFTSTREAM_BATCHING__BACKOFF_BASE_S="0.05",
        LIFTSTREAM_BATCHING__BACKOFF_MAX_S="0.5",
    )
    try:
        figures = asyncio.run(_queue_full(settings, proc, server, port))
    except AssertionError as exc:
        raise report(exc, [log, server.home / "triton.log"]) from exc
    finally:
        stop_worker(proc)
        server.stop()
    print(f"queue full: {figures}")


async def _queue_full(
    settings: Settings, proc: subprocess.Popen[bytes], server: OwnTriton, port: int
) -> dict[str, Any]:
    alive = running(proc)
    await wait_for_members(settings, 1, timeout_s=180, alive=alive)
    w = world(replace(C, seed=62))
    stop = asyncio.Event()
    rejected: Counter[str] = Counter()
    load = [asyncio.create_task(_hammer(server.url, stop, rejected)) for _ in range(4)]
    try:
        async with Tail(settings, "predictions") as out:
            await send_recording(settings, w.messages(), 400.0, Sent())
            await out.until(lambda: out.predicted() >= w.exposure_ids, 300, alive)
    finally:
        stop.set()
        await asyncio.gather(*load)
    assert rejected, "the load never found Triton's queue full"
    (code, _), *_ = rejected.most_common()
    seen = metric(port, "liftstream_triton_errors_total", model=sig.SCORER, code=code)
    assert seen > 0, f"the worker never met a full queue ({code})"
    assert out.predicted() == w.exposure_ids
    assert not repeated(out.seen["predictions"])
    return {"exposures": len(w.exposure_ids), "load_rejections": dict(rejected), "worker_rejections": seen}


async def _hammer(url: str, stop: asyncio.Event, rejected: Counter[str]) -> None:
    """Keeps effect_scorer's queue busy; counts the queue-full rejections by gRPC status."""
    rows = 64
    arrays = scorer_inputs(
        np.zeros((rows, len(sig.USER_FEATURES))),
        np.zeros((rows, sig.PROMO_DIM)),
        np.zeros((rows, len(sig.PROMO_ATTRS))),
    )
    inputs = []
    for spec, array in zip(sig.SCORER_INPUTS, arrays, strict=True):
        tensor = InferInput(spec.name, list(array.shape), spec.dtype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    client = grpcaio.InferenceServerClient(url)
    try:
        while not stop.is_set():
            try:
                await client.infer(sig.SCORER, inputs, client_timeout=10)
            except InferenceServerException as exc:
                if "queue" in str(exc).lower():
                    rejected[(exc.status() or "").removeprefix("StatusCode.")] += 1
                await asyncio.sleep(0.05)
    finally:
        await client.close()


# --- broker restart --------------------------------------------------------------------------------------


def test_broker_restart_mid_stream_loses_nothing_and_the_worker_recovers(
    test_settings: Settings, served_model: Path, tmp_path: Path
) -> None:
    home = tmp_path / "kafka"
    port, controller = free_ports(2)
    kafka.start(home, port, controller)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = engine_settings(
        with_backend(test_settings, bootstrap=f"127.0.0.1:{port}"), prefix, tmp_path / "run"
    )
    log = tmp_path / "worker.log"
    proc = start_worker(settings, log)
    try:
        figures = asyncio.run(_broker_restart(settings, proc, home, port, controller))
        assert started_once(log)
    except AssertionError as exc:
        raise report(exc, [log, home / "server.log"]) from exc
    finally:
        stop_worker(proc)
        Managed("kafka", home).stop()
    print(f"broker restart: {figures}")


async def _broker_restart(
    settings: Settings, proc: subprocess.Popen[bytes], home: Path, port: int, controller: int
) -> dict[str, Any]:
    alive = running(proc)
    await wait_for_members(settings, 1, timeout_s=180, alive=alive)
    w = world(replace(C, seed=63))
    messages = w.messages()
    sent = Sent()
    # The sender rides the restart out: its idempotent producer retries until the broker is back.
    sender = asyncio.create_task(
        send_recording(settings, messages, len(messages) / 40.0, sent, request_timeout_ms=180_000)
    )
    async with Tail(settings, "predictions") as out:
        await out.until(lambda: len(out.predicted()) >= 10, 180, alive)
    down = time.monotonic()
    await asyncio.to_thread(Managed("kafka", home).stop)
    await asyncio.to_thread(kafka.start, home, port, controller)
    restart_s = time.monotonic() - down
    await sender
    async with Tail(settings, "predictions", "dead-letter") as out:
        await out.until(lambda: out.predicted() >= w.exposure_ids, 300, alive)
        recovered_s = time.monotonic() - down
        await wait_for_members(settings, 1, timeout_s=120, alive=alive)
        await wait_committed(settings, topic_names(settings)["exposures"], sent, 120, alive)
    assert out.predicted() == w.exposure_ids
    assert sent.ids() == w.exposure_ids
    assert not out.seen["dead-letter"]
    duplicates = repeated(out.seen["predictions"])
    return {
        "exposures": len(w.exposure_ids),
        "broker_down_s": round(restart_s, 1),
        "all_predicted_after_s": round(recovered_s, 1),
        "republished": len(duplicates),
    }


# --- hostile input ----------------------------------------------------------------------------------------


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hostile_messages(now: datetime, promotion: str) -> list[tuple[str, bytes, bytes, str]]:
    """(topic, key, value, expected dead-letter reason); each message has its own key."""
    t = _ts(now - timedelta(minutes=1))

    def click(key: str, ts: str = t, price: str = "1.0", extra: str = "") -> bytes:
        return (
            f'{{"event_id":"{key}","user_id":"{key}","session_id":"s","ts":"{ts}","kind":"purchase",'
            f'"price":{price}{extra}}}'
        ).encode()

    def exposure(key: str, ts: str = t, promo: str = promotion, extra: str = "") -> bytes:
        return (
            f'{{"event_id":"{key}","user_id":"{key}","promotion_id":"{promo}","campaign_id":"hc","ts":"{ts}",'
            f'"arm":"treatment"{extra}}}'
        ).encode()

    def profile(key: str, ts: str = t, spend: str = "1.0") -> bytes:
        return f'{{"user_id":"{key}","ts":"{ts}","lifetime_spend":{spend}}}'.encode()

    pad = ',"pad":"' + "x" * 70_000 + '"'
    huge = ',"pad":"' + "y" * (3 * MiB // 2) + '"'
    rows = [
        ("clicks", "h-big", click("h-big", extra=pad), gate.OVERSIZED),
        ("exposures", "h-huge", exposure("h-huge", extra=huge), gate.OVERSIZED),
        ("clicks", "h-nan", click("h-nan", price="NaN"), gate.NON_FINITE),
        ("clicks", "h-inf", click("h-inf", price="Infinity"), gate.NON_FINITE),
        ("clicks", "h-1e999", click("h-1e999", price="1e999"), gate.NON_FINITE),
        ("profiles", "h-ninf", profile("h-ninf", spend="-Infinity"), gate.NON_FINITE),
        ("exposures", "h-2099", exposure("h-2099", ts="2099-01-01T00:00:00Z"), gate.FUTURE_TIMESTAMP),
        ("clicks", "h-9999", click("h-9999", ts="9999-12-31T23:59:59Z"), gate.FUTURE_TIMESTAMP),
        ("profiles", "h-2200", profile("h-2200", ts="2200-06-01T00:00:00Z"), gate.FUTURE_TIMESTAMP),
        ("exposures", "h-unknown", exposure("h-unknown", promo="never-started"), "unknown_promotion"),
    ]
    return [(topic, key.encode(), value, reason) for topic, key, value, reason in rows]


def exposure_json(user: str, promotion: str) -> bytes:
    return (
        f'{{"event_id":"{user}","user_id":"{user}","promotion_id":"{promotion}","campaign_id":"hc",'
        f'"ts":"{_ts(datetime.now(UTC))}","arm":"treatment"}}'
    ).encode()


def hot_key_messages(now: datetime, promotion: str, n: int) -> tuple[list[tuple[str, bytes]], set[str]]:
    """`n` events of one user, 10 ms apart and ending now: every HOT_EXPOSURE_EVERY-th an exposure."""
    kinds = ("view", "click", "add_to_cart", "view", "purchase")
    start = now.timestamp() - n * 0.01
    out: list[tuple[str, bytes]] = []
    exposures: set[str] = set()
    for i in range(n):
        ts = _ts(datetime.fromtimestamp(start + i * 0.01, UTC))
        if i % HOT_EXPOSURE_EVERY == 0:
            out.append(("exposures", (
                f'{{"event_id":"hx{i}","user_id":"hot","promotion_id":"{promotion}","campaign_id":"hc",'
                f'"ts":"{ts}","arm":"{"holdout" if i % 3 else "treatment"}"}}'
            ).encode()))  # fmt: skip
            exposures.add(f"hx{i}")
        else:
            out.append(("clicks", (
                f'{{"event_id":"hc{i}","user_id":"hot","session_id":"hs{i // 500}","ts":"{ts}",'
                f'"kind":"{kinds[i % 5]}","category":"shoes","price":12.5}}'
            ).encode()))  # fmt: skip
    return out, exposures


def test_hostile_input_is_dead_lettered_and_a_hot_key_stays_bounded(
    test_settings: Settings, served_model: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = engine_settings(test_settings, prefix, tmp_path / "run")
    (port,) = free_ports(1)
    log = tmp_path / "worker.log"
    proc = start_worker(settings, log, metrics_port=port, LIFTSTREAM_WINDOWS__UNKNOWN_PROMOTION_WAIT_S="2")
    try:
        figures = asyncio.run(_hostile(settings, proc))
        assert started_once(log)
    except AssertionError as exc:
        raise report(exc, [log]) from exc
    finally:
        stop_worker(proc)
    print(f"hostile input: {figures}")


async def _hostile(settings: Settings, proc: subprocess.Popen[bytes]) -> dict[str, Any]:
    alive = running(proc)
    await wait_for_members(settings, 1, timeout_s=180, alive=alive)
    await ensure_topics(settings)
    names = topic_names(settings)
    now = datetime.now(UTC)
    promotion = "hot-promo"
    since = _ts(now - timedelta(hours=1))
    start_event = (
        f'{{"promotion_id":"{promotion}","campaign_id":"hc","action":"start","ts":"{since}",'
        '"title":"Ten percent off running shoes","description":"All running shoes, this week only",'
        '"discount_type":"percent","discount_value":10.0,"categories":["shoes"]}'
    ).encode()
    hostile = hostile_messages(now, promotion)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=MiB,
        max_request_size=2 * MiB,
    )
    await producer.start()
    try:
        await producer.send_and_wait(names["promotions"], start_event, key=promotion.encode())
        for topic, key, value, _ in hostile:
            await producer.send_and_wait(names[topic], value, key=key)
        await producer.send_and_wait(names["exposures"], exposure_json("h-probe", promotion), key=b"h-probe")
        async with Tail(settings, "predictions", "dead-letter", "promotion-rankings") as out:
            await out.until(
                lambda: "h-probe" in out.predicted() and len(out.seen["dead-letter"]) >= len(hostile),
                180,
                alive,
            )
            expected = {key.decode(): (names[topic], reason) for topic, key, _, reason in hostile}
            got = {
                base64.b64decode(d["key_b64"]).decode(): (d["source_topic"], d["reason"])
                for d in out.seen["dead-letter"]
            }
            assert got == expected
            huge = next(
                d for d in out.seen["dead-letter"] if d["key_b64"] == base64.b64encode(b"h-huge").decode()
            )
            assert "truncated" in huge["error"]
            assert len(base64.b64decode(huge["payload_b64"])) == gate.MAX_DEAD_LETTER_PAYLOAD_BYTES

            # One user, 100k events as fast as one producer sends them.
            hot, hot_ids = hot_key_messages(datetime.now(UTC), promotion, HOT_EVENTS)
            baseline = rss_mb(proc.pid)
            samples = [baseline]
            sampling = asyncio.create_task(_sample_rss(proc.pid, samples))
            began = time.monotonic()
            futures = [await producer.send(names[topic], value, key=b"hot") for topic, value in hot]
            await asyncio.gather(*futures)
            produced_s = time.monotonic() - began
            await out.until(lambda: out.predicted() >= hot_ids, 360, alive)
            drained_s = time.monotonic() - began
            sampling.cancel()

            # Once the hot key is drained, other users' exposures are scored at live latency again.
            probes = [f"p-{i}" for i in range(PROBES)]
            for user in probes:
                await producer.send_and_wait(
                    names["exposures"], exposure_json(user, promotion), key=user.encode()
                )
                await asyncio.sleep(0.1)
            await out.until(lambda: out.predicted() >= set(probes), 120, alive)
    finally:
        await producer.stop()
    hot_value = await last_value(settings, f"{settings.app_id}-users-changelog", b'"hot"')
    hot_predictions = [p for p in out.seen["predictions"] if p["event_id"] in hot_ids]
    latencies = np.asarray([p["latency_ms"] for p in hot_predictions])
    scored = sorted(datetime.fromisoformat(p["scored_at"]).timestamp() for p in hot_predictions)
    quarter = len(scored) // 4
    first_q, last_q = scored[quarter] - scored[0], scored[-1] - scored[-quarter - 1]
    peak = max(samples)
    probe_ms = [p["latency_ms"] for p in out.seen["predictions"] if p["event_id"] in probes]
    assert alive()
    assert not repeated(out.seen["predictions"])
    state = orjson.loads(hot_value)["f"]
    figures = {
        "produced_s": round(produced_s, 1),
        "drained_s": round(drained_s, 1),
        "events_per_s": round(HOT_EVENTS / drained_s),
        "rss_baseline_mb": round(baseline),
        "rss_peak_mb": round(peak),
        "latency_ms_p50": round(float(np.percentile(latencies, 50))),
        "latency_ms_p99": round(float(np.percentile(latencies, 99))),
        "first_quarter_s": round(first_q, 1),
        "last_quarter_s": round(last_q, 1),
        "rankings": len(out.seen["promotion-rankings"]),
        "probe_latency_ms_max": round(max(probe_ms)),
        "hot_state_bytes": len(hot_value),
        "hot_state_rows": (len(state["clicks"]), len(state["exposures"])),
    }
    # The user's state is capped (stream/features/state.py), so neither it nor the worker grows per event.
    assert len(state["clicks"]) <= FeatureConfig().max_events, figures
    assert len(state["exposures"]) <= FeatureConfig().max_exposures, figures
    assert peak - baseline < 256, figures
    assert max(probe_ms) < 10_000, figures
    # Per-event cost does not grow with the user's history: the last quarter drains as fast as the first.
    assert last_q < 3 * first_q + 10, figures
    return figures


async def last_value(settings: Settings, topic: str, key: bytes) -> bytes:
    """The newest value of `key` (as serialized: table keys are JSON) in a changelog topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.topics.partitions)]
        consumer.assign(parts)
        end = await consumer.end_offsets(parts)
        found: bytes | None = None
        for tp in parts:
            while await consumer.position(tp) < end[tp]:
                for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    if record.key == key and record.value is not None:
                        found = record.value
    finally:
        await consumer.stop()
    assert found is not None, f"{key!r} not in {topic}"
    return found


async def _sample_rss(pid: int, samples: list[float]) -> None:
    while True:
        samples.append(rss_mb(pid))
        await asyncio.sleep(0.25)
