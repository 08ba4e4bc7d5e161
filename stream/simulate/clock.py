"""Simulated time: integer milliseconds since the simulation start, and the daily rhythm of activity.

Activity follows an hour-of-day profile (quiet nights, an evening peak) in UTC. Event times are drawn from
the inhomogeneous Poisson process with that intensity by inverting its cumulative intensity, so expected
counts over any interval — which the ground truth needs — are exact integrals, not approximations.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from stream.simulate.config import DAY_MS, HOUR_MS

_HOURLY = np.array(
    [0.25, 0.15, 0.10, 0.08, 0.08, 0.12, 0.30, 0.60, 0.90, 1.00, 1.05, 1.10,
     1.20, 1.10, 1.00, 1.00, 1.10, 1.30, 1.60, 1.90, 2.00, 1.70, 1.10, 0.60]
)  # fmt: skip
RHYTHM = _HOURLY / _HOURLY.mean()  # mean 1: a rate per day is also the expected count per day
_CUM = np.concatenate([[0.0], np.cumsum(RHYTHM) / 24.0])  # cumulative intensity at each hour, in days


class Clock:
    """Maps between simulation milliseconds and UTC, aware of where in the day the simulation starts."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        self.phase_ms = (start - midnight) // timedelta(milliseconds=1)
        self._origin = 0.0
        self._origin = float(self.cumulative(np.zeros(1))[0])

    def at(self, ms: int) -> datetime:
        return self.start + timedelta(milliseconds=int(ms))

    def cumulative(self, ms: np.ndarray) -> np.ndarray:
        """Expected number of events of a rate-1-per-day process from the start up to `ms` (in days)."""
        absolute = np.asarray(ms, dtype=np.float64) + self.phase_ms
        day, rest = np.divmod(absolute, DAY_MS)
        hour = np.minimum((rest // HOUR_MS).astype(np.int64), 23)
        frac = (rest - hour * HOUR_MS) / HOUR_MS
        total = day + _CUM[hour] + frac * RHYTHM[hour] / 24.0
        return np.asarray(total - self._origin)

    def inverse(self, units: np.ndarray) -> np.ndarray:
        """Milliseconds at which `cumulative` reaches `units` (vectorised inverse)."""
        absolute = np.asarray(units, dtype=np.float64) + self._origin
        day, rest = np.divmod(absolute, 1.0)
        hour = np.clip(np.searchsorted(_CUM, rest, side="right") - 1, 0, 23)
        frac = (rest - _CUM[hour]) / (RHYTHM[hour] / 24.0)
        ms = (day * 24 + hour + frac) * HOUR_MS - self.phase_ms
        return np.rint(ms).astype(np.int64)

    def sample(self, rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """One time per row, distributed like the rhythm within [lo, hi)."""
        a, b = self.cumulative(lo), self.cumulative(hi)
        ms = self.inverse(a + rng.random(a.shape) * (b - a))
        return np.clip(ms, lo, np.asarray(hi) - 1)
