"""The real engine: a `python -m stream worker` process on its own topics, end to end through Triton.

Throughput: from when the worker starts consuming (its `events_in_total` leaving 0) until every backlog
event was consumed and every valid backlog exposure has a prediction on the predictions topic. /metrics
is polled only before the start and after the last prediction, so scraping costs the worker nothing
while it works. Memory: the worker's RSS at the last poll before its first batch (started, idle) and
after the backlog. Latency: then the backlog's live continuation at half that rate (`latency`).
"""

from __future__ import annotations

import asyncio
import time
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
from stream.bench.stats import Throughput
from stream.bench.worker import Target, scrape, worker_env, worker_settings
from stream.bench.workload import Workload
from stream.errors import ServiceError
from stream.history import TOPICS
from stream.local.triton import free_ports

POLL_S = 0.05


@dataclass(frozen=True)
class EngineFigures:
    throughput: Throughput
    triton_cpu_s: float | None
    """CPU time of the local Triton (server and model stubs) during the backlog; None if not local."""
    idle_rss_mb: float
    rss_mb: float
    model_version: int
    latency: LatencyPhase | None
    profile: ProfileSummary | None


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
    proc = procs.start("stream", ["worker"], worker_env(settings, target.worker_env), log)
    consumer = AIOKafkaConsumer(names["predictions"], bootstrap_servers=target.bootstrap,
                                auto_offset_reset="earliest", fetch_max_wait_ms=20)  # fmt: skip
    sampler: list[Sampler] = []
    triton = procs.server_pids(f"--grpc-port={target.triton_url.rsplit(':', 1)[-1]}")
    triton_cpu = [0.0]

    def alive() -> None:
        procs.check_alive(proc, "liftstream worker", log)

    def on_start() -> None:
        triton_cpu[0] = procs.total_cpu_seconds(triton)
        if profile:
            sampler.append(Sampler(proc.pid, work_dir / "profile.txt"))

    try:
        await consumer.start()
        backlog = await _backlog(proc.pid, port, consumer, workload, timeout_s, alive, on_start)
        triton_s = procs.total_cpu_seconds(triton) - triton_cpu[0] if triton else None
        summary = sampler.pop().stop() if sampler else None
        rss = procs.rss_mb(proc.pid)
        latency = None
        if latency_s > 0 and workload.live:
            latency = await measure_latency(target.bootstrap, names, consumer, workload.live,
                                            backlog.throughput.eps / 2, latency_s, alive)  # fmt: skip
        return EngineFigures(backlog.throughput, triton_s, backlog.idle_rss_mb, rss, backlog.model_version,
                             latency, summary)  # fmt: skip
    finally:
        for s in sampler:
            s.stop()
        await consumer.stop()
        await asyncio.to_thread(procs.stop, proc)


@dataclass(frozen=True)
class _Backlog:
    throughput: Throughput
    idle_rss_mb: float
    model_version: int


@dataclass
class _Watch:
    start: float | None = None
    """Wall time of the last poll that still saw nothing consumed (consumption starts after it)."""
    cpu: float = 0.0
    idle_rss_mb: float = 0.0
    consumed_at: float | None = None
    next_poll: float = 0.0


async def _backlog(
    pid: int, port: int, consumer: AIOKafkaConsumer, workload: Workload, timeout_s: float,
    alive: Callable[[], None], on_start: Callable[[], None],
) -> _Backlog:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    remaining = set(workload.exposures)
    watch, started, version, last_pred = _Watch(), False, 0, 0.0
    while remaining or watch.consumed_at is None:
        alive()
        if time.monotonic() > deadline:
            raise ServiceError(
                f"the liftstream worker predicted {len(workload.exposures) - len(remaining)} of "
                f"{len(workload.exposures)} exposures in {timeout_s:g}s"
            )
        if (not started or not remaining) and time.monotonic() >= watch.next_poll:
            asked = time.time()
            n = await asyncio.to_thread(scrape, port)
            watch.next_poll = time.monotonic() + POLL_S
            if not started and n == 0:
                watch.start, watch.cpu, watch.idle_rss_mb = asked, procs.cpu_seconds(pid), procs.rss_mb(pid)
            elif not started and n is not None:
                started = True
                on_start()
            if n is not None and n >= workload.events:
                watch.consumed_at = time.time()
        for records in (await consumer.getmany(timeout_ms=20)).values():
            for record in records:
                prediction = orjson.loads(record.value)
                version = prediction["model_version"]
                if prediction["event_id"] in remaining:
                    remaining.discard(prediction["event_id"])
                    last_pred = time.time()
    if watch.start is None or watch.consumed_at is None:
        raise ServiceError("the liftstream worker consumed before its /metrics could be read")
    cpu = procs.cpu_seconds(pid) - watch.cpu
    seconds = max(last_pred, watch.consumed_at) - watch.start
    return _Backlog(Throughput(workload.events, seconds, cpu), watch.idle_rss_mb, version)
