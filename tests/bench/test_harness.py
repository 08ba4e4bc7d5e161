"""The harness end to end on the real Kafka: the raw and naive contenders over a small backlog."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from stream.bench.run import BenchConfig, run_bench
from stream.bench.stats import KEYS
from stream.bench.worker import Target
from stream.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_raw_and_naive_consume_the_same_backlog_and_clean_up(
    kafka_bootstrap: str, test_settings: Settings, tmp_path: Path
) -> None:
    target = Target(kafka_bootstrap, test_settings.triton_url, test_settings.model_repo)
    config = BenchConfig(events=2000, partitions=2, latency_s=0, timeout_s=60, contenders=("raw", "naive"))
    result, engine = asyncio.run(run_bench(target, config, tmp_path))

    assert engine is None
    out = result.to_json()
    assert set(out) == {*KEYS, "meta"}
    assert out["raw_aiokafka_eps"] > 0 and out["naive_faust_eps"] > 0
    assert out["liftstream_eps"] is None and out["p99_ms"] is None
    meta = out["meta"]
    assert meta["events"] == 2000 and meta["cores"] >= 1 and set(meta["contenders"]) == {"raw", "naive"}
    assert meta["versions"]["faust-streaming"] and len(meta["load_average_at_start"]) == 3
    assert asyncio.run(_left(kafka_bootstrap, meta["run_id"])) == []


async def _left(bootstrap: str, prefix: str) -> list[str]:
    """The run's topics still listed once deletion had 10 s to show in the metadata."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(20):
            left = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if not left:
                break
            await asyncio.sleep(0.5)
        return left
    finally:
        await admin.close()
