from __future__ import annotations

import json

import numpy as np
import pytest

from stream.bench.stats import (
    KEYS,
    BenchResult,
    Throughput,
    cpu_ticks,
    end_to_end_ms,
    events_per_second,
    percentile_ms,
    ratios,
    rss_per_100k_users,
    vm_rss_mb,
)

pytestmark = pytest.mark.unit

STATUS = """Name:\tpython
State:\tS (sleeping)
VmPeak:\t 5000000 kB
VmRSS:\t  921600 kB
RssAnon:\t  500000 kB
"""


def test_percentiles_interpolate_like_numpy() -> None:
    samples = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile_ms(samples, 50) == 3.0
    assert percentile_ms(samples, 0) == 1.0 and percentile_ms(samples, 100) == 5.0
    assert percentile_ms(samples, 99) == pytest.approx(4.96)
    many = list(np.arange(1000, dtype=float))
    assert percentile_ms(many, 99) == pytest.approx(np.percentile(many, 99))


def test_percentiles_need_samples_and_a_valid_rank() -> None:
    with pytest.raises(ValueError, match="no latency"):
        percentile_ms([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile_ms([1.0], 101)


def test_events_per_second_rejects_an_empty_interval() -> None:
    assert events_per_second(3000, 10.0, 12.0) == 1500.0
    with pytest.raises(ValueError, match="empty"):
        events_per_second(10, 5.0, 5.0)


def test_end_to_end_latency_recovers_the_send_time_from_the_prediction() -> None:
    sent, scored, arrived = 100.000, 100.030, 100.045
    assert end_to_end_ms(arrived, scored, (scored - sent) * 1000) == pytest.approx(45.0)


def test_vm_rss_is_read_in_mib() -> None:
    assert vm_rss_mb(STATUS) == 900.0
    with pytest.raises(ValueError, match="VmRSS"):
        vm_rss_mb("Name:\tzombie\n")


def test_rss_is_scaled_from_the_users_held_to_100k() -> None:
    assert rss_per_100k_users(950.0, 900.0, 10_000) == pytest.approx(500.0)
    assert rss_per_100k_users(890.0, 900.0, 10_000) == 0.0  # a shrinking heap is no negative cost
    with pytest.raises(ValueError):
        rss_per_100k_users(1.0, 0.0, 0)


def test_json_has_exactly_the_issue_keys_and_meta() -> None:
    result = BenchResult(80_000.123, 1_000.0, 45_000.0, 12.34567, 40.0, 512.0, {"events": 30_000})
    out = json.loads(json.dumps(result.to_json()))
    assert set(out) == {*KEYS, "meta"}
    assert out["raw_aiokafka_eps"] == 80_000.0 and out["p50_ms"] == 12.35
    assert out["meta"] == {"events": 30_000}


def test_ratios_against_the_targets_and_missing_figures() -> None:
    met = {r.name: r.met for r in ratios(BenchResult(80_000.0, 1_000.0, 45_000.0, 10.0, 40.0, 1.0))}
    assert met == {"liftstream / naive": True, "liftstream / raw": True, "p99 latency (ms)": True}
    missed = ratios(BenchResult(80_000.0, 2_000.0, 30_000.0, 10.0, 60.0, 1.0))
    assert [r.met for r in missed] == [False, False, False]
    assert [r.measured for r in missed][:2] == [15.0, 0.375]
    partial = ratios(BenchResult(80_000.0, None, None, None, None, None))
    assert all(r.measured is None and r.met is None for r in partial)


def test_cpu_ticks_add_user_and_system_time_even_with_spaces_in_the_command() -> None:
    stat = "4242 (python -m stream) S 1 4242 4242 0 -1 4194560 900 0 0 0 350 47 0 0 20 0 9 0 12345"
    assert cpu_ticks(stat) == 397


def test_throughput_reports_wall_and_cpu_rates() -> None:
    t = Throughput(30_000, 12.0, 6.0)
    assert t.eps == 2500.0
    assert t.to_json() == {"wall_s": 12.0, "cpu_s": 6.0, "events_per_cpu_s": 5000.0}
    assert Throughput(10, 1.0, None).to_json()["events_per_cpu_s"] is None
