"""`liftstream bench`: the three contenders side by side on one backlog, then latency and memory.

Every contender gets fresh topics named after the run (`bench-<id>-<contender>-...`), preloaded with
the same bytes before its clock starts; they run one after the other so none competes with another for
the two cores, and the run's topics are deleted at the end.
"""

from __future__ import annotations

import os
import platform
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from stream.bench.kafka_io import check_kafka, delete_topics
from stream.bench.liftstream import EngineFigures, run_liftstream
from stream.bench.naive import run_naive
from stream.bench.raw import run_raw
from stream.bench.stats import BenchResult, Throughput, percentile_ms, rss_per_100k_users
from stream.bench.worker import Target
from stream.bench.workload import Workload, build_workload
from stream.errors import ConfigError, ModelError, ServiceError
from stream.scoring.triton import MODELS, newest_common_ready

CONTENDERS = ("raw", "naive", "liftstream")
PACKAGES = ("liftstream", "faust-streaming", "aiokafka", "tritonclient", "torch", "orjson", "pydantic")


@dataclass(frozen=True)
class BenchConfig:
    events: int = 30_000
    seed: int = 0
    partitions: int = 4
    latency_s: float = 20.0
    timeout_s: float = 600.0
    contenders: tuple[str, ...] = CONTENDERS
    profile: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.contenders) - set(CONTENDERS)
        if unknown or not self.contenders:
            raise ConfigError(f"contenders must be some of {', '.join(CONTENDERS)}, got {self.contenders}")


async def served_version(url: str) -> int:
    """The version the worker would serve; one clear line when Triton is away or has no model."""
    client = InferenceServerClient(url)
    try:
        index = await client.get_model_repository_index(as_json=True, client_timeout=10.0)
    except InferenceServerException as exc:
        raise ServiceError(
            f"Triton at {url} is not reachable; start the stack with `liftstream local up`"
        ) from exc
    finally:
        await client.close()
    version = newest_common_ready(index)
    if version is None:
        raise ModelError(
            f"Triton at {url} serves no ready version of {' and '.join(MODELS)}: put a model in its "
            "repository (`liftstream export --model MODEL_DIR --repo triton_repo`, or `liftstream demo`)"
        )
    return version


async def run_bench(
    target: Target, config: BenchConfig, work_root: Path
) -> tuple[BenchResult, EngineFigures | None]:
    await check_kafka(target.bootstrap)
    if "liftstream" in config.contenders:
        await served_version(target.triton_url)
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    work_dir = work_root / run_id
    work_dir.mkdir(parents=True, exist_ok=True)
    workload = build_workload(config.events, config.seed, datetime.now(UTC))
    meta = _meta(target, config, workload, run_id)
    passes: dict[str, Throughput] = {}
    engine: EngineFigures | None = None
    try:
        for name in config.contenders:
            load, began = os.getloadavg()[0], time.monotonic()
            prefix = f"{run_id}-{name}"
            if name == "raw":
                passes[name] = await run_raw(target.bootstrap, prefix, workload, config.partitions,
                                             config.timeout_s)  # fmt: skip
            elif name == "naive":
                passes[name] = await run_naive(target.bootstrap, prefix, workload, config.partitions,
                                               config.timeout_s, work_dir)  # fmt: skip
            else:
                engine = await run_liftstream(target, prefix, workload, config.partitions, config.timeout_s,
                                              work_dir, config.latency_s, config.profile)  # fmt: skip
                passes[name] = engine.throughput
            meta["contenders"][name] = {
                **passes[name].to_json(),
                "run_s": round(time.monotonic() - began, 1),
                "load_average_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
            }
    finally:
        await delete_topics(target.bootstrap, run_id)
    meta["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return _result(passes, engine, workload, meta), engine


def _result(
    passes: dict[str, Throughput], engine: EngineFigures | None, workload: Workload, meta: dict[str, Any]
) -> BenchResult:
    p50 = p99 = rss = None
    if engine is not None:
        meta["model_version"] = engine.model_version
        if engine.triton_cpu_s is not None and engine.throughput.cpu_s is not None:
            both = engine.throughput.cpu_s + engine.triton_cpu_s
            meta["contenders"]["liftstream"].update(
                triton_cpu_s=round(engine.triton_cpu_s, 2),
                events_per_cpu_s_with_triton=round(workload.events / both),
            )
        rss = rss_per_100k_users(engine.rss_mb, engine.idle_rss_mb, workload.users)
        meta["rss"] = {"idle_mb": round(engine.idle_rss_mb, 1), "after_backlog_mb": round(engine.rss_mb, 1),
                       "users": workload.users}  # fmt: skip
        lat = engine.latency
        if lat is not None and lat.latencies_ms:
            p50, p99 = percentile_ms(lat.latencies_ms, 50), percentile_ms(lat.latencies_ms, 99)
            meta["latency"] = {
                "rate_eps": round(lat.rate, 1), "sent": lat.sent, "send_s": round(lat.seconds, 1),
                "samples": len(lat.latencies_ms), "max_ms": round(max(lat.latencies_ms), 1),
                "scored_p50_ms": round(percentile_ms(lat.scored_ms, 50), 1),
                "scored_p99_ms": round(percentile_ms(lat.scored_ms, 99), 1),
            }  # fmt: skip
        meta["profiled"] = engine.profile is not None
    eps = {name: p.eps for name, p in passes.items()}
    return BenchResult(eps.get("raw"), eps.get("naive"), eps.get("liftstream"), p50, p99, rss, meta)


def _meta(target: Target, config: BenchConfig, workload: Workload, run_id: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": workload.events,
        "users": workload.users,
        "exposures": len(workload.exposures),
        "partitions": config.partitions,
        "seed": config.seed,
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "kafka": target.bootstrap,
        "triton": target.triton_url,
        "worker_env": target.worker_env,
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}},
        "contenders": {},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
