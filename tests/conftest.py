"""Session fixtures: the real Kafka, Triton and Prometheus, started by the launcher of `liftstream local`.

Each pytest session gets free ports and its own run directory, so a running `liftstream local up` stack and
other test sessions are left alone.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.local import stack
from stream.local.triton import TritonEndpoints, free_ports
from stream.settings import Local, Settings, load_settings


@pytest.fixture(scope="session")
def test_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    run_dir = Path(os.environ.get("LIFTSTREAM_TEST_RUN_DIR", str(tmp_path_factory.mktemp("run"))))
    repo = tmp_path_factory.mktemp("triton_repo")
    kafka, controller, http, grpc, metrics, prom, worker_metrics = free_ports(7)
    return load_settings(
        local=Local(
            run_dir=run_dir,
            kafka_port=kafka,
            kafka_controller_port=controller,
            triton_http_port=http,
            triton_grpc_port=grpc,
            triton_metrics_port=metrics,
            prometheus_port=prom,
        ),
        kafka={"bootstrap": f"127.0.0.1:{kafka}"},
        triton_url=f"127.0.0.1:{grpc}",
        model_repo=repo,
        metrics_port=worker_metrics,
    )


def _service(settings: Settings, name: str) -> Iterator[None]:
    stack.up(settings, (name,), fresh=True)
    yield
    stack.down(settings, (name,))


@pytest.fixture(scope="session")
def kafka_service(test_settings: Settings) -> Iterator[None]:
    yield from _service(test_settings, "kafka")


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_service: None, test_settings: Settings) -> str:
    return test_settings.kafka.bootstrap


@pytest.fixture(scope="session")
def triton_service(test_settings: Settings) -> Iterator[TritonEndpoints]:
    for _ in _service(test_settings, "triton"):
        loc = test_settings.local
        yield TritonEndpoints(
            f"127.0.0.1:{loc.triton_http_port}",
            f"127.0.0.1:{loc.triton_grpc_port}",
            f"127.0.0.1:{loc.triton_metrics_port}",
        )


@pytest.fixture(scope="session")
def prometheus_url(test_settings: Settings) -> Iterator[str]:
    for _ in _service(test_settings, "prometheus"):
        yield f"http://127.0.0.1:{test_settings.local.prometheus_port}"


@pytest.fixture
def topic_prefix() -> str:
    """Unique topic names per test, so tests sharing the session broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def served_model(
    test_settings: Settings, triton_service: TritonEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """MODEL_DIR of the serving tests' model, served as version 1 (or newer) by the session's Triton."""
    from models.export import export_model  # torch: imported only by sessions that serve a model
    from stream.scoring.inprocess import newest_common_version
    from tests.scoring.served import model_dir
    from tests.stream.workers import ready_version

    trained = model_dir(tmp_path_factory)
    if newest_common_version(test_settings.model_repo) is None:
        export_model(trained, test_settings.model_repo)
    asyncio.run(ready_version(test_settings.triton_url))
    return trained
