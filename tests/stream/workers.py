"""Helpers of the engine's integration tests: worker processes, the simulated world fed to them, outputs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import tritonclient.grpc as grpcclient
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from stream.agents.topics import ensure_topics, topic_names
from stream.bench.profile import py_spy
from stream.events.models import OUTPUT_EVENTS
from stream.kafka_options import client_options
from stream.scoring.signature import OUTCOMES
from stream.scoring.triton import TritonScorer
from stream.settings import Settings, Topics, load_settings
from stream.simulate.config import SimConfig
from stream.simulate.emission import Message
from stream.simulate.history_mode import Simulation, simulate
from stream.simulate.live import live_messages, produce_live

ROOT = Path(__file__).resolve().parents[2]
TOPIC_FIELDS = [name for name in Topics.model_fields if name != "partitions"]
# Live mode sends a simulated day in seconds, so the order in which a worker happens to consume the
# topics' partitions skews event time by hours; with the default 10 min lateness some events would be
# (correctly) refused as late, and counts would depend on that order. Tests compare exact counts.
LATENESS_S = 2 * 86400


def engine_settings(base: Settings, prefix: str, run_dir: Path, **overrides: Any) -> Settings:
    """The test session's Kafka and Triton, with this test's own app id and topic names."""
    return load_settings(
        app_id=prefix,
        kafka={"bootstrap": base.kafka.bootstrap},
        triton_url=base.triton_url,
        model_repo=base.model_repo,
        metrics_port=0,
        local={"run_dir": run_dir},
        topics={f: f"{prefix}-{getattr(Topics(), f)}" for f in TOPIC_FIELDS},
        windows={"allowed_lateness_s": LATENESS_S},
        **overrides,
    )


def start_worker(settings: Settings, log: Path, metrics_port: int = 0, **env: str) -> subprocess.Popen[bytes]:
    variables = {
        "LIFTSTREAM_APP_ID": settings.app_id,
        "LIFTSTREAM_KAFKA__BOOTSTRAP": settings.kafka.bootstrap,
        "LIFTSTREAM_TRITON_URL": settings.triton_url,
        "LIFTSTREAM_MODEL_REPO": str(settings.model_repo),
        "LIFTSTREAM_METRICS_PORT": str(metrics_port),
        "LIFTSTREAM_LOCAL__RUN_DIR": str(settings.local.run_dir),
        "LIFTSTREAM_TOPICS__PARTITIONS": str(settings.topics.partitions),
        "LIFTSTREAM_STORE": settings.store,
        "LIFTSTREAM_TOPIC_POLICY__REPLICATION_FACTOR": str(settings.topic_policy.replication_factor),
        **(
            {"LIFTSTREAM_TOPIC_POLICY__MIN_INSYNC_REPLICAS": str(settings.topic_policy.min_insync_replicas)}
            if settings.topic_policy.min_insync_replicas is not None
            else {}
        ),
        "LIFTSTREAM_WINDOWS__UNKNOWN_PROMOTION_WAIT_S": str(settings.windows.unknown_promotion_wait_s),
        "LIFTSTREAM_WINDOWS__ALLOWED_LATENESS_S": str(settings.windows.allowed_lateness_s),
        **{f"LIFTSTREAM_TOPICS__{f.upper()}": getattr(settings.topics, f) for f in TOPIC_FIELDS},
        **env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "stream", "worker"],
            cwd=ROOT,
            env={**os.environ, **variables},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_worker(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=30)


@dataclass(frozen=True)
class World:
    """A simulated world as live mode produces it at `now`, with the simulation behind it (for truth)."""

    config: SimConfig
    now: datetime
    sim: Simulation

    @property
    def exposure_ids(self) -> set[str]:
        return {e.event_id for e in self.sim.exposures}

    def messages(self) -> list[Message]:
        return live_messages(self.config, self.now)

    @property
    def malformed(self) -> int:
        return sum(not m.valid for m in self.messages())


def world(config: SimConfig, now: datetime | None = None) -> World:
    now = now or datetime.now(UTC)
    # The same shift live mode applies (stream/simulate/live.py): the world ends at `now`, to the ms.
    shifted = now - timedelta(milliseconds=config.span_ms)
    start = shifted.replace(microsecond=shifted.microsecond // 1000 * 1000)
    return World(config, now, simulate(replace(config, start=start)))


def covariate_blocks(
    exposures: Sequence[Any], labels: np.ndarray, predictions: Sequence[dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """The covariate blocks (stream/effects/aggregate.py) of one promotion's exposures per arm (treatment,
    holdout), from their outcome labels and their published predictions (the first copy of each: a replay
    scores again only what was not stored)."""
    first: dict[str, dict[str, Any]] = {}
    for p in predictions:
        first.setdefault(p["event_id"], p)
    scores = [first[e.event_id] for e in exposures]
    x = np.array([[(p[o]["p_treated"] + p[o]["p_control"]) / 2 for o in OUTCOMES] for p in scores])
    x = x.reshape(-1, len(OUTCOMES))
    treated = np.array([e.arm.value == "treatment" for e in exposures], dtype=bool)
    blocks = []
    for arm in (treated, ~treated):
        block = [float(arm.sum())]
        for i in range(len(OUTCOMES)):
            xi, y = x[arm, i], labels[arm, i]
            y_sq = y if OUTCOMES[i] != "revenue" else y * y
            block += [xi.sum(), (xi * xi).sum(), y.sum(), y_sq.sum(), (xi * y).sum()]
        blocks.append(np.array(block))
    return blocks[0], blocks[1]


def assert_covariates(totals: Any, expected: tuple[np.ndarray, np.ndarray], what: str) -> None:
    """The engine's covariate blocks (merged `PromotionTotals`) hold each scored exposure once."""
    from stream.events.models import Arm

    for arm, want in zip((Arm.treatment, Arm.holdout), expected, strict=True):
        got = np.array(totals.covariate(arm))
        assert got[0] == want[0], (what, arm, got[0], want[0])
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6), (what, arm, got, want)


