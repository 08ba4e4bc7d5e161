from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from stream.bench.run import BenchConfig, served_version
from stream.bench.worker import Target, events_in, parse_env, worker_env, worker_settings
from stream.bench.workload import build_workload, sim_config
from stream.errors import ConfigError, ServiceError
from stream.local.triton import free_ports

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def test_the_backlog_is_the_first_events_and_live_traffic_continues_it() -> None:
    w = build_workload(600, seed=3, now=NOW)
    assert w.events == 600 and len(w.live) > 600
    assert w == build_workload(600, seed=3, now=NOW)
    exposures = [orjson.loads(v)["event_id"] for t, _, v in w.backlog if t == "exposures"]
    assert w.exposures == frozenset(exposures) and len(exposures) > 0
    assert w.users == len({k for t, k, _ in w.backlog if t != "promotions"})
    assert {t for t, _, _ in w.live} >= {"clicks", "exposures"}  # exposures go on in the live part
    with pytest.raises(ConfigError):
        build_workload(10, seed=0, now=NOW)


def test_the_world_grows_with_the_backlog() -> None:
    assert sim_config(30_000, 0).users > 4 * sim_config(5_000, 0).users


def test_consumed_count_adds_every_events_in_sample() -> None:
    text = """# HELP liftstream_events_in_total input messages
# TYPE liftstream_events_in_total counter
liftstream_events_in_total{outcome="ok",topic="clicks"} 120.0
liftstream_events_in_total{outcome="late",topic="clicks"} 3.0
liftstream_events_in_total{outcome="ok",topic="promotions"} 7.0
liftstream_events_in_created{outcome="ok",topic="clicks"} 1.7e9
liftstream_events_out_total{topic="predictions"} 50.0
"""
    assert events_in(text) == 130.0


def test_the_worker_gets_its_own_app_id_and_topics_through_the_environment(tmp_path: Path) -> None:
    target = Target("127.0.0.1:9", "127.0.0.1:8", tmp_path / "repo")
    s = worker_settings(target, "bench-x-liftstream", 3, tmp_path, 4242)
    env = worker_env(s)
    assert env["LIFTSTREAM_APP_ID"] == "bench-x-liftstream"
    assert env["LIFTSTREAM_TOPICS__EXPOSURES"] == "bench-x-liftstream-exposures"
    assert env["LIFTSTREAM_TOPICS__DEAD_LETTER"] == "bench-x-liftstream-dead-letter"
    assert env["LIFTSTREAM_TOPICS__PARTITIONS"] == "3" and env["LIFTSTREAM_METRICS_PORT"] == "4242"
    tuned = worker_env(s, parse_env(["LIFTSTREAM_BATCHING__MAX_SIZE=2048", "PRODUCER_LINGER=0.005"]))
    assert tuned["LIFTSTREAM_BATCHING__MAX_SIZE"] == "2048" and tuned["PRODUCER_LINGER"] == "0.005"
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_env(["LIFTSTREAM_APP_ID"])


def test_unknown_contenders_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="contenders"):
        BenchConfig(contenders=("raw", "spark"))


def test_an_absent_triton_is_one_clear_error() -> None:
    (port,) = free_ports(1)
    with pytest.raises(ServiceError, match="not reachable"):
        asyncio.run(served_version(f"127.0.0.1:{port}"))
