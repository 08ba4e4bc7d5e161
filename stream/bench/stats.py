"""The pure arithmetic of the benchmark: rates, latency percentiles, memory scaling, the result's shape.

Definitions (docs/bench.md):
- eps: input events processed per second, all input topics together: events / (end - start), where
  start is when the contender began consuming the preloaded backlog and end when its last output exists.
- latency: an exposure's prediction arrival (consumer side) minus the exposure's Kafka timestamp (set by
  the producer when it sends), in milliseconds.
- rss_mb_per_100k_users: (worker RSS after the backlog - RSS of the same worker before its first batch),
  per user in the backlog, times 100,000.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

KEYS = ("raw_aiokafka_eps", "naive_faust_eps", "liftstream_eps", "p50_ms", "p99_ms", "rss_mb_per_100k_users")

# Issue 6's targets: liftstream >= 25x the hand-rolled Faust agent, >= half the pass-through ceiling.
NAIVE_FACTOR = 25.0
RAW_FRACTION = 0.5
P99_TARGET_MS = 50.0

_VMRSS = re.compile(r"^VmRSS:\s+(\d+)\s+kB", re.MULTILINE)


def events_per_second(events: int, start: float, end: float) -> float:
    """`events` over the interval [start, end] in seconds; an empty interval is an error, not infinity."""
    if events < 0:
        raise ValueError(f"negative event count {events}")
    if end <= start:
        raise ValueError(f"the interval [{start}, {end}] is empty")
    return events / (end - start)


@dataclass(frozen=True)
class Throughput:
    """A contender's pass over the backlog: wall time, and the CPU time its own process spent on it."""

    events: int
    seconds: float
    cpu_s: float | None

    @property
    def eps(self) -> float:
        return events_per_second(self.events, 0.0, self.seconds)

    def to_json(self) -> dict[str, float | None]:
        per_cpu = self.events / self.cpu_s if self.cpu_s else None
        return {
            "wall_s": _round(self.seconds),
            "cpu_s": _round(self.cpu_s),
            "events_per_cpu_s": _round(per_cpu),
        }


def percentile_ms(latencies_ms: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default; needs a sample."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside [0, 100]")
    if len(latencies_ms) == 0:
        raise ValueError("no latency samples")
    return float(np.percentile(np.asarray(latencies_ms, dtype=np.float64), q))


def end_to_end_ms(arrived_s: float, scored_at_s: float, scored_latency_ms: float) -> float:
    """Arrival minus the exposure's Kafka timestamp, which the prediction carries as scored_at - latency."""
    return (arrived_s - scored_at_s) * 1000.0 + scored_latency_ms


def vm_rss_mb(status_text: str) -> float:
    """VmRSS of a /proc/<pid>/status text, in MiB."""
    match = _VMRSS.search(status_text)
    if match is None:
        raise ValueError("no VmRSS line (is the process a zombie?)")
    return int(match.group(1)) / 1024.0


def cpu_ticks(stat_text: str) -> int:
    """utime + stime of a /proc/<pid>/stat line, in clock ticks (fields 14 and 15, after the command)."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_per_100k_users(rss_mb: float, idle_rss_mb: float, users: int) -> float:
    """Memory that `users` users' state added, scaled linearly to 100,000 users (MiB)."""
    if users <= 0:
        raise ValueError("no users")
    return max(rss_mb - idle_rss_mb, 0.0) * 100_000 / users


@dataclass(frozen=True)
class Ratio:
    name: str
    measured: float | None
    target: float
    higher_is_better: bool = True

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.target if self.higher_is_better else self.measured <= self.target


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def ratios(result: BenchResult) -> list[Ratio]:
    """The issue's three targets, as measured (None where a figure is missing)."""
    return [
        Ratio("liftstream / naive", _ratio(result.liftstream_eps, result.naive_faust_eps), NAIVE_FACTOR),
        Ratio("liftstream / raw", _ratio(result.liftstream_eps, result.raw_aiokafka_eps), RAW_FRACTION),
        Ratio("p99 latency (ms)", result.p99_ms, P99_TARGET_MS, higher_is_better=False),
    ]  # fmt: skip


@dataclass(frozen=True)
class BenchResult:
    raw_aiokafka_eps: float | None
    naive_faust_eps: float | None
    liftstream_eps: float | None
    p50_ms: float | None
    p99_ms: float | None
    rss_mb_per_100k_users: float | None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Exactly KEYS plus `meta`; figures rounded to what the measurement can tell."""
        out: dict[str, Any] = {k: _round(v) for k, v in asdict(self).items() if k in KEYS}
        out["meta"] = self.meta
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.4g}")