async def produce(settings: Settings, w: World, rate: float | None = None) -> None:
    await produce_live(settings, w.config, rate=rate, now=w.now)


class Outputs:
    """Everything published on the output topics, read from the beginning, parsed, by logical topic."""

    def __init__(self, settings: Settings) -> None:
        names = topic_names(settings)
        self._logical = {names[t]: t for t in OUTPUT_EVENTS}
        self._consumer = AIOKafkaConsumer(
            *self._logical,
            **client_options(settings.kafka),
            auto_offset_reset="earliest",
            metadata_max_age_ms=1000,
        )
        self.seen: dict[str, list[dict[str, Any]]] = defaultdict(list)

    async def __aenter__(self) -> Outputs:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def until(
        self, done: Callable[[Outputs], bool], timeout_s: float, alive: Callable[[], bool]
    ) -> None:
        """Reads until `done(self)`; fails after `timeout_s` or as soon as `alive()` is false."""
        deadline = time.monotonic() + timeout_s
        while not done(self):
            assert alive(), "a worker exited"
            assert time.monotonic() < deadline, (
                f"timed out; seen { ({k: len(v) for k, v in self.seen.items()}) }"
            )
            for tp, records in (await self._consumer.getmany(timeout_ms=500)).items():
                self.seen[self._logical[tp.topic]] += [orjson.loads(r.value) for r in records]

    def latest_effects(self) -> dict[str, dict[str, Any]]:
        return {e["promotion_id"]: e for e in self.seen["campaign-effects"]}


def inference_count(triton_url: str, model: str, version: int) -> int:
    client = grpcclient.InferenceServerClient(triton_url)
    try:
        stats = client.get_inference_statistics(model, str(version), as_json=True)
    finally:
        client.close()
    return int(stats["model_stats"][0].get("inference_count", 0))


