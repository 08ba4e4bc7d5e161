"""`liftstream local up | down | status`: the real Kafka, Triton and Prometheus as background processes."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from stream.local import kafka, prometheus, triton
from stream.local.process import Managed
from stream.settings import Settings

SERVICES = ("kafka", "triton", "prometheus")


@dataclass(frozen=True)
class ServiceState:
    name: str
    pid: int | None
    endpoint: str
    ready: bool
    log: Path


def _home(settings: Settings, name: str) -> Path:
    return settings.local.run_dir.resolve() / name


def worker_targets(settings: Settings, workers: int = 4) -> list[str]:
    return [f"127.0.0.1:{settings.metrics_port + i}" for i in range(workers)]


def up(settings: Settings, services: tuple[str, ...] = SERVICES, *, fresh: bool = False) -> dict[str, float]:
    """Start what is not running yet; returns seconds spent per service."""
    loc = settings.local
    timings: dict[str, float] = {}
    for name in services:
        home = _home(settings, name)
        if fresh and name in ("kafka", "prometheus"):
            Managed(name, home).stop()
            shutil.rmtree(home / "data", ignore_errors=True)
        began = time.monotonic()
        if name == "kafka":
            kafka.start(home, loc.kafka_port, loc.kafka_controller_port, loc.kafka_heap)
        elif name == "triton":
            triton.start(
                home, settings.model_repo, loc.triton_http_port, loc.triton_grpc_port, loc.triton_metrics_port
            )
        else:
            prometheus.start(
                home, loc.prometheus_port, worker_targets(settings), f"127.0.0.1:{loc.triton_metrics_port}"
            )
        timings[name] = time.monotonic() - began
    return timings


def down(settings: Settings, services: tuple[str, ...] = SERVICES) -> list[str]:
    """Stop, by pid, what `up` started (reverse order); returns the names that were running."""
    return [name for name in reversed(services) if Managed(name, _home(settings, name)).stop()]


def status(settings: Settings, services: tuple[str, ...] = SERVICES) -> list[ServiceState]:
    loc = settings.local
    endpoints = {
        "kafka": f"127.0.0.1:{loc.kafka_port}",
        "triton": f"http 127.0.0.1:{loc.triton_http_port} grpc 127.0.0.1:{loc.triton_grpc_port} "
        f"metrics 127.0.0.1:{loc.triton_metrics_port}",
        "prometheus": f"127.0.0.1:{loc.prometheus_port}",
    }
    probes = {
        "kafka": lambda: kafka.ready(endpoints["kafka"]),
        "triton": lambda: triton.ready(f"127.0.0.1:{loc.triton_http_port}"),
        "prometheus": lambda: prometheus.ready(endpoints["prometheus"]),
    }
    states = []
    for name in services:
        svc = Managed(name, _home(settings, name))
        pid = svc.pid()
        states.append(
            ServiceState(name, pid, endpoints[name], pid is not None and probes[name](), svc.log_file)
        )
    return states
