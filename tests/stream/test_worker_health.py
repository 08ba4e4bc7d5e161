"""A real worker's /live and /ready: with two workers on one partition, both live and only the owner ready."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stream.local.triton import free_ports
from stream.settings import Settings
from tests.stream.workers import engine_settings, log_tail, start_worker, stop_worker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _probe(port: int, path: str) -> int:
    """The HTTP status of a probe, 0 while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _until(port: int, path: str, status: int, log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while _probe(port, path) != status:
        assert time.monotonic() < deadline, f"{path} never answered {status}:\n{log_tail(log)}"
        time.sleep(0.5)


def test_an_owner_is_ready_and_a_spare_worker_only_live(
    test_settings: Settings, served_model: Path, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    base = engine_settings(test_settings, topic_prefix, tmp_path / "run")
    settings = base.model_copy(update={"topics": base.topics.model_copy(update={"partitions": 1})})
    ports = free_ports(2)
    logs = [tmp_path / "worker0.log", tmp_path / "worker1.log"]
    owner = start_worker(settings, logs[0], ports[0])
    try:
        _until(ports[0], "/ready", 200, logs[0])
        assert _probe(ports[0], "/live") == 200
        spare = start_worker(settings, logs[1], ports[1])
        try:
            _until(ports[1], "/live", 200, logs[1])
            time.sleep(12)  # the rebalance that let it in is over, and its readiness checked since
            assert _probe(ports[1], "/ready") == 503, log_tail(logs[1])
            assert 200 in (_probe(ports[0], "/ready"), _probe(ports[1], "/ready"))
        finally:
            stop_worker(spare)
    finally:
        assert stop_worker(owner) == 0, log_tail(logs[0])