async def group_members(settings: Settings) -> int:
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([settings.app_id])
    except KafkaError:
        return 0  # no group (coordinator) yet
    else:
        (group,) = response.to_object()["groups"]
        return len(group["members"]) if group["state"] == "Stable" else 0
    finally:
        await admin.close()


async def wait_for_members(settings: Settings, n: int, timeout_s: float, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout_s
    while await group_members(settings) != n:
        assert alive(), "a worker exited"
        assert time.monotonic() < deadline, f"the consumer group never had {n} stable members"
        await asyncio.sleep(1.0)


def metric(port: int, name: str, **labels: str) -> float:
    """The value of one sample of a worker's /metrics (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:  # noqa: S310
        text = resp.read().decode()
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        metric_name, _, label_text = sample.partition("{")
        found = dict(part.split("=", 1) for part in label_text.rstrip("}").split(",") if part)
        if metric_name == name and {k: v.strip('"') for k, v in found.items()} == labels:
            return float(value)
    return 0.0


async def send_messages(settings: Settings, messages: list[Message], rate: float | None = None) -> None:
    """Sends live-mode messages to the settings' input topics (created first), paced to `rate` per second."""
    await ensure_topics(settings)
    names = topic_names(settings)
    producer = AIOKafkaProducer(**client_options(settings.kafka), acks="all", linger_ms=5)
    await producer.start()
    began = time.monotonic()
    try:
        for i, m in enumerate(messages):
            if rate is not None:
                ahead = began + i / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await producer.send(names[m.topic], m.value, key=m.key)
        await producer.flush()
    finally:
        await producer.stop()


def log_tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else "(no log)"


def report(
    exc: AssertionError, logs: Sequence[Path], procs: Sequence[subprocess.Popen[bytes]] = ()
) -> AssertionError:
    """The failure with each log's tail and the stacks of the workers still running."""
    tails = "\n".join(f"--- {log.name} ---\n{log_tail(log)}" for log in logs)
    return AssertionError(f"{exc}\n{tails}" + (f"\n{stacks(procs)}" if procs else ""))


def stacks(procs: Sequence[subprocess.Popen[bytes]]) -> str:
    """py-spy's dump of every live worker's threads: where a worker that went silent is stuck."""
    out = []
    for proc in procs:
        if proc.poll() is not None:
            continue
        try:
            dump = subprocess.run(
                [py_spy() or "py-spy", "dump", "--pid", str(proc.pid)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            text = dump.stdout + dump.stderr
        except (OSError, subprocess.TimeoutExpired) as exc:
            text = f"(no dump: {exc})"
        out.append(f"--- stacks of worker pid {proc.pid} ---\n{text[-6000:]}")
    return "\n".join(out)


async def consumed(settings: Settings, topics: tuple[str, ...], timeout_s: float = 180) -> None:
    """Waits until the group has committed every message of `topics`."""
    names = topic_names(settings)
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    consumer = AIOKafkaConsumer(**client_options(settings.kafka))
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(names[t], p) for t in topics for p in range(settings.topics.partitions)]
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                committed = await admin.list_consumer_group_offsets(settings.app_id)
            except KafkaError:  # no coordinator (yet): a fresh broker, or the group not formed
                committed = {}
            # An empty partition never gets a committed offset.
            behind = {
                tp: ends[tp]
                for tp in tps
                if ends[tp] and (tp not in committed or committed[tp].offset < ends[tp])
            }
            if not behind:
                return
            assert time.monotonic() < deadline, f"not consumed: {behind}, committed {committed}"
            await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
        await admin.close()


def is_start(m: Message) -> bool:
    """A valid promotion start: tests register these before the rest of a world."""
    return m.valid and m.topic == "promotions" and orjson.loads(m.value)["action"] == "start"


async def ready_version(triton_url: str, timeout_s: float = 180) -> int:
    """The model version Triton serves once both models are ready."""
    scorer = TritonScorer(triton_url)
    try:
        return await scorer.wait_ready(timeout_s=timeout_s)
    finally:
        await scorer.close()
