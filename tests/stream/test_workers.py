"""Two workers form one consumer group, split the partitions and together predict every exposure."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest

from stream.local.triton import free_ports
from stream.settings import Settings
from stream.simulate.config import SimConfig
from tests.stream.workers import (
    Outputs,
    engine_settings,
    metric,
    produce,
    report,
    start_worker,
    stop_worker,
    wait_for_members,
    world,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

C = SimConfig(seed=41, users=400, days=1.0)


def test_two_workers_split_the_partitions_and_together_predict_every_exposure(
    test_settings: Settings, served_model: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = engine_settings(test_settings, f"t{uuid.uuid4().hex[:10]}", tmp_path / "run")
    ports = free_ports(2)
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [start_worker(settings, log, metrics_port=port) for log, port in zip(logs, ports, strict=True)]
    try:
        predictions = asyncio.run(_drive(settings, workers))
        applied = [metric(p, "liftstream_events_in_total", topic="exposures", outcome="ok") for p in ports]
    except AssertionError as exc:
        raise report(exc, logs, workers) from exc
    finally:
        for w in workers:
            stop_worker(w)
    expected = world(C).exposure_ids
    assert {p["event_id"] for p in predictions} == expected
    # Each worker applied its own partitions' exposures; together every one exactly once.
    assert all(n > 0 for n in applied) and sum(applied) == len(expected), (applied, len(expected))


async def _drive(settings: Settings, workers: list[subprocess.Popen[bytes]]) -> list[dict[str, object]]:
    def alive() -> bool:
        return all(w.poll() is None for w in workers)

    await wait_for_members(settings, 2, timeout_s=180, alive=alive)
    w = world(C)
    async with Outputs(settings) as out:
        await produce(settings, w)
        await out.until(
            lambda o: {p["event_id"] for p in o.seen["predictions"]} >= w.exposure_ids, 240, alive
        )
        return out.seen["predictions"]
