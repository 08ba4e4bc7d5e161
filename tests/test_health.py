"""`/live` and `/ready`: what each reports, and how the metrics server serves them."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from stream.health import Health
from stream.local.triton import free_ports
from stream.metrics import Metrics, serve

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_live_needs_a_recent_beat_of_the_event_loop() -> None:
    clock = Clock()
    health = Health(stale_s=30, clock=clock)
    assert health.live() == (False, "the event loop has not started (0s since launch)")
    health.beat()
    clock.now += 29
    assert health.live()[0]
    clock.now += 2
    assert health.live() == (False, "the event loop last made progress 31s ago (limit 30s)")


def test_ready_needs_partitions_and_triton_and_a_live_loop() -> None:
    clock = Clock()
    health = Health(stale_s=30, clock=clock)
    health.beat()
    ready, why = health.ready()
    assert not ready and "no input partitions" in why and "Triton not ready: not checked yet" in why
    health.partitions, health.triton = 2, None
    assert health.ready() == (True, "2 input partitions assigned, Triton ready")
    health.triton = "model effect_scorer not ready"
    assert health.ready() == (False, "Triton not ready: model effect_scorer not ready")
    health.triton = None
    clock.now += 60
    assert not health.ready()[0]  # a stuck loop is not ready either


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_metrics_port_serves_metrics_live_and_ready() -> None:
    (port,) = free_ports(1)
    registry = CollectorRegistry()
    Metrics(registry)
    health = Health(stale_s=30)
    server = serve(port, registry, addr="127.0.0.1", routes=health.routes())
    assert server is not None
    base = f"http://127.0.0.1:{port}"
    try:
        status, text = _get(f"{base}/metrics")
        assert status == 200 and "liftstream_triton_up" in text
        assert _get(f"{base}/live")[0] == 503
        health.beat()
        status, text = _get(f"{base}/live")
        assert status == 200 and text.startswith("ok: the event loop made progress")
        health.partitions, health.triton = 4, None
        assert _get(f"{base}/ready") == (200, "ok: 4 input partitions assigned, Triton ready\n")
    finally:
        server.shutdown()
        server.server_close()
