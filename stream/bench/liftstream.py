"""The real engine: a `python -m stream worker` process on its own topics, end to end through Triton.

Throughput: from when the worker starts consuming (its `events_in_total` leaving 0, polled) until every
backlog event was consumed and every valid backlog exposure has a prediction on the predictions topic.
Memory: the worker's RSS at the last poll before its first batch (started, idle) and after the backlog.
Latency: then the backlog's live continuation at half that rate (see `stream.bench.latency`).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from stream.agents.topics import ensure_topics, topic_names
from stream.bench import procs
from stream.bench.kafka_io import preload
from stream.bench.latency import LatencyPhase, measure_latency
from stream.bench.profile import ProfileSummary, Sampler
from stream.bench.stats import events_per_second
from stream.bench.workload import Workload
from stream.errors import ServiceError
from stream.history import TOPICS
from stream.local.triton import free_ports
from stream.settings import Settings, Topics, load_settings

POLL_S = 0.05
TOPIC_FIELDS = [name for name in Topics.model_fields if name != "partitions"]
EVENTS_IN = "liftstream_events_in_total"


@dataclass(frozen=True)
class Target:
    bootstrap: str
    triton_url: str
    model_repo: Path


@dataclass(frozen=True)
class EngineFigures:
    eps: float
    idle_rss_mb: float
    rss_mb: float
    model_version: int
    latency: LatencyPhase | None
    profile: ProfileSummary | None


def worker_settings(
    target: Target, prefix: str, partitions: int, run_dir: Path, metrics_port: int
) -> Settings:
    return load_settings(
        app_id=prefix,
        kafka={"bootstrap": target.bootstrap},
        triton_url=target.triton_url,
        model_repo=target.model_repo,
        metrics_port=metrics_port,
        local={"run_dir": run_dir},
        topics={
            "partitions": partitions,
            **{f: f"{prefix}-{Topics.model_fields[f].default}" for f in TOPIC_FIELDS},
        },
    )


def worker_env(s: Settings) -> dict[str, str]:
    return {
        "LIFTSTREAM_APP_ID": s.app_id,
        "LIFTSTREAM_KAFKA__BOOTSTRAP": s.kafka.bootstrap,
        "LIFTSTREAM_TRITON_URL": s.triton_url,
        "LIFTSTREAM_MODEL_REPO": str(s.model_repo),
        "LIFTSTREAM_METRICS_PORT": str(s.metrics_port),
        "LIFTSTREAM_LOCAL__RUN_DIR": str(s.local.run_dir),
        "LIFTSTREAM_TOPICS__PARTITIONS": str(s.topics.partitions),
        "LIFTSTREAM_LOG_LEVEL": "INFO",
        **{f"LIFTSTREAM_TOPICS__{f.upper()}": getattr(s.topics, f) for f in TOPIC_FIELDS},
    }


def events_in(metrics_text: str) -> float:
    """Input messages a worker consumed so far: every sample of `liftstream_events_in_total` added up."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics_text.splitlines()
        if line.startswith(EVENTS_IN + "{") or line.startswith(EVENTS_IN + " ")
    )


def scrape(port: int) -> float | None:
    """The worker's consumed count, None while its /metrics is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:  # noqa: S310
            return events_in(resp.read().decode())
    except OSError:
        return None


async def run_liftstream(
    target: Target, prefix: str, workload: Workload, partitions: int, timeout_s: float, work_dir: Path,
    latency_s: float, profile: bool,
) -> EngineFigures:  # fmt: skip
    (port,) = free_ports(1)
    settings = worker_settings(target, prefix, partitions, work_dir / "liftstream", port)
    await ensure_topics(settings)
    names = topic_names(settings)
    await preload(target.bootstrap, {t: names[t] for t in TOPICS}, workload.backlog)
    log = work_dir / "worker.log"
    proc = procs.start("stream", ["worker"], worker_env(settings), log)
    consumer = AIOKafkaConsumer(names["predictions"], bootstrap_servers=target.bootstrap,
                                auto_offset_reset="earliest", fetch_max_wait_ms=20)  # fmt: skip
    sampler: list[Sampler] = []

    def alive() -> None:
        procs.check_alive(proc, "liftstream worker", log)

    def on_start() -> None:
        if profile:
            sampler.append(Sampler(proc.pid, work_dir / "profile.txt"))

    try:
        await consumer.start()
        backlog = await _backlog(proc.pid, port, consumer, workload, timeout_s, alive, on_start)
        summary = sampler.pop().stop() if sampler else None
        rss = procs.rss_mb(proc.pid)
        eps = events_per_second(workload.events, backlog.start, backlog.end)
        latency = None
        if latency_s > 0 and workload.live:
            latency = await measure_latency(target.bootstrap, names, consumer, workload.live, eps / 2,
                                            latency_s, alive)  # fmt: skip
        return EngineFigures(eps, backlog.idle_rss_mb, rss, backlog.model_version, latency, summary)
    finally:
        for s in sampler:
            s.stop()
        await consumer.stop()
        await asyncio.to_thread(procs.stop, proc)


@dataclass(frozen=True)
class _Backlog:
    start: float
    end: float
    idle_rss_mb: float
    model_version: int


async def _backlog(
    pid: int, port: int, consumer: AIOKafkaConsumer, workload: Workload, timeout_s: float,
    alive: Callable[[], None], on_start: Callable[[], None],
) -> _Backlog:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    remaining = set(workload.exposures)
    start: float | None = None
    consumed_at: float | None = None
    last_idle, idle_rss, version, next_poll, last_pred = 0.0, 0.0, 0, 0.0, 0.0
    while remaining or consumed_at is None:
        alive()
        if time.monotonic() > deadline:
            raise ServiceError(
                f"the liftstream worker predicted {len(workload.exposures) - len(remaining)} of "
                f"{len(workload.exposures)} exposures in {timeout_s:g}s"
            )
        if consumed_at is None and time.monotonic() >= next_poll:
            asked = time.time()
            n = await asyncio.to_thread(scrape, port)
            next_poll = time.monotonic() + POLL_S
            if start is None and n == 0:
                # Consumption starts after this scrape was asked for: the earliest start it can have.
                last_idle, idle_rss = asked, procs.rss_mb(pid)
            elif start is None and n is not None:
                start = last_idle or asked
                on_start()
            if n is not None and n >= workload.events:
                consumed_at = time.time()
        for records in (await consumer.getmany(timeout_ms=20)).values():
            for record in records:
                prediction = orjson.loads(record.value)
                version = prediction["model_version"]
                if prediction["event_id"] in remaining:
                    remaining.discard(prediction["event_id"])
                    last_pred = time.time()
    if start is None or consumed_at is None:
        raise ServiceError("the liftstream worker finished before its consumption could be observed")
    return _Backlog(start, max(last_pred, consumed_at), idle_rss, version)
